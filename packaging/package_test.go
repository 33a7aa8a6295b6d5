package packaging

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// repo is the repository root: make runs there and nfpm resolves src: against it.
const repo = ".."

type nfpmConfig struct {
	Contents []struct {
		Src, Dst, Type string
	}
	Scripts map[string]string
}

func readNfpm(t *testing.T) nfpmConfig {
	t.Helper()
	b, err := os.ReadFile("nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c nfpmConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("nfpm.yaml: %v", err)
	}
	return c
}

// TestRootfsIsPackaged keeps rootfs/ and nfpm.yaml from drifting apart: rootfs/ mirrors
// the installed tree, so each of its files is installed at its own path.
func TestRootfsIsPackaged(t *testing.T) {
	cfg := readNfpm(t)
	dst := map[string][]string{} // src → dsts (an rpm %license may go elsewhere too)
	dirs := map[string]bool{}
	for _, c := range cfg.Contents {
		if c.Type == "dir" {
			dirs[c.Dst] = true
			continue
		}
		dst[c.Src] = append(dst[c.Src], c.Dst)
		if strings.HasPrefix(c.Src, "bin/") { // made by make build and make package
			continue
		}
		if _, err := os.Stat(filepath.Join(repo, c.Src)); err != nil {
			t.Errorf("nfpm.yaml: %v", err)
		}
	}
	for _, s := range cfg.Scripts {
		if _, err := os.Stat(filepath.Join(repo, s)); err != nil {
			t.Errorf("nfpm.yaml: %v", err)
		}
	}

	err := filepath.WalkDir(filepath.Join(repo, "rootfs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, _ := filepath.Rel(repo, p)
		want := strings.TrimPrefix(src, "rootfs")
		switch got, ok := dst[src]; {
		case d.Name() == ".keep": // keeps an empty directory in git; the directory ships
			if !dirs[filepath.Dir(want)] {
				t.Errorf("%s: nfpm.yaml has no `type: dir` entry for %s", src, filepath.Dir(want))
			}
		case !ok:
			t.Errorf("%s is not in packaging/nfpm.yaml", src)
		case !slices.Contains(got, want):
			t.Errorf("%s is installed as %s, want %s", src, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestScriptsParse(t *testing.T) {
	scripts := []string{"version.sh"}
	for _, s := range readNfpm(t).Scripts {
		scripts = append(scripts, filepath.Join(repo, s))
	}
	shellcheck, _ := exec.LookPath("shellcheck")
	for _, s := range scripts {
		t.Run(filepath.Base(s), func(t *testing.T) {
			run(t, "", nil, "sh", "-n", s)
			if shellcheck == "" {
				t.Skip("shellcheck is not installed")
			}
			run(t, "", nil, shellcheck, "--shell=sh", s)
		})
	}
}

// TestMaintainerScripts runs the scripts against a fake root (DPKG_ROOT) with stubs
// for the commands that change the system; the stubs log their arguments. The box
// bench runs the same scripts for real under systemd.
func TestMaintainerScripts(t *testing.T) {
	const (
		install, prerm, postrm = "postinstall.sh", "preremove.sh", "postremove.sh"
		upgraded               = "0.0.0+1.gaaaaaaa"
		masked                 = "redis-server.service\n"
		foundRunning           = "redis-server.service enabled active\n"
	)
	takeOver := func(stop string) []string {
		return []string{
			stop + " stop redis-server.service",
			"systemctl --root=ROOT --quiet disable redis-server.service",
			"systemctl --root=ROOT --quiet mask redis-server.service",
		}
	}
	fresh := []string{
		"chown redis:redis ROOT/var/lib/redis-ha",
		"chown root:redis ROOT/etc/redis-ha/password.tmp",
	}
	debEnable := []string{
		"deb-systemd-helper unmask redis-ha-agent.service",
		"deb-systemd-helper enable redis-ha-agent.service",
	}
	debStart := slices.Concat([]string{"systemctl daemon-reload"}, debEnable, []string{"deb-systemd-invoke start redis-ha-agent.service"})
	// A held install: redis-ha-agent left disabled and stopped, known to deb-systemd-helper.
	debHeld := []string{
		"systemctl daemon-reload",
		"deb-systemd-helper unmask redis-ha-agent.service",
		"deb-systemd-helper update-state redis-ha-agent.service",
	}
	debUpgrade := []string{
		"chown redis:redis ROOT/var/lib/redis-ha",
		"systemctl daemon-reload",
		"deb-systemd-helper unmask redis-ha-agent.service",
		"deb-systemd-helper --quiet was-enabled redis-ha-agent.service",
	}
	var left leftovers
	tests := []struct {
		name    string
		script  string
		args    []string
		offline bool   // no systemd running: image builds, dpkg --root
		setup   []step // the box before the script
		env     []string
		wantLog []string
		wantOut []string // substrings of stdout
		want    []step   // the box after the script
	}{{
		name:   "deb install",
		script: install, args: []string{"configure", ""},
		wantLog: slices.Concat(fresh, takeOver("deb-systemd-invoke"), debStart),
		wantOut: []string{"random password", "masked redis-server.service", "started redis-ha-agent.service"},
		want: []step{
			generatedPassword, dirMode("var/lib/redis-ha", 0o750),
			isMasked("redis-server.service"), file("var/lib/redis-ha/.masked-by-redis-ha", masked),
			absent("var/lib/redis-ha/.removed"), file("var/lib/redis-ha/.debian-units-found", foundRunning),
		},
	}, {
		name:   "install over a Debian redis holding keys leaves both alone",
		script: install, args: []string{"configure", ""},
		env:     []string{"STUB_KEYS=db0:keys=9000,expires=0,avg_ttl=0\ndb3:keys=1000,expires=2,avg_ttl=0"},
		wantLog: slices.Concat(fresh, debHeld),
		wantOut: []string{"redis-server holds 10000 keys (/var/lib/redis)", "left disabled and stopped",
			"systemctl disable --now redis-server.service", "redis-ha-agent adopt-data /var/lib/redis",
			"systemctl enable --now redis-ha-agent.service"},
		want: []step{notMasked("redis-server.service"), absent("var/lib/redis-ha/.masked-by-redis-ha"),
			file("var/lib/redis-ha/.debian-units-found", foundRunning)},
	}, {
		name:   "install over a Debian redis that will not say what it holds",
		script: install, args: []string{"configure", ""},
		env:     []string{"STUB_CLI_FAILS=1"},
		wantLog: slices.Concat(fresh, debHeld),
		wantOut: []string{"redis-server holds data redis-ha-agent could not count (/var/lib/redis)"},
		want:    []step{notMasked("redis-server.service")},
	}, {
		name:   "install beside a stopped Debian redis whose snapshot holds keys",
		script: install, args: []string{"configure", ""},
		setup: []step{file("var/lib/redis/dump.rdb", "REDIS0010"),
			file("etc/redis/redis.conf", "# Debian's\ndir /var/lib/redis\nport 6379\n")},
		env:     []string{"STUB_ACTIVE=inactive", "STUB_ENABLED=disabled", "STUB_RDB_KEYS=42"},
		wantLog: slices.Concat(fresh, debHeld),
		wantOut: []string{"redis-server holds 42 keys (/var/lib/redis)"},
		want: []step{notMasked("redis-server.service"),
			file("var/lib/redis-ha/.debian-units-found", "redis-server.service disabled inactive\n")},
	}, {
		name:   "install beside a stopped Debian redis whose snapshot is empty",
		script: install, args: []string{"configure", ""},
		setup:   []step{file("var/lib/redis/dump.rdb", "REDIS0010")},
		env:     []string{"STUB_ACTIVE=inactive"},
		wantLog: slices.Concat(fresh, takeOver("deb-systemd-invoke"), debStart),
		want:    []step{isMasked("redis-server.service")},
	}, {
		name:   "install beside a Debian append-only file: data it cannot count",
		script: install, args: []string{"configure", ""},
		setup:   []step{file("var/lib/redis/appendonlydir/appendonly.aof.1.incr.aof", "*1\r\n$5\r\nMULTI\r\n")},
		env:     []string{"STUB_ACTIVE=inactive"},
		wantLog: slices.Concat(fresh, debHeld),
		wantOut: []string{"could not count"},
	}, {
		name:   "rpm install without systemd running",
		script: install, args: []string{"1"}, offline: true,
		wantLog: slices.Concat(fresh, []string{
			"systemctl --root=ROOT --quiet disable redis-server.service",
			"systemctl --root=ROOT --quiet mask redis-server.service",
			"systemctl --root=ROOT --quiet enable redis-ha-agent.service",
		}),
		want: []step{generatedPassword, isMasked("redis-server.service"), file("var/lib/redis-ha/.masked-by-redis-ha", masked),
			file("var/lib/redis-ha/.debian-units-found", "redis-server.service enabled inactive\n")},
	}, {
		name:   "deb install without systemd running",
		script: install, args: []string{"configure", ""}, offline: true,
		wantLog: slices.Concat(fresh, []string{
			"systemctl --root=ROOT --quiet disable redis-server.service",
			"systemctl --root=ROOT --quiet mask redis-server.service",
		}, debEnable),
		want: []step{generatedPassword, isMasked("redis-server.service")},
	}, {
		name:   "install keeps the admin's mask and password",
		script: install, args: []string{"configure", ""},
		setup:   []step{mask("redis-server.service"), file("etc/redis-ha/password", "s3cret\n")},
		wantLog: slices.Concat([]string{"chown redis:redis ROOT/var/lib/redis-ha"}, debStart),
		want:    []step{file("etc/redis-ha/password", "s3cret\n"), isMasked("redis-server.service"), absent("var/lib/redis-ha/.masked-by-redis-ha")},
	}, {
		name:   "install creates a missing redis user",
		script: install, args: []string{"1"},
		env: []string{"STUB_NO_REDIS=1"},
		wantLog: slices.Concat([]string{
			"useradd --system --user-group --home-dir /var/lib/redis --no-create-home --shell /usr/sbin/nologin --comment Redis redis",
		}, fresh, takeOver("systemctl"), []string{
			"systemctl daemon-reload",
			"systemctl --root=ROOT --quiet enable redis-ha-agent.service",
			"systemctl start redis-ha-agent.service",
		}),
	}, {
		// Debian 13 with Valkey alone: its user, its units.
		name:   "install on a box with valkey alone",
		script: install, args: []string{"configure", ""},
		env:   []string{"STUB_NO_REDIS=1", "STUB_VALKEY=1"},
		setup: []step{file("usr/lib/systemd/system/valkey-server.service", ""), file("usr/lib/systemd/system/valkey-sentinel.service", "")},
		wantLog: slices.Concat([]string{
			"chown valkey:valkey ROOT/var/lib/redis-ha",
			"chown root:valkey ROOT/etc/redis-ha/password.tmp",
		}, takeOver("deb-systemd-invoke"), []string{
			"deb-systemd-invoke stop valkey-server.service",
			"systemctl --root=ROOT --quiet disable valkey-server.service",
			"systemctl --root=ROOT --quiet mask valkey-server.service",
			"deb-systemd-invoke stop valkey-sentinel.service",
			"systemctl --root=ROOT --quiet disable valkey-sentinel.service",
			"systemctl --root=ROOT --quiet mask valkey-sentinel.service",
		}, debStart),
		want: []step{isMasked("valkey-server.service"), isMasked("valkey-sentinel.service"),
			file("var/lib/redis-ha/.masked-by-redis-ha", masked+"valkey-server.service\nvalkey-sentinel.service\n")},
	}, {
		name:   "install over a Debian valkey holding keys leaves both alone",
		script: install, args: []string{"configure", ""},
		env:   []string{"STUB_NO_REDIS=1", "STUB_VALKEY=1", "STUB_VALKEY_KEYS=db0:keys=7,expires=0,avg_ttl=0"},
		setup: []step{file("usr/lib/systemd/system/valkey-server.service", ""), file("usr/lib/systemd/system/valkey-sentinel.service", "")},
		wantLog: slices.Concat([]string{
			"chown valkey:valkey ROOT/var/lib/redis-ha",
			"chown root:valkey ROOT/etc/redis-ha/password.tmp",
		}, debHeld),
		wantOut: []string{"valkey-server holds 7 keys (/var/lib/valkey)", "redis-ha-agent adopt-data /var/lib/valkey",
			"systemctl disable --now redis-server.service valkey-server.service valkey-sentinel.service"},
		want: []step{notMasked("redis-server.service"), notMasked("valkey-server.service"), absent("var/lib/redis-ha/.masked-by-redis-ha"),
			file("var/lib/redis-ha/.debian-units-found",
				"redis-server.service enabled active\nvalkey-server.service enabled active\nvalkey-sentinel.service enabled active\n")},
	}, {
		name:   "rpm install over a redis holding keys leaves both alone",
		script: install, args: []string{"1"},
		env:     []string{"STUB_KEYS=db0:keys=3,expires=0,avg_ttl=0"},
		wantLog: slices.Concat(fresh, []string{"systemctl daemon-reload"}),
		wantOut: []string{"redis-server holds 3 keys", "left disabled and stopped"},
		want:    []step{notMasked("redis-server.service")},
	}, {
		name:   "a failed start does not fail the install",
		script: install, args: []string{"configure", ""},
		env:     []string{"STUB_START_FAILS=1"},
		wantLog: slices.Concat(fresh, takeOver("deb-systemd-invoke"), debStart),
		wantOut: []string{"did not start: see journalctl -u redis-ha-agent.service"},
	}, {
		name:   "deb upgrade",
		script: install, args: []string{"configure", upgraded},
		setup:   []step{file("etc/redis-ha/password", "s3cret\n")},
		wantLog: slices.Concat(debUpgrade, []string{"deb-systemd-helper enable redis-ha-agent.service", "deb-systemd-invoke try-restart redis-ha-agent.service"}),
		want:    []step{file("etc/redis-ha/password", "s3cret\n"), notMasked("redis-server.service")},
	}, {
		name:   "deb upgrade keeps the admin's disable",
		script: install, args: []string{"configure", upgraded},
		env:     []string{"STUB_NOT_ENABLED=1"},
		wantLog: slices.Concat(debUpgrade, []string{"deb-systemd-helper update-state redis-ha-agent.service", "deb-systemd-invoke try-restart redis-ha-agent.service"}),
	}, {
		name:   "rpm upgrade",
		script: install, args: []string{"2"},
		wantLog: []string{"chown redis:redis ROOT/var/lib/redis-ha", "systemctl daemon-reload", "systemctl try-restart redis-ha-agent.service"},
		want:    []step{absent("etc/redis-ha/password"), notMasked("redis-server.service")},
	}, {
		name:   "deb reinstall after remove starts over",
		script: install, args: []string{"configure", upgraded},
		setup: []step{file("var/lib/redis-ha/.removed", ""), file("etc/redis-ha/password", "s3cret\n"),
			mask("redis-server.service"), file("var/lib/redis-ha/.masked-by-redis-ha", masked)},
		wantLog: slices.Concat([]string{"chown redis:redis ROOT/var/lib/redis-ha"}, debStart),
		want:    []step{absent("var/lib/redis-ha/.removed"), file("var/lib/redis-ha/.masked-by-redis-ha", masked)},
	}, {
		name:   "deb prerm remove",
		script: prerm, args: []string{"remove"},
		setup: []step{dirMode("var/lib/redis-ha", 0o750)},
		wantLog: []string{
			"deb-systemd-invoke stop redis-ha-agent.service",
			"systemctl show -P ControlGroup redis-ha-agent.service",
			"deb-systemd-helper disable redis-ha-agent.service",
		},
		want: []step{file("var/lib/redis-ha/.removed", "")},
	}, {
		// KillMode=process: a dead agent's redis and sentinel are still in the
		// unit's cgroup, and stop does not touch them.
		name:   "prerm remove stops what a dead agent left running",
		script: prerm, args: []string{"0"},
		setup: []step{left.start(), left.start()},
		wantLog: []string{
			"systemctl stop redis-ha-agent.service",
			"systemctl show -P ControlGroup redis-ha-agent.service",
			"systemctl --root=ROOT --quiet disable redis-ha-agent.service",
		},
		wantOut: []string{"stopping what the dead agent left running"},
		want:    []step{left.gone()},
	}, {
		name:   "rpm preun erase",
		script: prerm, args: []string{"0"}, offline: true,
		wantLog: []string{"systemctl --root=ROOT --quiet disable redis-ha-agent.service"},
	}, {
		name: "deb prerm upgrade", script: prerm, args: []string{"upgrade", upgraded},
	}, {
		name: "rpm preun upgrade", script: prerm, args: []string{"1"},
	}, {
		name:   "deb postrm remove keeps everything",
		script: postrm, args: []string{"remove"},
		setup:   []step{file("etc/redis-ha/password", "s3cret\n"), mask("redis-server.service"), file("var/lib/redis-ha/.masked-by-redis-ha", masked)},
		wantLog: []string{"systemctl daemon-reload"},
		wantOut: []string{"still masked until redis-ha-agent is purged: redis-server.service"},
		want:    []step{file("etc/redis-ha/password", "s3cret\n"), isMasked("redis-server.service")},
	}, {
		name:   "deb purge puts the distribution's units back as found",
		script: postrm, args: []string{"purge"},
		setup: []step{mask("redis-server.service"), file("var/lib/redis-ha/.masked-by-redis-ha", masked),
			file("var/lib/redis-ha/.debian-units-found", foundRunning)},
		wantLog: []string{"deb-systemd-helper purge redis-ha-agent.service", "systemctl --root=ROOT --quiet unmask redis-server.service",
			"systemctl --root=ROOT --quiet enable redis-server.service", "deb-systemd-invoke start redis-server.service", "systemctl daemon-reload"},
		wantOut: []string{"unmasked redis-server.service", "enabled redis-server.service again", "started redis-server.service again"},
		want:    []step{absent("var/lib/redis-ha"), notMasked("redis-server.service")},
	}, {
		name:   "purge leaves a unit found disabled disabled",
		script: postrm, args: []string{"purge"}, offline: true,
		setup: []step{mask("redis-server.service"), file("var/lib/redis-ha/.masked-by-redis-ha", masked),
			file("var/lib/redis-ha/.debian-units-found", "redis-server.service disabled inactive\n")},
		wantLog: []string{"deb-systemd-helper purge redis-ha-agent.service", "systemctl --root=ROOT --quiet unmask redis-server.service"},
		wantOut: []string{"unmasked redis-server.service"},
		want:    []step{notMasked("redis-server.service")},
	}, {
		name:   "purge after a held install: the units were never masked",
		script: postrm, args: []string{"purge"},
		setup: []step{file("var/lib/redis-ha/.debian-units-found", foundRunning)},
		wantLog: []string{"deb-systemd-helper purge redis-ha-agent.service", "systemctl --root=ROOT --quiet enable redis-server.service",
			"deb-systemd-invoke start redis-server.service", "systemctl daemon-reload"},
		wantOut: []string{"enabled redis-server.service again", "started redis-server.service again"},
	}, {
		// deb-systemd-invoke starts enabled units only: the admin is told.
		name:   "purge of a unit found running though disabled",
		script: postrm, args: []string{"purge"},
		setup:   []step{file("var/lib/redis-ha/.debian-units-found", "redis-server.service disabled active\n")},
		wantLog: []string{"deb-systemd-helper purge redis-ha-agent.service", "systemctl daemon-reload"},
		wantOut: []string{"redis-server.service ran, though disabled", "systemctl start redis-server.service to run it again"},
	}, {
		name:   "rpm erase puts the distribution's units back as found",
		script: postrm, args: []string{"0"},
		setup: []step{mask("redis-server.service"), file("var/lib/redis-ha/.masked-by-redis-ha", masked),
			file("var/lib/redis-ha/.debian-units-found", "redis-server.service disabled active\n")},
		wantLog: []string{"systemctl --root=ROOT --quiet unmask redis-server.service", "systemctl start redis-server.service", "systemctl daemon-reload"},
		wantOut: []string{"unmasked redis-server.service", "started redis-server.service again"},
		want:    []step{notMasked("redis-server.service"), absent("var/lib/redis-ha/.debian-units-found")},
	}, {
		name:   "deb purge",
		script: postrm, args: []string{"purge"},
		setup: []step{file("etc/redis-ha/password", "s3cret\n"), file("var/lib/redis-ha/appendonlydir/x.aof", "x"),
			mask("redis-server.service"), mask("redis-sentinel.service"), file("var/lib/redis-ha/.masked-by-redis-ha", masked)},
		wantLog: []string{"deb-systemd-helper purge redis-ha-agent.service", "systemctl --root=ROOT --quiet unmask redis-server.service", "systemctl daemon-reload"},
		wantOut: []string{"unmasked redis-server.service", "removed /var/lib/redis-ha"},
		want: []step{absent("var/lib/redis-ha"), absent("etc/redis-ha"),
			notMasked("redis-server.service"), isMasked("redis-sentinel.service")},
	}, {
		name:   "purge leaves a unit the admin has unmasked since",
		script: postrm, args: []string{"purge"}, offline: true,
		setup: []step{file("var/lib/redis-ha/.masked-by-redis-ha", "redis-server.service\nredis-sentinel.service\n"),
			mask("redis-sentinel.service"), file("etc/redis-ha/conf.d/10-cluster.conf", "")},
		wantLog: []string{"deb-systemd-helper purge redis-ha-agent.service", "systemctl --root=ROOT --quiet unmask redis-sentinel.service"},
		wantOut: []string{"unmasked redis-sentinel.service"},
		want:    []step{absent("var/lib/redis-ha"), notMasked("redis-sentinel.service"), file("etc/redis-ha/conf.d/10-cluster.conf", "")},
	}, {
		name:   "rpm postun erase gives the redis units back",
		script: postrm, args: []string{"0"},
		setup: []step{file("etc/redis-ha/password", "s3cret\n"), file("var/lib/redis-ha/.removed", ""),
			mask("redis-server.service"), file("var/lib/redis-ha/.masked-by-redis-ha", masked)},
		wantLog: []string{"systemctl --root=ROOT --quiet unmask redis-server.service", "systemctl daemon-reload"},
		wantOut: []string{"unmasked redis-server.service", "kept /var/lib/redis-ha and /etc/redis-ha/password"},
		want: []step{notMasked("redis-server.service"), file("etc/redis-ha/password", "s3cret\n"),
			absent("var/lib/redis-ha/.masked-by-redis-ha"), absent("var/lib/redis-ha/.removed")},
	}, {
		name: "deb postrm upgrade", script: postrm, args: []string{"upgrade", upgraded},
	}, {
		name: "rpm postun upgrade", script: postrm, args: []string{"1"},
	}}

	stubs := writeStubs(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range []string{"etc/redis-ha/conf.d", "etc/systemd/system", "usr/lib/systemd/system"} {
				must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
			}
			must(t, os.WriteFile(filepath.Join(root, "usr/lib/systemd/system/redis-server.service"), nil, 0o644))
			if !tt.offline {
				must(t, os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755))
			}
			for _, s := range tt.setup {
				s.do(t, root)
			}
			log := filepath.Join(t.TempDir(), "log")
			env := append([]string{
				"PATH=" + stubs + ":/usr/sbin:/usr/bin:/sbin:/bin",
				"DPKG_ROOT=" + root,
				"STUB_LOG=" + log,
			}, tt.env...)
			out := run(t, "", env, "sh", append([]string{filepath.Join("scripts", tt.script)}, tt.args...)...)

			b, _ := os.ReadFile(log)
			got := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(b), root, "ROOT")), "\n")
			if len(b) == 0 {
				got = nil
			}
			if !slices.Equal(got, tt.wantLog) {
				t.Errorf("commands:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.wantLog, "\n  "))
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output %q lacks %q", out, w)
				}
			}
			if len(tt.wantOut) == 0 && tt.script != install && out != "" {
				t.Errorf("output %q, want none", out)
			}
			for _, s := range tt.want {
				s.check(t, root)
			}
		})
	}
}

// step prepares (do) or checks (check) one fact about the fake root.
type step struct {
	do, check func(t *testing.T, root string)
}

func file(rel, content string) step {
	return step{
		do: func(t *testing.T, root string) {
			p := filepath.Join(root, rel)
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.WriteFile(p, []byte(content), 0o640))
		},
		check: func(t *testing.T, root string) {
			b, err := os.ReadFile(filepath.Join(root, rel))
			if err != nil || string(b) != content {
				t.Errorf("%s = %q (%v), want %q", rel, b, err, content)
			}
		},
	}
}

func absent(rel string) step {
	return step{check: func(t *testing.T, root string) {
		if _, err := os.Lstat(filepath.Join(root, rel)); !os.IsNotExist(err) {
			t.Errorf("%s exists (%v), want it gone", rel, err)
		}
	}}
}

func dirMode(rel string, mode fs.FileMode) step {
	return step{
		do: func(t *testing.T, root string) { must(t, os.MkdirAll(filepath.Join(root, rel), mode)) },
		check: func(t *testing.T, root string) {
			fi, err := os.Stat(filepath.Join(root, rel))
			if err != nil || !fi.IsDir() || fi.Mode().Perm() != mode {
				t.Errorf("%s: %v %v, want a directory of mode %v", rel, fi.Mode(), err, mode)
			}
		},
	}
}

func mask(unit string) step {
	return step{do: func(t *testing.T, root string) {
		must(t, os.Symlink("/dev/null", filepath.Join(root, "etc/systemd/system", unit)))
	}}
}

func isMasked(unit string) step  { return maskCheck(unit, true) }
func notMasked(unit string) step { return maskCheck(unit, false) }

func maskCheck(unit string, want bool) step {
	return step{check: func(t *testing.T, root string) {
		target, _ := os.Readlink(filepath.Join(root, "etc/systemd/system", unit))
		if got := target == "/dev/null"; got != want {
			t.Errorf("%s masked = %v, want %v", unit, got, want)
		}
	}}
}

// generatedPassword: 32 letters and digits, which survive sentinel's config rewrite,
// readable by root and the redis group only.
var generatedPassword = step{check: func(t *testing.T, root string) {
	p := filepath.Join(root, "etc/redis-ha/password")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9]{32}\n$`).Match(b) {
		t.Errorf("password %q, want 32 letters and digits and a newline", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("password mode %v, want 0640", fi.Mode())
	}
	if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("password.tmp left behind")
	}
}}

// leftovers stand in for the redis and sentinel a dead agent left in its unit's
// cgroup: start runs one there (in the fake root's cgroup tree), gone checks that
// the script stopped every one.
type leftovers struct {
	done []chan struct{}
}

func (l *leftovers) start() step {
	return step{do: func(t *testing.T, root string) {
		cmd := exec.Command("sleep", "300")
		must(t, cmd.Start())
		done := make(chan struct{})
		l.done = append(l.done, done)
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
		dir := filepath.Join(root, "sys/fs/cgroup/system.slice/redis-ha-agent.service")
		must(t, os.MkdirAll(dir, 0o755))
		f, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		must(t, err)
		defer f.Close()
		_, err = fmt.Fprintln(f, cmd.Process.Pid)
		must(t, err)
	}}
}

func (l *leftovers) gone() step {
	return step{check: func(t *testing.T, root string) {
		for i, done := range l.done {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("leftover process %d still runs", i)
			}
		}
	}}
}

// writeStubs writes stand-ins for the commands that would change this machine. The
// systemctl stub does what systemctl --root does to a mask: one symlink.
func writeStubs(t *testing.T) string {
	dir := t.TempDir()
	stubs := map[string]string{
		// Questions (is-enabled, is-active) change nothing and are not logged; they
		// answer STUB_ENABLED and STUB_ACTIVE (enabled, active by default).
		"systemctl": `root= verb= unit= quiet=
for a; do
	case $a in --root=*) root=${a#--root=} ;; --quiet) quiet=1 ;; -*) ;; *) if [ -z "$verb" ]; then verb=$a; else unit=$a; fi ;; esac
done
case $verb in
is-enabled) echo "${STUB_ENABLED:-enabled}"; exit 0 ;;
is-active) a=${STUB_ACTIVE:-active}; [ -n "$quiet" ] || echo "$a"; [ "$a" = active ]; exit ;;
esac
echo "systemctl $*" >>"$STUB_LOG"
case $verb in
mask) ln -s /dev/null "$root/etc/systemd/system/$unit" ;;
unmask) rm "$root/etc/systemd/system/$unit" ;;
start) [ -z "$STUB_START_FAILS" ] ;;
show) echo /system.slice/redis-ha-agent.service ;;
esac`,
		"deb-systemd-helper": `echo "deb-systemd-helper $*" >>"$STUB_LOG"
case $* in *was-enabled*) [ -z "$STUB_NOT_ENABLED" ] ;; esac`,
		"deb-systemd-invoke": `echo "deb-systemd-invoke $*" >>"$STUB_LOG"
case $1 in start) [ -z "$STUB_START_FAILS" ] ;; esac`,
		// Debian's redis (and valkey) as their cli and check-rdb see them: STUB_KEYS is
		// INFO keyspace's lines, STUB_RDB_KEYS what a snapshot holds.
		"redis-cli": `[ -z "$STUB_CLI_FAILS" ] || { echo "NOAUTH Authentication required."; exit 0; }
printf '# Keyspace\n%s\n' "$STUB_KEYS"`,
		"redis-check-rdb": `echo "[info] ${STUB_RDB_KEYS:-0} keys read"`,
		"valkey-cli": `[ -z "$STUB_CLI_FAILS" ] || { echo "NOAUTH Authentication required."; exit 0; }
printf '# Keyspace\n%s\n' "$STUB_VALKEY_KEYS"`,
		"valkey-check-rdb": `echo "[info] ${STUB_RDB_KEYS:-0} keys read"`,
		"chown":            `echo "chown $*" >>"$STUB_LOG"`,
		"useradd":          `echo "useradd $*" >>"$STUB_LOG"`,
		"getent": `case $2 in
valkey) [ -n "$STUB_VALKEY" ] ;;
*) [ -z "$STUB_NO_REDIS" ] ;;
esac`,
	}
	for name, body := range stubs {
		must(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	}
	return dir
}

// TestVersion walks a repository through its life and checks that every version is
// the expected one and sorts after the one before, for dpkg and for rpm.
func TestVersion(t *testing.T) {
	dir := t.TempDir()
	script, err := filepath.Abs("version.sh")
	must(t, err)
	env := []string{"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com"}
	git := func(args ...string) string { return strings.TrimSpace(run(t, dir, env, "git", args...)) }
	commit := func(content string) {
		must(t, os.WriteFile(filepath.Join(dir, "f"), []byte(content), 0o644))
		git("add", "f")
		git("commit", "-q", "-m", content)
	}
	git("-c", "init.defaultBranch=main", "init", "-q")

	var versions []string
	for _, step := range []struct {
		do   func()
		want string // %s = the abbreviated commit
	}{
		{func() { commit("1") }, "0.0.0+1.g%s"},
		{func() { commit("2") }, "0.0.0+2.g%s"},
		{func() { must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("dirty"), 0o644)) }, "0.0.0+2.g%s.dirty"},
		{func() { commit("3") }, "0.0.0+3.g%s"},
		{func() { git("tag", "v0.1.0-rc1") }, "0.1.0~rc1"},
		{func() { commit("4") }, "0.1.0~rc1+1.g%s"},
		{func() { commit("5"); git("tag", "v0.1.0") }, "0.1.0"},
		{func() { git("tag", "not-a-version") }, "0.1.0"},
		{func() { commit("6") }, "0.1.0+1.g%s"},
		{func() { commit("7") }, "0.1.0+2.g%s"},
	} {
		step.do()
		want := strings.ReplaceAll(step.want, "%s", git("rev-parse", "--short=7", "HEAD"))
		got := strings.TrimSpace(run(t, dir, env, "sh", script))
		if got != want {
			t.Errorf("version %q, want %q", got, want)
		}
		versions = append(versions, got)
	}

	for i := 1; i < len(versions); i++ {
		a, b := versions[i-1], versions[i]
		if a == b {
			continue
		}
		if _, err := exec.LookPath("dpkg"); err == nil {
			if err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run(); err != nil {
				t.Errorf("dpkg: %s does not sort before %s", a, b)
			}
		}
		if _, err := exec.LookPath("rpm"); err == nil {
			cmp := run(t, "", nil, "rpm", "--eval", `%{lua:print(rpm.vercmp("`+a+`", "`+b+`"))}`)
			if strings.TrimSpace(cmp) != "-1" {
				t.Errorf("rpm: %s does not sort before %s", a, b)
			}
		}
	}
}

// TestPackages builds both packages with `make package` and reads them back with the
// distributions' own tools.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and both packages")
	}
	for _, tool := range []string{"make", "dpkg-deb", "rpm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%v: make deps installs it", err)
		}
	}
	debArch, rpmArch := map[string]string{"amd64": "amd64", "arm64": "arm64"}[runtime.GOARCH],
		map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	if debArch == "" {
		t.Skipf("no package architecture names for GOARCH=%s", runtime.GOARCH)
	}
	const version = "0.0.0+0.gtest"
	dist := t.TempDir()
	run(t, repo, nil, "make", "--no-print-directory", "package", "PKG_VERSION="+version, "DIST="+dist)
	deb := filepath.Join(dist, "redis-ha-agent_"+version+"-1_"+debArch+".deb")
	rpm := filepath.Join(dist, "redis-ha-agent-"+version+"-1."+rpmArch+".rpm")
	scripts := map[string]string{}
	for _, s := range []string{"postinstall.sh", "preremove.sh", "postremove.sh"} {
		b, err := os.ReadFile(filepath.Join("scripts", s))
		must(t, err)
		scripts[s] = string(b)
	}

	t.Run("deb", func(t *testing.T) {
		fields := run(t, "", nil, "dpkg-deb", "-f", deb, "Package", "Version", "Architecture", "Section", "Depends")
		want := "Package: redis-ha-agent\nVersion: " + version + "-1\nArchitecture: " + debArch + "\nSection: database\n" +
			"Depends: redis-server (>= 5:7.0) | valkey-server, init-system-helpers (>= 1.54~)\n"
		if fields != want {
			t.Errorf("control fields:\n%s\nwant:\n%s", fields, want)
		}

		wantFiles := map[string]string{
			"/usr/bin/redis-ha-agent":                        "-rwxr-xr-x root/root",
			"/usr/lib/systemd/system/redis-ha-agent.service": "-rw-r--r-- root/root",
			"/usr/lib/tmpfiles.d/redis-ha-agent.conf":        "-rw-r--r-- root/root",
			"/etc/redis-ha/redis-ha.conf":                    "-rw-r--r-- root/root",
			"/etc/redis-ha/conf.d/":                          "drwxr-xr-x root/root",
			"/usr/share/doc/redis-ha-agent/README.md":        "-rw-r--r-- root/root",
			"/usr/share/doc/redis-ha-agent/copyright":        "-rw-r--r-- root/root",
			// nfpm writes the changelog with ids but no names: root all the same.
			"/usr/share/doc/redis-ha-agent/changelog.Debian.gz":     "-rw-r--r-- 0/0",
			"/usr/share/lintian/overrides/redis-ha-agent":           "-rw-r--r-- root/root",
			"/usr/share/man/man8/redis-ha-agent.8.gz":               "-rw-r--r-- root/root",
			"/usr/share/man/man5/redis-ha.conf.5.gz":                "-rw-r--r-- root/root",
			"/usr/share/bash-completion/completions/redis-ha-agent": "-rw-r--r-- root/root",
			"/usr/share/zsh/vendor-completions/_redis-ha-agent":     "-rw-r--r-- root/root",
		}
		for _, f := range examples {
			wantFiles["/usr/share/doc/redis-ha-agent/examples/"+f] = "-rw-r--r-- root/root"
		}
		for _, line := range strings.Split(strings.TrimSpace(run(t, "", nil, "dpkg-deb", "-c", deb)), "\n") {
			f := strings.Fields(line) // perms owner size date time path
			path, mode := strings.TrimPrefix(f[5], "."), f[0]+" "+f[1]
			if w, ok := wantFiles[path]; ok {
				if mode != w {
					t.Errorf("%s: %s, want %s", path, mode, w)
				}
				delete(wantFiles, path)
			} else if !strings.HasPrefix(mode, "d") {
				t.Errorf("unexpected file %s", path)
			}
		}
		for path := range wantFiles {
			t.Errorf("%s is missing", path)
		}

		if got := run(t, "", nil, "dpkg-deb", "-I", deb, "conffiles"); got != "/etc/redis-ha/redis-ha.conf\n" {
			t.Errorf("conffiles = %q", got)
		}
		for name, s := range map[string]string{"postinst": "postinstall.sh", "prerm": "preremove.sh", "postrm": "postremove.sh"} {
			if got := run(t, "", nil, "dpkg-deb", "-I", deb, name); got != scripts[s] {
				t.Errorf("%s is not scripts/%s", name, s)
			}
		}

		root := t.TempDir()
		run(t, "", nil, "dpkg-deb", "-x", deb, root)
		bin := filepath.Join(root, "usr/bin/redis-ha-agent")
		f, err := elf.Open(bin)
		must(t, err)
		defer f.Close()
		libs, _ := f.ImportedLibraries()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || len(libs) > 0 {
				t.Errorf("%s is dynamically linked (%v), want static", bin, libs)
				break
			}
		}
		if got, want := run(t, "", nil, bin, "version"), "redis-ha-agent "+version+"\n"; got != want {
			t.Errorf("version prints %q, want %q: the binary and the package name one build", got, want)
		}

		// The changelog is git's: its newest entry is this package's version.
		changelog := filepath.Join(t.TempDir(), "changelog")
		gz := run(t, "", nil, "gzip", "-dc", filepath.Join(root, "usr/share/doc/redis-ha-agent/changelog.Debian.gz"))
		must(t, os.WriteFile(changelog, []byte(gz), 0o644))
		if got := run(t, "", nil, "dpkg-parsechangelog", "-l", changelog, "-S", "Version"); got != version+"-1\n" {
			t.Errorf("changelog.Debian.gz: newest entry %q, want %s-1", got, version)
		}
		copyrightListsModules(t, bin, filepath.Join(root, "usr/share/doc/redis-ha-agent/copyright"))

		t.Run("lintian", func(t *testing.T) { lintian(t, deb) })

		// The tmpfiles.d entry recreates the state directory at boot, private; the
		// agent hands it to its server's user (redis or valkey) when it starts.
		if _, err := exec.LookPath("systemd-tmpfiles"); err == nil && os.Geteuid() == 0 {
			box := t.TempDir()
			run(t, "", nil, "systemd-tmpfiles", "--create", "--root="+box, filepath.Join(root, "usr/lib/tmpfiles.d/redis-ha-agent.conf"))
			dirMode("var/lib/redis-ha", 0o750).check(t, box)
		}

		// systemd-analyze verify works without a running systemd. It needs the
		// commands to exist, so it checks a copy pointing at the packaged binary.
		if _, err := exec.LookPath("systemd-analyze"); err != nil {
			t.Skip("systemd-analyze is not installed")
		}
		unit, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/redis-ha-agent.service"))
		must(t, err)
		copied := filepath.Join(t.TempDir(), "redis-ha-agent.service")
		must(t, os.WriteFile(copied, []byte(strings.ReplaceAll(string(unit), "/usr/bin/redis-ha-agent", bin)), 0o644))
		if out := run(t, "", nil, "systemd-analyze", "verify", copied); out != "" {
			t.Errorf("systemd-analyze verify:\n%s", out)
		}
	})

	t.Run("rpm", func(t *testing.T) {
		got := run(t, "", nil, "rpm", "-qp", "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}", rpm)
		if want := "redis-ha-agent " + version + " 1 " + rpmArch; got != want {
			t.Errorf("rpm -qp: %q, want %q", got, want)
		}
		requires := strings.Split(run(t, "", nil, "rpm", "-qp", "--requires", rpm), "\n")
		for _, w := range []string{"(redis >= 7.0 or valkey)", "systemd"} {
			if !slices.Contains(requires, w) {
				t.Errorf("requires %q, want %q", requires, w)
			}
		}

		// Flags "cn" is %config(noreplace), "d" %doc, "l" %license.
		wantFiles := map[string]string{
			"/etc/redis-ha":                                         " drwxr-xr-x",
			"/etc/redis-ha/conf.d":                                  " drwxr-xr-x",
			"/etc/redis-ha/redis-ha.conf":                           "cn -rw-r--r--",
			"/usr/bin/redis-ha-agent":                               " -rwxr-xr-x",
			"/usr/lib/systemd/system/redis-ha-agent.service":        " -rw-r--r--",
			"/usr/lib/tmpfiles.d/redis-ha-agent.conf":               " -rw-r--r--",
			"/usr/share/doc/redis-ha-agent/README.md":               "d -rw-r--r--",
			"/usr/share/licenses/redis-ha-agent/copyright":          "l -rw-r--r--",
			"/usr/share/man/man8/redis-ha-agent.8.gz":               "d -rw-r--r--",
			"/usr/share/man/man5/redis-ha.conf.5.gz":                "d -rw-r--r--",
			"/usr/share/bash-completion/completions/redis-ha-agent": " -rw-r--r--",
			"/usr/share/zsh/vendor-completions/_redis-ha-agent":     " -rw-r--r--",
		}
		for _, f := range examples {
			wantFiles["/usr/share/doc/redis-ha-agent/examples/"+f] = "d -rw-r--r--"
		}
		files := run(t, "", nil, "rpm", "-qp", "--qf", `[%{FILENAMES}	%{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME}\n]`, rpm)
		for _, line := range strings.Split(strings.TrimSpace(files), "\n") {
			path, rest, _ := strings.Cut(line, "\t")
			want, ok := wantFiles[path]
			switch {
			case !ok:
				t.Errorf("unexpected file %s", path)
			case rest != want+" root:root":
				t.Errorf("%s: %q, want %q", path, rest, want+" root:root")
			}
			delete(wantFiles, path)
		}
		for path := range wantFiles {
			t.Errorf("%s is missing", path)
		}

		out := run(t, "", nil, "rpm", "-qp", "--scripts", rpm)
		for head, s := range map[string]string{"postinstall": "postinstall.sh", "preuninstall": "preremove.sh", "postuninstall": "postremove.sh"} {
			if !strings.Contains(out, head+" scriptlet (using /bin/sh):\n"+scripts[s]) {
				t.Errorf("%s scriptlet is not scripts/%s", head, s)
			}
		}
		if strings.Count(out, "scriptlet") != 3 {
			t.Errorf("want exactly three scriptlets:\n%s", out)
		}

		info := run(t, "", nil, "rpm", "-qp", "--qf", "%{SUMMARY}|%{GROUP}", rpm)
		if want := "High availability for the distribution's Redis, in one agent|System Environment/Daemons"; info != want {
			t.Errorf("summary|group = %q, want %q", info, want)
		}
		if cl := run(t, "", nil, "rpm", "-qp", "--changelog", rpm); !strings.Contains(cl, "- "+version+"-1\n") {
			t.Errorf("%%changelog lacks this version's entry:\n%s", cl)
		}

		t.Run("rpmlint", func(t *testing.T) { rpmlint(t, rpm) })

		t.Run("installed into a tree", func(t *testing.T) {
			// The same build under a higher version, for the upgrade.
			dist2 := t.TempDir()
			run(t, repo, nil, "make", "--no-print-directory", "package", "PKG_VERSION="+version+".1", "DIST="+dist2)
			testRPMInTree(t, rpm, filepath.Join(dist2, "redis-ha-agent-"+version+".1-1."+rpmArch+".rpm"))
		})
	})
}

// examples are the files of /usr/share/doc/redis-ha-agent/examples.
var examples = []string{"go-redis.go", "grafana-dashboard.json", "haproxy.cfg", "prometheus-alerts.yml", "redis-py.py"}

// lintianPending are the tags the deb still earns, each with what removes it. Every
// other tag fails the test; the deliberate ones are overridden in the package itself
// (rootfs/usr/share/lintian/overrides), each with its reason.
var lintianPending = map[string]string{}

// lintian runs lintian (errors, warnings and info) on the deb; it fails on any tag
// that is neither overridden nor pending, and on an override that no longer matches.
func lintian(t *testing.T, deb string) {
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Fatalf("%v: make deps installs it", err)
	}
	// lintian exits 2 when it finds errors: the tags are judged below.
	out, _ := exec.Command("lintian", "--display-info", "--show-overrides", deb).CombinedOutput()
	t.Logf("lintian --display-info --show-overrides %s:\n%s", filepath.Base(deb), out)
	tag := regexp.MustCompile(`^([EWIPXO]): redis-ha-agent: (\S+)( .*)?$`)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		m := tag.FindStringSubmatch(line)
		switch {
		case m == nil:
			// N: lines: the overrides' reasons.
		case m[1] == "O":
		case lintianPending[m[2]] != "":
			t.Logf("pending: %s: %s", m[2], lintianPending[m[2]])
		// The override holds while the changelog has one entry, i.e. until the
		// first release tag: it is then no longer the initial upload.
		case m[2] == "unused-override" && strings.Contains(m[3], "initial-upload-closes-no-bugs"):
		default:
			t.Errorf("lintian: %s", line)
		}
	}
}

// rpmlintPending is lintianPending for rpmlint; its filters, with their reasons, are
// packaging/rpmlintrc.
var rpmlintPending = map[string]string{}

func rpmlint(t *testing.T, rpm string) {
	if _, err := exec.LookPath("rpmlint"); err != nil {
		t.Fatalf("%v: make deps installs it", err)
	}
	// rpmlint exits non-zero on errors, filtered or not: the lines are judged below.
	out, _ := exec.Command("rpmlint", "-r", "rpmlintrc", rpm).CombinedOutput()
	t.Logf("rpmlint -r packaging/rpmlintrc %s:\n%s", filepath.Base(rpm), out)
	tag := regexp.MustCompile(`^redis-ha-agent\.\S+: ([EW]): (\S+)`)
	for _, line := range strings.Split(string(out), "\n") {
		m := tag.FindStringSubmatch(line)
		switch {
		case m == nil:
		case rpmlintPending[m[2]] != "":
			t.Logf("pending: %s: %s", m[2], rpmlintPending[m[2]])
		default:
			t.Errorf("rpmlint: %s", line)
		}
	}
	if !strings.Contains(string(out), "1 packages and 0 specfiles checked") {
		t.Errorf("rpmlint checked no package:\n%s", out)
	}
}

// copyrightListsModules keeps the copyright file's list of Go modules equal to the
// modules linked into the binary: a new dependency needs its license there.
func copyrightListsModules(t *testing.T, bin, copyright string) {
	b, err := os.ReadFile(copyright)
	must(t, err)
	listed := map[string]bool{}
	inFiles := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "Files:"):
			inFiles = true
			line = strings.TrimPrefix(line, "Files:")
		case inFiles && strings.HasPrefix(line, " "):
		default:
			inFiles = false
			continue
		}
		for _, f := range strings.Fields(line) {
			listed[f] = true
		}
	}
	for _, line := range strings.Split(run(t, "", nil, "go", "version", "-m", bin), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "dep" {
			continue
		}
		if !listed[f[1]] {
			t.Errorf("copyright: module %s is linked into the binary but has no Files: paragraph", f[1])
		}
		delete(listed, f[1])
	}
	for m := range listed {
		if strings.Contains(m, ".") && strings.Contains(m, "/") {
			t.Errorf("copyright: module %s is listed but not linked into the binary", m)
		}
	}
}

// run runs a command in dir (the test's own when empty) with extra environment and
// returns its stdout; any failure or output on stderr fails the test.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
