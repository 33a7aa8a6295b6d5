package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The findings of the security review about configuration files (L1, L4,
// L6, L7, M3), each as a tree that Load must refuse, saying why, in bounded
// time.

const nobody = 65534

// secTree is a base file, a password file and conf.d, all root's.
func secTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "password"), testPassword+"\n", 0o640)
	writeFile(t, filepath.Join(dir, "redis-ha.conf"), fmt.Sprintf("[auth]\npassword_file = %q\n", filepath.Join(dir, "password")), 0o644)
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func loadWithin(t *testing.T, dir string) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := Load(filepath.Join(dir, "redis-ha.conf"), testEnv([]string{"127.0.0.1", "10.0.0.1"}, nil))
		errc <- err
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Load hangs")
		return nil
	}
}

func chown(t *testing.T, path string, uid, gid int) {
	t.Helper()
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}

func TestConfigFilesRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	dropIn := "[node]\npriority = 5\n"
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"drop-in is a FIFO", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "conf.d", "10-x.conf"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "conf.d/10-x.conf: read: not a regular file"},
		{"drop-in linked to /dev/zero", func(t *testing.T, dir string) {
			if err := os.Symlink("/dev/zero", filepath.Join(dir, "conf.d", "10-x.conf")); err != nil {
				t.Fatal(err)
			}
		}, "conf.d/10-x.conf: read: not a regular file"},
		{"drop-in over 1 MiB", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "conf.d", "10-x.conf"), "#"+strings.Repeat(" ", 1<<20)+"\n", 0o644)
		}, "conf.d/10-x.conf: read: too large: more than 1048576 bytes"},
		{"conf.d writable by others", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "conf.d", "10-x.conf"), dropIn, 0o644)
			if err := os.Chmod(filepath.Join(dir, "conf.d"), 0o777); err != nil {
				t.Fatal(err)
			}
		}, "conf.d/10-x.conf: refused: the agent runs as root what this file says, yet directory " + "@DIR@/conf.d is writable by others"},
		{"drop-in writable by group redis", func(t *testing.T, dir string) {
			f := filepath.Join(dir, "conf.d", "10-x.conf")
			writeFile(t, f, dropIn, 0o664)
			chown(t, f, 0, nobody)
		}, "is writable by group 65534 (mode 0664)"},
		{"drop-in owned by another user", func(t *testing.T, dir string) {
			f := filepath.Join(dir, "conf.d", "10-x.conf")
			writeFile(t, f, dropIn, 0o644)
			chown(t, f, nobody, nobody)
		}, "is owned by uid 65534, not root"},
		{"password of 20 MB", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "password"), strings.Repeat("x", 20<<20)+"\n", 0o640)
		}, "auth.password_file: @DIR@/password: read: too large: more than 4096 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := secTree(t)
			tc.setup(t, dir)
			err := loadWithin(t, dir)
			want := strings.ReplaceAll(tc.want, "@DIR@", dir)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Load: %v\nwant a problem containing %q", err, want)
			}
		})
	}
}

// TestHookRefused: the agent runs the hook as root, so only root may be
// able to change it or any directory above it (review M3).
func TestHookRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	cases := []struct {
		name string
		hook func(t *testing.T, dir string) string
		want string // "" = accepted
	}{
		{"root's, 0755", func(t *testing.T, dir string) string {
			return mkHook(t, filepath.Join(dir, "hooks"), 0o755, 0, 0)
		}, ""},
		{"writable by group redis", func(t *testing.T, dir string) string {
			return mkHook(t, filepath.Join(dir, "hooks"), 0o775, 0, nobody)
		}, "is writable by group 65534"},
		{"owned by another user", func(t *testing.T, dir string) string {
			return mkHook(t, filepath.Join(dir, "hooks"), 0o755, nobody, nobody)
		}, "is owned by uid 65534, not root"},
		{"in a directory anyone can write", func(t *testing.T, dir string) string {
			h := mkHook(t, filepath.Join(dir, "hooks"), 0o755, 0, 0)
			if err := os.Chmod(filepath.Dir(h), 0o777); err != nil {
				t.Fatal(err)
			}
			return h
		}, "hooks is writable by others"},
		{"in a directory of the redis user", func(t *testing.T, dir string) string {
			h := mkHook(t, filepath.Join(dir, "hooks"), 0o755, 0, 0)
			chown(t, filepath.Dir(h), nobody, nobody)
			return h
		}, "hooks is owned by uid 65534"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := secTree(t)
			h := tc.hook(t, dir)
			writeFile(t, filepath.Join(dir, "conf.d", "10-hook.conf"), fmt.Sprintf("[hooks]\non_role_change = %q\n", h), 0o644)
			err := loadWithin(t, dir)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Load: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), "hooks.on_role_change: "+h+": the agent runs it as root, yet") || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Load: %v\nwant a hooks.on_role_change problem containing %q", err, tc.want)
			}
		})
	}
}

func mkHook(t *testing.T, dir string, mode os.FileMode, uid, gid int) string {
	t.Helper()
	h := filepath.Join(dir, "hook.sh")
	writeFile(t, h, "#!/bin/sh\n", mode)
	chown(t, h, uid, gid)
	return h
}

func TestConfigValuesRefused(t *testing.T) {
	cases := []struct {
		name, dropIn string
		want         []string
		never        string // must not appear in the message
	}{
		{"settings that switch auth off", `[redis.settings]
user = "default on nopass ~* +@all"
aclfile = "/tmp/users.acl"
loadmodule = "/tmp/evil.so"
enable-protected-configs = "yes"
enable-debug-command = "yes"
ENABLE-MODULE-COMMAND = "yes"
`, []string{"redis.settings.user: the agent sets user itself", "redis.settings.aclfile:", "redis.settings.loadmodule:",
			"redis.settings.enable-protected-configs:", "redis.settings.enable-debug-command:", "redis.settings.ENABLE-MODULE-COMMAND:"}, ""},
		{"a type error never echoes the value", "[redis.settings]\nmasterauth = 424242\nmaxmemory = 12345\n",
			[]string{"redis.settings.masterauth: wrong type", "redis.settings.maxmemory: wrong type"}, "424242"},
		{"http.listen on the redis port", "[http]\nlisten = \"127.0.0.1:6379\"\n", []string{"http.listen: \"127.0.0.1:6379\": port 6379 is redis.port or sentinel.port"}, ""},
		{"http.listen on the sentinel port", "[http]\nlisten = \":26379\"\n", []string{"port 26379 is redis.port or sentinel.port"}, ""},
		{"semantic problems beside syntax ones", "[cluster]\npeers = [\"10.0.0.1\", \"10.0.0.2\", \"10.0.0.3\"]\nbootstrap_primary = \"10.0.0.9\"\n[redis]\nprot = 1\nport = \"x\"\n",
			[]string{"redis.prot: unknown key", "redis.port: wrong type", "cluster.bootstrap_primary: \"10.0.0.9\" is not one of cluster.peers"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := secTree(t)
			writeFile(t, filepath.Join(dir, "conf.d", "10-x.conf"), tc.dropIn, 0o644)
			err := loadWithin(t, dir)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("no problem %q in:\n%v", w, err)
				}
			}
			if tc.never != "" && strings.Contains(err.Error(), tc.never) {
				t.Errorf("the message repeats %q:\n%v", tc.never, err)
			}
		})
	}
}

// TestSemanticProblemsWithSyntaxError: a syntax error in one file does not
// hide what is wrong in the others, nor in the lines before it.
func TestSemanticProblemsWithSyntaxError(t *testing.T) {
	dir := secTree(t)
	writeFile(t, filepath.Join(dir, "conf.d", "10-a.conf"), "[node]\npriority = -5\n[redis\n", 0o644)
	writeFile(t, filepath.Join(dir, "conf.d", "20-b.conf"), "[redis]\npersistence = \"sometimes\"\n", 0o644)
	err := loadWithin(t, dir)
	for _, w := range []string{"10-a.conf:3:", "syntax error", "10-a.conf:2: node.priority: -5", "20-b.conf:2: redis.persistence"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("no problem %q in:\n%v", w, err)
		}
	}
}

func TestLookupErrorsReported(t *testing.T) {
	dir := secTree(t)
	writeFile(t, filepath.Join(dir, "conf.d", "10-x.conf"), "[cluster]\npeers = [\"a.invalid\", \"b.invalid\", \"10.0.0.3\"]\nbootstrap_primary = \"10.0.0.3\"\n", 0o644)
	env := testEnv([]string{"127.0.0.1"}, nil)
	env.LookupIP = func(h string) ([]net.IP, error) { return nil, fmt.Errorf("lookup %s: no such host", h) }
	_, err := Load(filepath.Join(dir, "redis-ha.conf"), env)
	if err == nil || !strings.Contains(err.Error(), "names that did not resolve: a.invalid: lookup a.invalid: no such host; b.invalid:") {
		t.Errorf("Load: %v", err)
	}
}

// TestParseIsLinear: go-toml's duplicate check made Load quadratic in the
// number of keys of a table (40,000 redis.settings: 15 s; a million: never
// ended). A tenfold file must take about ten times as long, not a hundred.
func TestParseIsLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("times a large parse")
	}
	doc := func(n int) []byte {
		var b strings.Builder
		b.WriteString("[redis.settings]\n")
		for i := range n {
			fmt.Fprintf(&b, "k%d = \"v\"\n", i)
		}
		return []byte(b.String())
	}
	took := func(n int) time.Duration {
		data := doc(n)
		best := time.Duration(1 << 62)
		for range 3 {
			c, start := defaults(), time.Now()
			if probs := decodeFile("t", data, schemaOf(reflect.TypeOf(Config{})), c, keyOrigins{}); len(probs) > 0 || len(c.Redis.Settings) != n {
				t.Fatalf("%d keys: %v, %d decoded", n, probs, len(c.Redis.Settings))
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	small, large := took(40_000), took(400_000)
	t.Logf("40,000 keys: %v; 400,000 keys: %v", small, large)
	if large > 40*small {
		t.Errorf("ten times the keys took %.0f times as long", float64(large)/float64(small))
	}
}
