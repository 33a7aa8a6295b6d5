// Package safefile opens files that someone other than the agent may have
// put in its way. The state directory belongs to the redis user, yet the
// agent, as root, reads and appends to files in it: a symlink, a hard link
// or a FIFO planted there must not make root read, write or wait on
// something else. Configuration files and hooks steer what root runs, so
// only root may be able to change them or any directory above them.
//
// It owns those checks and nothing of what the files mean: no parsing, no
// logging.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Errors a caller may tell apart (errors.Is).
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrLinked     = errors.New("has other hard links")
	ErrTooLarge   = errors.New("too large")
	ErrUntrusted  = errors.New("others can change it")
)

// noFollow opens without following a symlink in the last component, and
// without blocking: opening a FIFO for reading blocks until a writer comes,
// which a FIFO planted by the redis user never does.
const noFollow = syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC

// Open opens the state file at path for reading. It must be a regular file
// with no other hard link: a symlink is refused (ELOOP), and so is a hard
// link, which the redis user could make to a file only root may read.
func Open(path string) (*os.File, error) { return openState(path, os.O_RDONLY, 0) }

func openState(path string, flag int, perm fs.FileMode) (*os.File, error) {
	return single(os.OpenFile(path, flag|noFollow, perm))
}

// single passes on an opened regular file with no other hard link, and
// closes anything else.
func single(f *os.File, err error) (*os.File, error) {
	if err != nil {
		return nil, err
	}
	if err := checkOpened(f, true); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// OpenIn opens the file name under r for reading, as Open checks a state
// file: a regular file with no other hard link. r keeps the path, symlinks
// included, inside its directory: a directory another user owns (a redis
// data directory being adopted) cannot make root read anything outside it.
func OpenIn(r *os.Root, name string) (*os.File, error) {
	return single(r.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0))
}

// ReadFile reads the state file at path, as Open checks it, up to limit
// bytes; a longer file is ErrTooLarge.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f, path, limit)
}

// Append opens the state file at path for appending, creating it with perm
// (less the umask), with Open's checks: root appending to a planted link
// would write where the redis user cannot.
func Append(path string, perm fs.FileMode) (*os.File, error) {
	return openState(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, perm)
}

// ReadConfig reads a file an administrator wrote, up to limit bytes. Unlike
// Open it follows symlinks (configuration management links files in), but
// it never blocks on a FIFO and reads only a regular file: a drop-in linked
// to /dev/zero must not eat the memory.
func ReadConfig(path string, limit int64) ([]byte, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if err := checkOpened(f, false); err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	b, err := readAll(f, path, limit)
	return b, fi, err
}

func checkOpened(f *os.File, single bool) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return &fs.PathError{Op: "open", Path: f.Name(), Err: ErrNotRegular}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); single && ok && st.Nlink > 1 {
		return &fs.PathError{Op: "open", Path: f.Name(), Err: ErrLinked}
	}
	return nil
}

func readAll(r io.Reader, path string, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)}
	}
	return b, nil
}

// Trusted reports, as an error wrapping ErrUntrusted, how someone other than
// root could change path: the file, the directories above it, and, for a
// symlink, the directories above its target. Each must be owned by root or
// by this process's own user, and writable by nobody else: not by others,
// and not by a group other than root's. A world- or group-writable
// directory is fine when it is sticky (/tmp): others cannot rename or
// remove what they do not own.
func Trusted(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if err := trustedEntry(real, false); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, start := range []string{filepath.Dir(abs), filepath.Dir(real)} {
		for dir := start; !seen[dir]; dir = filepath.Dir(dir) {
			seen[dir] = true
			if err := trustedEntry(dir, true); err != nil {
				return err
			}
		}
	}
	return nil
}

func trustedEntry(path string, dir bool) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	what := "file"
	if dir {
		what = "directory"
	}
	mode := fi.Mode()
	sticky := dir && mode&fs.ModeSticky != 0
	switch {
	case st.Uid != 0 && int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%w: %s %s is owned by uid %d, not root: chown root %s", ErrUntrusted, what, path, st.Uid, path)
	case mode&0o002 != 0 && !sticky:
		return fmt.Errorf("%w: %s %s is writable by others (mode %04o): chmod o-w %s", ErrUntrusted, what, path, mode.Perm(), path)
	case mode&0o020 != 0 && st.Gid != 0 && !sticky:
		return fmt.Errorf("%w: %s %s is writable by group %d (mode %04o): chmod g-w %s", ErrUntrusted, what, path, st.Gid, mode.Perm(), path)
	}
	return nil
}
