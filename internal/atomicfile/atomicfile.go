// Package atomicfile writes files so that readers see either the old content or the new,
// never a torn mix, and so that the new content survives a crash once WriteFile returns.
// It owns nothing but that one operation: no logging, no retries, no locking between writers.
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile writes data to path atomically: a temp file in the same directory (rename is only
// atomic within one filesystem), write, fsync, chown (uid/gid -1 = leave that id), chmod perm,
// rename over path, fsync the directory so the rename itself is durable.
// The temp file is removed on any failure before the rename.
// A symlink at path is replaced, not followed.
func WriteFile(path string, data []byte, perm fs.FileMode, uid, gid int) (err error) {
	dir := filepath.Dir(path)
	// A leading dot keeps half-written files out of globs over the directory (config.d style).
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("atomicfile: create temp %s: %w", path, err)
	}
	tmp := f.Name()
	closed, renamed := false, false
	defer func() {
		if err == nil || renamed {
			return
		}
		if !closed {
			f.Close()
		}
		os.Remove(tmp)
	}()

	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync %s: %w", path, err)
	}
	// chown before chmod: chown clears the set-id bits, so the reverse order could lose them.
	if uid != -1 || gid != -1 {
		if err := f.Chown(uid, gid); err != nil {
			return fmt.Errorf("atomicfile: chown %s: %w", path, err)
		}
	}
	// Explicit chmod because CreateTemp makes 0600 files and umask must not narrow perm.
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: chmod %s: %w", path, err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: rename %s: %w", path, err)
	}
	renamed = true

	// The new content is in place; a failure from here means only that the rename may not be
	// durable yet, which the caller still needs to hear about.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: open dir %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync dir %s: %w", path, err)
	}
	return nil
}
