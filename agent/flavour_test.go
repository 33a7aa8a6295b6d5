package agent

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestHandOver: the state directory and what is in it change owner, except
// a file with another hard link, which may be someone else's.
func TestHandOver(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	const uid, gid = 4242, 4343
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "root-only")
	for _, f := range []string{filepath.Join(dir, "dump.rdb"), outside} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "appendonlydir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(outside, filepath.Join(dir, "planted")); err != nil {
		t.Fatal(err)
	}
	changed, err := handOver(dir, uid, gid)
	if err != nil || !changed {
		t.Fatalf("handOver = %v, %v; want true, nil", changed, err)
	}
	for name, want := range map[string]int{".": uid, "dump.rdb": uid, "appendonlydir": uid, "planted": 0} {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != want {
			t.Errorf("%s: owner %d, want %d", name, st.Uid, want)
		}
	}
	if changed, err := handOver(dir, uid, gid); err != nil || changed {
		t.Errorf("handOver again = %v, %v; want false, nil", changed, err)
	}
}
