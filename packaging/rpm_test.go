package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// rpmTree is a root for `rpm --root`: this machine's /usr under an overlay
// (writes stay in the test's directory), its own /etc, /var and /run, and a
// systemctl stand-in first in the scriptlets' PATH that logs each call and
// carries out the symlink verbs (enable, mask...) with the real systemctl
// on the tree itself (--root=/ in the chroot: no systemd to ask). Questions
// change nothing and are not logged: is-enabled is the real one's answer on
// the tree, and no unit is active (no systemd runs there). No RPM distribution boots here:
// this runs the rpm's scriptlets through rpm itself, with rpm's arguments
// (1 install, 2 upgrade, 0 erase) and rpm's environment.
type rpmTree struct {
	root string
	log  string
}

func newRPMTree(t *testing.T) *rpmTree {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"usr", "etc/systemd/system", "var/lib/rpm", "run/systemd/system", "tmp", "dev", "fake", "root"} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	must(t, os.MkdirAll(upper, 0o755))
	must(t, os.MkdirAll(work, 0o755))
	usr := filepath.Join(root, "usr")
	if err := syscall.Mount("overlay", usr, "overlay", 0, "lowerdir=/usr,upperdir="+upper+",workdir="+work); err != nil {
		t.Skipf("no overlay for the tree's /usr: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(usr, syscall.MNT_DETACH) })
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		if _, err := os.Lstat("/" + l); err == nil {
			target, _ := os.Readlink("/" + l)
			if target == "" {
				t.Skipf("/%s is not a symlink into /usr: this test needs a merged-/usr host", l)
			}
			must(t, os.Symlink(target, filepath.Join(root, l)))
		}
	}
	// The devices the scriptlets read and write.
	for name, dev := range map[string]int{"null": 3, "urandom": 9} {
		must(t, syscall.Mknod(filepath.Join(root, "dev", name), syscall.S_IFCHR|0o666, 1<<8|dev))
	}
	// The distribution's redis package has created its user, as on Fedora.
	file("etc/passwd", "root:x:0:0::/root:/bin/sh\nredis:x:990:990:Redis:/var/lib/redis:/sbin/nologin\n").do(t, root)
	file("etc/group", "root:x:0:\nredis:x:990:\n").do(t, root)
	file("etc/shadow", "root:*:1::::::\nredis:!:1::::::\n").do(t, root)
	// Its units, which the scriptlets mask.
	file("usr/lib/systemd/system/redis.service", "[Service]\nExecStart=/usr/bin/redis-server\n").do(t, root)
	file("usr/lib/systemd/system/redis-sentinel.service", "[Service]\nExecStart=/usr/bin/redis-sentinel\n").do(t, root)
	file("fake/systemctl", `#!/bin/sh
case " $* " in
*" is-enabled "*) exec /usr/bin/systemctl --root=/ "$@" ;;
*" is-active "*) case " $* " in *" --quiet "*) ;; *) echo inactive ;; esac; exit 3 ;;
esac
echo "systemctl $*" >>/tmp/systemctl.log
case " $* " in
*" enable "* | *" disable "* | *" mask "* | *" unmask "*) exec /usr/bin/systemctl --root=/ "$@" ;;
esac
`).do(t, root)
	must(t, os.Chmod(filepath.Join(root, "fake/systemctl"), 0o755))
	tr := &rpmTree{root: root, log: filepath.Join(root, "tmp/systemctl.log")}
	tr.rpm(t, "--initdb")
	return tr
}

// rpm runs rpm on the tree, the stand-in first in the scriptlets' PATH.
func (tr *rpmTree) rpm(t *testing.T, args ...string) string {
	t.Helper()
	args = append([]string{"--root", tr.root, "--dbpath", "/var/lib/rpm",
		"--define", "_install_script_path /fake:/usr/sbin:/usr/bin:/sbin:/bin"}, args...)
	out, err := exec.Command("rpm", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rpm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// calls returns the systemctl calls since the last and forgets them.
func (tr *rpmTree) calls(t *testing.T) []string {
	t.Helper()
	b, _ := os.ReadFile(tr.log)
	_ = os.Remove(tr.log)
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// testRPMInTree installs the rpm into a tree, upgrades it, erases it.
func testRPMInTree(t *testing.T, rpm, newer string) {
	if os.Geteuid() != 0 {
		t.Skip("rpm --root needs root")
	}
	tr := newRPMTree(t)

	// The rich dependency is one rpm understands: it names both servers.
	test, err := exec.Command("rpm", "--root", tr.root, "--dbpath", "/var/lib/rpm", "-i", "--test", rpm).CombinedOutput()
	if err == nil || !strings.Contains(string(test), "(redis >= 7.0 or valkey) is needed by redis-ha-agent") {
		t.Errorf("rpm -i --test without redis or valkey: %v\n%s", err, test)
	}

	// The distribution's units in the tree: the ones above, and the host's own
	// under the overlay.
	var units, takeOver, giveBack []string
	for _, u := range []string{"redis-server.service", "redis.service", "redis-sentinel.service", "valkey-server.service", "valkey-sentinel.service"} {
		if _, err := os.Stat(filepath.Join(tr.root, "usr/lib/systemd/system", u)); err == nil {
			units = append(units, u)
			takeOver = append(takeOver, "systemctl stop "+u, "systemctl --quiet disable "+u, "systemctl --quiet mask "+u)
			giveBack = append(giveBack, "systemctl --quiet unmask "+u)
		}
	}

	out := tr.rpm(t, "-i", "--nodeps", rpm)
	t.Logf("rpm -i:\n%s", out)
	wantCalls(t, "%post 1", tr.calls(t), slices.Concat(takeOver, []string{
		"systemctl daemon-reload", "systemctl --quiet enable redis-ha-agent.service", "systemctl start redis-ha-agent.service",
	}))
	generatedPassword.check(t, tr.root)
	dirMode("var/lib/redis-ha", 0o750).check(t, tr.root)
	// How the units were found, for the erase to put them back so.
	found, err := os.ReadFile(filepath.Join(tr.root, "var/lib/redis-ha/.debian-units-found"))
	if lines := strings.Split(strings.TrimSpace(string(found)), "\n"); err != nil || len(lines) != len(units) {
		t.Errorf(".debian-units-found = %q, %v; want a line for each of %q", found, err, units)
	} else {
		for i, l := range lines {
			if f := strings.Fields(l); len(f) != 3 || f[0] != units[i] || f[2] != "inactive" {
				t.Errorf(".debian-units-found line %q, want %s, its enablement, inactive", l, units[i])
			}
		}
	}
	for _, u := range units {
		isMasked(u).check(t, tr.root)
	}
	if _, err := os.Lstat(filepath.Join(tr.root, "etc/systemd/system/multi-user.target.wants/redis-ha-agent.service")); err != nil {
		t.Errorf("redis-ha-agent.service not enabled: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(tr.root, "etc/redis-ha/password")); err == nil {
		if st := fi.Sys().(*syscall.Stat_t); st.Gid != 990 {
			t.Errorf("password group %d, want redis (990)", st.Gid)
		}
	}

	out = tr.rpm(t, "-U", "--nodeps", newer)
	t.Logf("rpm -U:\n%s", out)
	wantCalls(t, "upgrade: %post 2, %preun/%postun 1 of the old", tr.calls(t), []string{
		"systemctl daemon-reload", "systemctl try-restart redis-ha-agent.service",
	})
	isMasked("redis.service").check(t, tr.root)

	out = tr.rpm(t, "-e", "redis-ha-agent")
	t.Logf("rpm -e:\n%s", out)
	wantCalls(t, "%preun 0, %postun 0", tr.calls(t), slices.Concat([]string{
		"systemctl stop redis-ha-agent.service", "systemctl show -P ControlGroup redis-ha-agent.service",
		"systemctl --quiet disable redis-ha-agent.service",
	}, giveBack, []string{"systemctl daemon-reload"}))
	for _, u := range units {
		notMasked(u).check(t, tr.root)
	}
	absent("var/lib/redis-ha/.debian-units-found").check(t, tr.root)
	// rpm has no purge: the data and the password stay.
	if _, err := os.Stat(filepath.Join(tr.root, "etc/redis-ha/password")); err != nil {
		t.Errorf("password after erase: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tr.root, "usr/bin/redis-ha-agent")); err == nil {
		t.Errorf("the binary is still there after erase")
	}
}

func wantCalls(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: systemctl calls\n  %s\nwant\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
