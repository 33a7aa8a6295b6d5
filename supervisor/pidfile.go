package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	goneTimeout  = 5 * time.Second // after SIGKILL; only a process stuck in the kernel takes longer
	pollInterval = 20 * time.Millisecond
)

// writePidFile replaces path atomically, so a reader never sees a partial pid. There is no
// fsync: after a power loss the pid means nothing anyway.
func writePidFile(path string, pid int) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.WriteString(strconv.Itoa(pid) + "\n")
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// removePidFile removes path if it still names pid: a newer process may have claimed it.
func removePidFile(path string, pid int) {
	b, err := os.ReadFile(path)
	if err == nil && string(bytes.TrimSpace(b)) == strconv.Itoa(pid) {
		os.Remove(path)
	}
}

// executable resolves path the way /proc/<pid>/exe reports it: absolute, symlinks followed.
func executable(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	}
	return path
}

// runs reports whether pid is alive and executing exe (as resolved by executable). A binary
// replaced on disk since the process started shows as "<path> (deleted)" and still counts.
func runs(pid int, exe string) bool {
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err == nil {
		return executable(strings.TrimSuffix(link, " (deleted)")) == exe
	}
	if !errors.Is(err, fs.ErrPermission) {
		return false // gone, or a zombie
	}
	// Reading another user's exe link takes CAP_SYS_PTRACE, which a hardened unit does
	// not grant; its command line is readable, and we started it with an absolute path.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	arg0 := argv0(b)
	return filepath.IsAbs(arg0) && executable(arg0) == exe
}

// argv0 is the program path in a /proc/<pid>/cmdline. Some programs rewrite their title
// into that space ("/usr/bin/redis-server 127.0.0.1:6379"), so only the first word counts.
func argv0(cmdline []byte) string {
	s := string(cmdline)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// exited reports whether pid no longer runs. Zombies count as exited: a leftover from a
// crashed agent is not our child, and whoever inherited it reaps it when it likes.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
	}
	// The state follows the command name, which is in parentheses and may contain anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state == 'Z' || state == 'X'
}

// waitExit polls until pid has exited or d has passed.
func waitExit(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !exited(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}

// StopStale stops the process a previous agent recorded in pidFile, if it still runs the
// executable at path, the way Stop would: SIGTERM to its group, SIGKILL after grace. It
// reports whether such a process was found and whether it ended on SIGTERM alone, which
// tells a caller that the process (which outlived its agent) was shut down cleanly.
func StopStale(pidFile, path string, grace time.Duration, log *slog.Logger) (found, graceful bool, err error) {
	return stopStale(pidFile, executable(path), grace, log)
}

// stopStale is StopStale with exe already resolved. It is not our child, so it is polled,
// not waited for.
func stopStale(pidFile, exe string, grace time.Duration, log *slog.Logger) (found, graceful bool, err error) {
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 1 || pid == os.Getpid() || !runs(pid, exe) {
		return false, false, nil // whatever it named is gone; the file is overwritten at start
	}
	// Signal the group only when pid leads one, as our children do; otherwise the group may be
	// someone else's, even our own.
	target := pid
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
		target = -pid
	}
	log.Warn("stopping stale process from pid file", "pid", pid, "pidfile", pidFile, "exe", exe)
	if err := syscall.Kill(target, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return false, false, nil
		}
		return true, false, fmt.Errorf("stale process %d: %w", pid, err)
	}
	if waitExit(pid, grace) {
		return true, true, nil
	}
	log.Warn("stale process still running after grace, killing", "pid", pid, "grace", grace)
	if err := syscall.Kill(target, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return true, false, fmt.Errorf("stale process %d: %w", pid, err)
	}
	if !waitExit(pid, goneTimeout) {
		return true, false, fmt.Errorf("stale process %d from %s: still running after SIGKILL", pid, pidFile)
	}
	return true, false, nil
}
