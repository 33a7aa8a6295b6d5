package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A child outlives the agent that started it (its own process group, no Pdeathsig), so that
// an agent restart or upgrade costs the child nothing: the next agent adopts it. An adopted
// process is not the agent's child. It is watched through a pidfd, which cannot name a reused
// pid; it is signalled like a child; its output goes on through the named pipe it was started
// with (Spec.Output); but the kernel reports its exit status only to its parent, so the
// supervisor knows only whether it ended on the agent's SIGTERM.

// ErrStatusUnknown is the exit error of an adopted process that ended without being asked
// to: not the agent's child, its exit status goes to its parent, not to the agent.
var ErrStatusUnknown = errors.New("exited on its own; not this agent's child, so its exit status is unknown")

// Runs reports whether pid is alive and runs the executable at path (a binary replaced on
// disk since counts too): a child that outlived the agent which started it, for Spec.Adopt.
func Runs(pid int, path string) bool {
	return pid > 1 && pid != os.Getpid() && runs(pid, executable(path))
}

// adopt takes over the running process spec.Adopt instead of starting spec.Path.
func adopt(spec Spec, name string, grace time.Duration, log *slog.Logger) (*Process, error) {
	pid := spec.Adopt
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("adopt %s: pid %d: pidfd: %w", name, pid, err)
	}
	pidfd := os.NewFile(uintptr(fd), "pidfd")
	// The pid was checked before the pidfd pinned it: check again, now that it cannot be
	// reused under us.
	if !runs(pid, executable(spec.Path)) {
		pidfd.Close()
		return nil, fmt.Errorf("adopt %s: pid %d no longer runs %s", name, pid, spec.Path)
	}
	p := &Process{name: name, pid: pid, grace: grace, pidFile: spec.PidFile, log: log,
		parse: spec.ParseLine, warned: ring{keep: warnLines},
		done: make(chan struct{}), pidfd: pidfd, exe: executable(spec.Path)}
	read := make(chan struct{})
	r, err := output(spec.Output)
	if err != nil {
		log.Warn("output of the adopted process is not logged", "err", err)
	}
	if r != nil {
		go p.readOutput(r, read)
	} else {
		close(read)
	}
	if spec.PidFile != "" {
		if err := writePidFile(spec.PidFile, pid); err != nil {
			log.Warn("adopt: pid file", "err", err)
		}
	}
	go p.watch(r, read)
	return p, nil
}

// watch waits for the adopted process to exit, then for its output to end, and closes done.
func (p *Process) watch(r *os.File, read <-chan struct{}) {
	if err := waitPidfd(p.pidfd); err != nil {
		for !exited(p.pid) { // a kernel whose pidfd cannot be polled: poll /proc
			time.Sleep(pollInterval)
		}
	}
	p.mu.Lock()
	p.reaped = true
	p.pidfd.Close()
	// Its parent (init, or a subreaper) has its status; what the agent knows is whether it
	// ended on the agent's SIGTERM alone, as a clean stop does.
	if !p.termed.Load() || p.killed.Load() {
		p.err = ErrStatusUnknown
	}
	p.mu.Unlock()
	p.drain(r, read)
}

// waitPidfd blocks until the process behind pidfd has exited. A pidfd polls readable then; the
// runtime's poller waits for it, so no thread is held.
func waitPidfd(pidfd *os.File) error {
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		n, err := pollPidfd(fd)
		if err != nil && !errors.Is(err, unix.EINTR) {
			perr = err
			return true
		}
		return n > 0
	})
	if err == nil {
		err = perr
	}
	return err
}

// exitedPidfd polls a pidfd once: true when its process has exited (or the poll failed).
func exitedPidfd(fd uintptr) bool {
	n, err := pollPidfd(fd)
	return err != nil || n > 0
}

func pollPidfd(fd uintptr) (int, error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	return unix.Poll(fds, 0)
}

// output opens the read end of the named pipe at path, creating it if needed: the child's
// stdout and stderr. Opened non-blocking it does not wait for a writer; it reads end of file
// once no process holds the write end. "" = none.
func output(path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeNamedPipe == 0 {
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("output %s: not a named pipe: %w", path, err)
		}
	}
	if err := unix.Mkfifo(path, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("output %s: %w", path, err)
	}
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", path, err)
	}
	return r, nil
}

// outputPipe is the pipe a started child writes to: the named pipe at path (see output),
// or an anonymous one when path is "".
func outputPipe(path string) (r, w *os.File, err error) {
	if path == "" {
		return os.Pipe()
	}
	if r, err = output(path); err != nil {
		return nil, nil, err
	}
	// A reader is open, so opening the write end does not block.
	if w, err = os.OpenFile(path, os.O_WRONLY, 0); err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("output %s: %w", path, err)
	}
	return r, w, nil
}
