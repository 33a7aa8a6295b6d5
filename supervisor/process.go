package supervisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	defaultStopGrace = 10 * time.Second
	tailLines        = 50
	warnLines        = 3
	maxLine          = 4 << 10
	// drainTimeout bounds how long an exited child's output is read after its group was
	// killed: only a process that left the group (setsid) can still hold the pipe open.
	drainTimeout = 2 * time.Second
)

// Spec says how to start one child process.
type Spec struct {
	Name       string              // component tag in logs; default: base name of Path
	Path       string              // looked up in the agent's PATH when it has no slash
	Args       []string            // argv[1:]
	Env        []string            // nil = os.Environ() minus NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*
	Dir        string              // working directory; "" = the agent's
	Credential *syscall.Credential // nil = run as the agent's own user
	StopGrace  time.Duration       // SIGTERM, then SIGKILL after this (0 = 10s)

	// PidFile, when set, is written at start and removed at exit. A process it names that runs
	// the same executable is a leftover of a crashed agent: Start stops its group first, unless
	// it is the one to adopt.
	PidFile string

	// ParseLine, when set, reads one output line: the level to log it at and the message,
	// the line without what the log adds itself (the child's own timestamp). nil = the line
	// as it is, at info.
	ParseLine func(line string) (slog.Level, string)
	// Output, when set, is a named pipe (created if missing) for the child's stdout and
	// stderr instead of an anonymous pipe: the child keeps it when the agent goes, and the
	// agent that adopts the child opens it again and goes on logging its lines.
	Output string
	// Adopt, when set, is the pid of a running process to take over instead of starting
	// Path (see Runs): it is watched and stopped like a child, but not started.
	Adopt int
}

// Process is one started child. Its methods are safe for concurrent use.
type Process struct {
	name    string
	pid     int
	grace   time.Duration
	pidFile string
	cmd     *exec.Cmd // nil when adopted
	pidfd   *os.File  // adopted only: the process, whose pid cannot be reused under it
	exe     string    // the executable, resolved (Replaced)
	// exeAtStart is the executable as it was on disk when this agent
	// started the process; nil when adopted.
	exeAtStart *fileID
	log        *slog.Logger
	parse      func(string) (slog.Level, string)
	tail       ring
	warned     ring // the lines at warning or above, of which warnLines are kept
	done       chan struct{}
	err        error // written before done is closed

	mu     sync.Mutex // orders Signal against reaping, so a reused pid is never signalled
	reaped bool

	// termed and killed: Stop sent SIGTERM, SIGKILL. An adopted process's exit status is
	// unknown; ending on SIGTERM alone is what counts as a clean stop.
	termed, killed atomic.Bool

	stopOnce sync.Once
	stopErr  error
}

// Start starts spec's program in a process group of its own and returns once it runs.
func Start(spec Spec, logger *slog.Logger) (*Process, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if spec.Path == "" {
		return nil, errors.New("start: empty path")
	}
	name := spec.Name
	if name == "" {
		name = filepath.Base(spec.Path)
	}
	log := logger.With("component", name)
	grace := spec.StopGrace
	if grace <= 0 {
		grace = defaultStopGrace
	}

	if spec.Adopt != 0 {
		return adopt(spec, name, grace, log)
	}

	cmd := exec.Command(spec.Path, spec.Args...)
	if cmd.Err != nil {
		return nil, fmt.Errorf("start %s: %w", name, cmd.Err)
	}
	cmd.Dir = spec.Dir
	cmd.Env = spec.Env
	if cmd.Env == nil {
		cmd.Env = childEnv(os.Environ())
	}
	// No Pdeathsig: a child must outlive an agent crash (the restarted agent finds it through
	// PidFile), and Pdeathsig fires when the starting OS thread exits, not the agent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: spec.Credential}

	if spec.PidFile != "" {
		if _, _, err := stopStale(spec.PidFile, executable(cmd.Path), grace, log); err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
	}

	// One pipe for both streams keeps stdout and stderr lines in the order they were written.
	// It is ours rather than cmd's so that Wait returns when the leader exits, not when the
	// last holder of the pipe does.
	r, w, err := outputPipe(spec.Output)
	if err != nil {
		return nil, fmt.Errorf("start %s: pipe: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}

	p := &Process{
		exe:     executable(cmd.Path),
		name:    name,
		pid:     cmd.Process.Pid,
		grace:   grace,
		pidFile: spec.PidFile,
		cmd:     cmd,
		log:     log,
		parse:   spec.ParseLine,
		warned:  ring{keep: warnLines},
		done:    make(chan struct{}),
	}
	if id, err := statID(p.exe); err == nil {
		p.exeAtStart = &id
	}
	read := make(chan struct{})
	go p.readOutput(r, read)

	// The pid file is written before the reaper runs so that its removal cannot come first.
	var pidErr error
	if p.pidFile != "" {
		if pidErr = writePidFile(p.pidFile, p.pid); pidErr != nil {
			p.Signal(syscall.SIGKILL)
		}
	}
	go p.reap(r, read)
	if pidErr != nil {
		<-p.done
		return nil, fmt.Errorf("start %s: pid file: %w", name, pidErr)
	}
	return p, nil
}

// Pid returns the child's pid, which is also its process group id.
func (p *Process) Pid() int { return p.pid }

// Done is closed once the child has been reaped and its output read to the end.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns the exit error once Done is closed (nil = exit status 0); nil before.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Tail returns the last 50 lines the child wrote to stdout or stderr (as ParseLine left them).
func (p *Process) Tail() []string { return p.tail.lines() }

// Warnings returns the last 3 lines the child wrote at warning level or above (by
// ParseLine): the child's own account of why it failed, where it gives one.
func (p *Process) Warnings() []string { return p.warned.lines() }

// Signal sends sig to the child's whole process group. It returns os.ErrProcessDone once the
// child has been reaped.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return os.ErrProcessDone
	}
	if p.pidfd != nil {
		return p.signalAdopted(sig)
	}
	if err := syscall.Kill(-p.pid, sig); err != nil {
		return fmt.Errorf("signal %s %v: %w", p.name, sig, err)
	}
	return nil
}

// signalAdopted signals an adopted process: its group when it leads one, as the agent's
// children do (a group whose leader has not exited cannot have been reused), else through the
// pidfd. Called with mu held.
func (p *Process) signalAdopted(sig syscall.Signal) error {
	// Control, not Fd: Fd would make the pidfd blocking under the poller that watch waits on.
	rc, err := p.pidfd.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			if pgid, gerr := syscall.Getpgid(p.pid); gerr == nil && pgid == p.pid && !exitedPidfd(fd) {
				err = syscall.Kill(-p.pid, sig)
			} else {
				err = unix.PidfdSendSignal(int(fd), sig, nil, 0)
			}
		})
		if err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("signal %s %v: %w", p.name, sig, err)
	}
	return nil
}

// Stop sends SIGTERM to the group, SIGKILL after the grace period, and returns once the child
// is reaped. It may be called any number of times, from any goroutine.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.stop() })
	return p.stopErr
}

func (p *Process) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	p.termed.Store(true)
	if err := p.Signal(syscall.SIGTERM); err != nil && !gone(err) {
		return fmt.Errorf("stop: %w", err)
	}
	t := time.NewTimer(p.grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	p.killed.Store(true)
	switch err := p.Signal(syscall.SIGKILL); {
	case err == nil:
		p.log.Warn("still running after grace, killed", "pid", p.pid, "grace", p.grace)
	case !gone(err): // gone: exited, its output still draining
		return fmt.Errorf("stop: %w", err)
	}
	<-p.done
	return nil
}

func gone(err error) bool {
	return errors.Is(err, os.ErrProcessDone) || errors.Is(err, syscall.ESRCH)
}

// reap waits for the leader, kills what is left of its group, and closes done once the output
// has been read, so that Tail is complete by then.
func (p *Process) reap(r *os.File, read <-chan struct{}) {
	waitExited(p.pid)
	p.mu.Lock()
	// The leader is a zombie until Wait, so the group id cannot have been reused: this kill
	// reaches only grandchildren the leader left behind.
	syscall.Kill(-p.pid, syscall.SIGKILL)
	p.err = p.cmd.Wait()
	p.reaped = true
	p.mu.Unlock()
	p.drain(r, read)
}

// drain waits for the output of an exited child to end (bounded: a process that left the
// group may hold the pipe), removes the pid file and closes done.
func (p *Process) drain(r *os.File, read <-chan struct{}) {
	t := time.NewTimer(drainTimeout)
	select {
	case <-read:
	case <-t.C:
		p.log.Warn("output pipe held open by a process outside the group; no longer reading it")
	}
	t.Stop()
	if r != nil {
		r.Close()
	}
	<-read
	if p.pidFile != "" {
		removePidFile(p.pidFile, p.pid)
	}
	close(p.done)
}

// waitExited blocks until pid has exited but leaves it unreaped (waitid WNOWAIT), the way
// os.Process does before it reaps.
func waitExited(pid int) {
	const pPID = 1
	var info [16]uint64 // siginfo_t, 128 bytes
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		if errno != syscall.EINTR {
			return
		}
	}
}

// readOutput logs the child's output line by line and keeps the tail.
func (p *Process) readOutput(r io.Reader, done chan<- struct{}) {
	defer close(done)
	br := bufio.NewReaderSize(r, maxLine)
	var line []byte
	for {
		chunk, more, err := br.ReadLine()
		if err != nil {
			return
		}
		if n := min(len(chunk), maxLine-len(line)); n > 0 {
			line = append(line, chunk[:n]...)
		}
		if more {
			continue // the rest of a long line is dropped
		}
		if s := strings.TrimRight(string(line), "\r"); s != "" {
			level := slog.LevelInfo
			if p.parse != nil {
				level, s = p.parse(s)
			}
			p.log.Log(context.Background(), level, s)
			p.tail.add(s)
			if level >= slog.LevelWarn {
				p.warned.add(s)
			}
		}
		line = line[:0]
	}
}

// ring keeps the last keep lines (tailLines when keep is 0).
type ring struct {
	mu   sync.Mutex
	keep int
	buf  [tailLines]string
	n    int // lines ever added
}

func (r *ring) size() int {
	if r.keep > 0 && r.keep < tailLines {
		return r.keep
	}
	return tailLines
}

func (r *ring) add(s string) {
	r.mu.Lock()
	r.buf[r.n%r.size()] = s
	r.n++
	r.mu.Unlock()
}

func (r *ring) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := min(r.n, r.size())
	out := make([]string, 0, k)
	for i := r.n - k; i < r.n; i++ {
		out = append(out, r.buf[i%r.size()])
	}
	return out
}
