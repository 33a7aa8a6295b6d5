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
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return nil, err
	}
	if err := checkOpened(f, true); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
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
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|noFollow, perm)
	if err != nil {
		return nil, err
	}
	if err := checkOpened(f, true); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
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
