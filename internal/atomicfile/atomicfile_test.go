package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// entries lists dir so a test can prove no temp file was left behind.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name string
		old  *string // nil = path does not exist yet
		data string
		perm fs.FileMode
	}{
		{name: "create", data: "hello\n", perm: 0o640},
		{name: "replace narrows mode", old: ptr("old content that is longer\n"), data: "new\n", perm: 0o600},
		// 0666 would be cut to 0644 by a typical umask if WriteFile relied on create-time mode.
		{name: "replace widens mode past umask", old: ptr("old\n"), data: "new\n", perm: 0o666},
		{name: "empty data", old: ptr("old\n"), data: "", perm: 0o644},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "redis.conf")
			if tc.old != nil {
				if err := os.WriteFile(path, []byte(*tc.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, []byte(tc.data), tc.perm, -1, -1); err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.data {
				t.Errorf("content = %q, want %q", got, tc.data)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tc.perm {
				t.Errorf("mode = %v, want %v", fi.Mode().Perm(), tc.perm)
			}
			// -1/-1 must leave ownership as the creating user's.
			if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Geteuid() {
				t.Errorf("uid = %d, want %d", st.Uid, os.Geteuid())
			}
			if names := entries(t, dir); len(names) != 1 || names[0] != "redis.conf" {
				t.Errorf("dir holds %q, want only redis.conf", names)
			}
		})
	}
}

// TestWriteFileReplacesInode checks the replacement is a rename, not an in-place rewrite:
// a reader holding the old file open must keep seeing the old content.
func TestWriteFileReplacesInode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := WriteFile(path, []byte("new\n"), 0o644, -1, -1); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, _ := r.Read(buf)
	if got := string(buf[:n]); got != "old\n" {
		t.Errorf("open reader saw %q, want the old content", got)
	}
}

func TestWriteFileFailure(t *testing.T) {
	t.Run("missing dir", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "nope", "f")
		err := WriteFile(path, []byte("x"), 0o644, -1, -1)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want ErrNotExist", err)
		}
		if !strings.HasPrefix(err.Error(), "atomicfile: create temp "+path+": ") {
			t.Errorf("err = %q, want it to name the op and path", err)
		}
		if names := entries(t, dir); len(names) != 0 {
			t.Errorf("dir holds %q, want nothing", names)
		}
	})
	// Renaming a file over a non-empty directory fails even for root, after the temp file
	// has been written: the case where cleanup matters.
	t.Run("rename over directory", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "d")
		if err := os.MkdirAll(filepath.Join(path, "child"), 0o755); err != nil {
			t.Fatal(err)
		}
		err := WriteFile(path, []byte("x"), 0o644, -1, -1)
		if err == nil || !strings.HasPrefix(err.Error(), "atomicfile: rename "+path+": ") {
			t.Fatalf("err = %v, want a rename error naming %s", err, path)
		}
		if names := entries(t, dir); len(names) != 1 || names[0] != "d" {
			t.Errorf("dir holds %q, want only d (temp file left behind?)", names)
		}
	})
	t.Run("chown refused", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root may chown to anyone; covered by the rename case")
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		err := WriteFile(path, []byte("x"), 0o644, 0, 0)
		if !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("err = %v, want a permission error", err)
		}
		if names := entries(t, dir); len(names) != 0 {
			t.Errorf("dir holds %q, want nothing", names)
		}
	})
}

func TestWriteFileChown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another uid needs root")
	}
	tests := []struct {
		name             string
		uid, gid         int
		wantUID, wantGID uint32
	}{
		{name: "both", uid: 65534, gid: 65533, wantUID: 65534, wantGID: 65533},
		{name: "uid only", uid: 65534, gid: -1, wantUID: 65534, wantGID: uint32(os.Getegid())},
		{name: "gid only", uid: -1, gid: 65533, wantUID: 0, wantGID: 65533},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			// The set-id bits survive only because chmod runs after chown (chown clears them).
			perm := 0o750 | fs.ModeSetuid | fs.ModeSetgid
			if err := WriteFile(path, []byte("x"), perm, tc.uid, tc.gid); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != tc.wantUID || st.Gid != tc.wantGID {
				t.Errorf("owner = %d:%d, want %d:%d", st.Uid, st.Gid, tc.wantUID, tc.wantGID)
			}
			if fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid) != perm {
				t.Errorf("mode = %v, want %v", fi.Mode(), perm)
			}
		})
	}
}

func ptr(s string) *string { return &s }
