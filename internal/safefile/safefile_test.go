package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// plant builds what the redis user can put in a directory it owns.
func plant(t *testing.T) (dir, secret string) {
	t.Helper()
	dir = t.TempDir()
	secret = filepath.Join(t.TempDir(), "root-only")
	if err := os.WriteFile(secret, []byte("ROOT-ONLY-SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(dir, "plain"), []byte("ok\n"), 0o644))
	must(t, os.Symlink(secret, filepath.Join(dir, "symlink")))
	must(t, os.Link(secret, filepath.Join(dir, "hardlink")))
	must(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	must(t, os.Mkdir(filepath.Join(dir, "dir"), 0o755))
	return dir, secret
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// withDeadline fails the test instead of hanging it: a FIFO opened the
// usual way blocks forever.
func withDeadline(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("blocked (a FIFO opened without O_NONBLOCK?)")
	}
}

func TestStateFiles(t *testing.T) {
	dir, secret := plant(t)
	for _, tc := range []struct {
		name string
		want error // nil = readable
	}{
		{"plain", nil},
		{"symlink", syscall.ELOOP},
		{"hardlink", ErrLinked},
		{"fifo", ErrNotRegular},
		{"dir", ErrNotRegular},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			withDeadline(t, func() {
				b, err := ReadFile(path, 1<<10)
				if !errors.Is(err, tc.want) || (tc.want == nil && string(b) != "ok\n") {
					t.Errorf("ReadFile = %q, %v; want error %v", b, err, tc.want)
				}
				if strings.Contains(string(b), "SECRET") {
					t.Error("read the root-only file")
				}
				f, err := Append(path, 0o644)
				if err == nil {
					f.Close()
				}
				// A FIFO without a reader (ENXIO) or a directory (EISDIR)
				// fails at open: refused either way.
				if (err == nil) != (tc.want == nil) {
					t.Errorf("Append: %v; want %v", err, tc.want)
				}
			})
		})
	}
	if b, _ := os.ReadFile(secret); string(b) != "ROOT-ONLY-SECRET\n" {
		t.Errorf("the root-only file was written: %q", b)
	}
	// A new file is created, with the umask applied.
	f, err := Append(filepath.Join(dir, "new"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// A directory being adopted belongs to the redis user: nothing in it may
// make root read outside it.
func TestOpenIn(t *testing.T) {
	dir, _ := plant(t)
	must(t, os.Symlink("plain", filepath.Join(dir, "inside")))
	must(t, os.Symlink("../..", filepath.Join(dir, "up")))
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"plain", true},
		{"inside", true}, // a link to a file of the same directory
		{"symlink", false},
		{"up/" + filepath.Base(filepath.Dir(dir)), false},
		{"hardlink", false},
		{"fifo", false},
		{"dir", false},
	} {
		withDeadline(t, func() {
			f, err := OpenIn(r, tc.name)
			if err == nil {
				b := make([]byte, 64)
				n, _ := f.Read(b)
				f.Close()
				if strings.Contains(string(b[:n]), "SECRET") {
					t.Errorf("%s: read the root-only file", tc.name)
				}
			}
			if (err == nil) != tc.ok {
				t.Errorf("%s: %v; want ok %v", tc.name, err, tc.ok)
			}
		})
	}
}

func TestReadFileLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(path, make([]byte, 101), 0o644))
	if _, err := ReadFile(path, 100); !errors.Is(err, ErrTooLarge) {
		t.Errorf("101 bytes with a limit of 100: %v", err)
	}
	if b, err := ReadFile(path, 101); err != nil || len(b) != 101 {
		t.Errorf("101 bytes with a limit of 101: %d, %v", len(b), err)
	}
}

func TestReadConfig(t *testing.T) {
	dir, _ := plant(t)
	must(t, os.Symlink(filepath.Join(dir, "plain"), filepath.Join(dir, "link-to-plain")))
	must(t, os.Symlink("/dev/zero", filepath.Join(dir, "zero")))
	for _, tc := range []struct {
		name string
		want error
	}{
		{"plain", nil},
		{"link-to-plain", nil}, // configuration management links drop-ins in
		{"fifo", ErrNotRegular},
		{"zero", ErrNotRegular},
	} {
		withDeadline(t, func() {
			_, _, err := ReadConfig(filepath.Join(dir, tc.name), 1<<20)
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
			}
		})
	}
}

func TestTrusted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	const nobody = 65534
	root := t.TempDir()
	mk := func(rel string, mode os.FileMode, uid, gid int) string {
		p := filepath.Join(root, rel)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		if strings.HasSuffix(rel, "/") {
			must(t, os.MkdirAll(p, 0o755))
		} else {
			must(t, os.WriteFile(p, []byte("x"), 0o644))
		}
		must(t, os.Chown(p, uid, gid))
		must(t, os.Chmod(p, mode))
		return p
	}
	good := mk("good/hook", 0o755, 0, 0)
	groupRoot := mk("grouproot/hook", 0o775, 0, 0)
	groupW := mk("groupw/hook", 0o775, 0, nobody)
	otherW := mk("otherw/hook", 0o757, 0, 0)
	owned := mk("owned/hook", 0o755, nobody, nobody)
	mk("opendir/", 0o777, 0, 0)
	inOpenDir := mk("opendir/hook", 0o755, 0, 0)
	mk("userdir/", 0o755, nobody, nobody)
	inUserDir := mk("userdir/hook", 0o755, 0, 0)
	mk("sticky/", os.ModeSticky|0o777, 0, 0)
	inSticky := mk("sticky/hook", 0o755, 0, 0)
	link := filepath.Join(root, "good/link")
	must(t, os.Symlink(inUserDir, link))
	for _, tc := range []struct {
		path string
		ok   bool
		want string
	}{
		{good, true, ""},
		{groupRoot, true, ""},
		{inSticky, true, ""},
		{groupW, false, "writable by group 65534"},
		{otherW, false, "writable by others"},
		{owned, false, "owned by uid 65534"},
		{inOpenDir, false, "directory " + filepath.Join(root, "opendir") + " is writable by others"},
		{inUserDir, false, "directory " + filepath.Join(root, "userdir") + " is owned by uid 65534"},
		{link, false, "owned by uid 65534"}, // the target's directory counts
	} {
		err := Trusted(tc.path)
		if tc.ok != (err == nil) || (err != nil && (!errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), tc.want))) {
			t.Errorf("Trusted(%s) = %v; want ok=%v %q", strings.TrimPrefix(tc.path, root), err, tc.ok, tc.want)
		}
	}
}
