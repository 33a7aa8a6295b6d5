package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

func TestOutput(t *testing.T) {
	logger, logs := newLogger()
	script := `
i=1
while [ $i -le 55 ]; do
	if [ $((i % 2)) -eq 0 ]; then echo "line $i" >&2; else echo "line $i"; fi
	i=$((i + 1))
done
printf 'crlf\r\n'
printf 'crcr\r\r\n'
head -c 5000 /dev/zero | tr '\0' x; echo
echo
printf 'last'`
	spec := sh(script)
	spec.Name = "out"
	p, err := Start(spec, logger)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, p)
	if err := p.Err(); err != nil {
		t.Fatalf("exit: %v", err)
	}

	var want []string
	for i := 1; i <= 55; i++ {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	want = append(want, "crlf", "crcr", strings.Repeat("x", maxLine), "last")

	if got := p.Tail(); !slices.Equal(got, want[len(want)-tailLines:]) {
		t.Errorf("Tail() = %q\nwant %q", abbrev(got), abbrev(want[len(want)-tailLines:]))
	}
	var logged []string
	for _, r := range logs.records(t) {
		if r["component"] != "out" {
			t.Errorf("record without component=out: %v", r)
		}
		if r["level"] == "INFO" {
			logged = append(logged, r["msg"].(string))
		}
	}
	if !slices.Equal(logged, want) {
		t.Errorf("logged lines = %q\nwant %q", abbrev(logged), abbrev(want))
	}
}

func TestTailCompleteAtDone(t *testing.T) {
	// Up to a pipe's worth of lines is still unread when the shell exits.
	logger, _ := newLogger()
	p, err := Start(sh(`seq 1 20000`), logger)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, p)
	var want []string
	for i := 20000 - tailLines + 1; i <= 20000; i++ {
		want = append(want, strconv.Itoa(i))
	}
	if got := p.Tail(); !slices.Equal(got, want) {
		t.Errorf("Tail() at Done = %q, want %q", got, want)
	}
}

// abbrev shortens long lines so that a failure message stays readable.
func abbrev(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		if len(l) > 40 {
			l = fmt.Sprintf("%s…(%d bytes)", l[:20], len(l))
		}
		out[i] = l
	}
	return out
}

func TestRing(t *testing.T) {
	for _, keep := range []int{0, warnLines} {
		size := tailLines
		if keep > 0 {
			size = keep
		}
		for _, n := range []int{0, 1, size - 1, size, size + 1, 3*size + 7} {
			t.Run(fmt.Sprintf("keep %d, %d lines", keep, n), func(t *testing.T) {
				r := ring{keep: keep}
				var want []string
				for i := range n {
					r.add(strconv.Itoa(i))
					want = append(want, strconv.Itoa(i))
				}
				want = want[max(0, n-size):]
				if got := r.lines(); !slices.Equal(got, want) {
					t.Errorf("lines() = %q, want %q", got, want)
				}
			})
		}
	}
}

// TestParseLine: each line is logged at the level ParseLine gives it, as the
// message it returns, and the warnings are kept apart for the exit's reason.
func TestParseLine(t *testing.T) {
	logger, logs := newLogger()
	spec := sh(`echo "W one"; echo "I two"; echo "W three"; echo "E four"; echo "W five"; echo "I six"`)
	spec.Name = "parsed"
	spec.ParseLine = func(line string) (slog.Level, string) {
		level := map[byte]slog.Level{'W': slog.LevelWarn, 'E': slog.LevelError}[line[0]]
		return level, line[2:]
	}
	p, err := Start(spec, logger)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, p)
	var got []string
	for _, r := range logs.records(t) {
		if r["component"] == "parsed" {
			got = append(got, fmt.Sprint(r["level"], " ", r["msg"]))
		}
	}
	want := []string{"WARN one", "INFO two", "WARN three", "ERROR four", "WARN five", "INFO six"}
	if !slices.Equal(got, want) {
		t.Errorf("logged %q, want %q", got, want)
	}
	if got, want := p.Tail(), []string{"one", "two", "three", "four", "five", "six"}; !slices.Equal(got, want) {
		t.Errorf("Tail() = %q, want %q", got, want)
	}
	if got, want := p.Warnings(), []string{"three", "four", "five"}; !slices.Equal(got, want) {
		t.Errorf("Warnings() = %q, want %q", got, want)
	}
}

func TestExitErr(t *testing.T) {
	tests := []struct {
		script string
		code   int            // want exit code, -1 = signalled
		signal syscall.Signal // when code is -1
	}{
		{"exit 0", 0, 0},
		{"exit 3", 3, 0},
		{"echo bye >&2; exit 1", 1, 0},
		{"kill -KILL $$", -1, syscall.SIGKILL},
	}
	for _, tt := range tests {
		t.Run(tt.script, func(t *testing.T) {
			p, err := Start(sh(tt.script), nil)
			if err != nil {
				t.Fatal(err)
			}
			waitDone(t, p)
			err = p.Err()
			if tt.code == 0 {
				if err != nil {
					t.Errorf("Err() = %v, want nil", err)
				}
				return
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("Err() = %v, want an *exec.ExitError", err)
			}
			ws := ee.Sys().(syscall.WaitStatus)
			if ee.ExitCode() != tt.code || (tt.code == -1 && ws.Signal() != tt.signal) {
				t.Errorf("Err() = %v, want code %d signal %v", err, tt.code, tt.signal)
			}
		})
	}
}

func TestStartError(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		is   error
	}{
		{"missing file", Spec{Path: "/nonexistent/prog"}, fs.ErrNotExist},
		{"not in PATH", Spec{Path: "no-such-prog-anywhere"}, exec.ErrNotFound},
		{"missing dir", Spec{Path: "/bin/true", Dir: "/nonexistent"}, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(tt.spec, nil)
			if !errors.Is(err, tt.is) {
				t.Errorf("Start() = %v, %v; want error %v", p, err, tt.is)
			}
		})
	}
	if _, err := Start(Spec{}, nil); err == nil {
		t.Error("Start(Spec{}) succeeded")
	}
}

// firstLine waits for p's first output line and returns it as a pid.
func firstPid(t *testing.T, p *Process) int {
	t.Helper()
	testutil.WaitUntil(t, within, "first output line", func() bool { return len(p.Tail()) > 0 })
	pid, err := strconv.Atoi(p.Tail()[0])
	if err != nil {
		t.Fatalf("first line %q: %v", p.Tail()[0], err)
	}
	return pid
}

func TestStopEscalates(t *testing.T) {
	logger, logs := newLogger()
	// Both the shell and its child ignore SIGTERM (SIG_IGN is inherited), so only a SIGKILL
	// to the whole group ends them.
	spec := sh(`trap '' TERM; sleep 100 & echo $!; wait`)
	spec.StopGrace = 100 * time.Millisecond
	p, err := Start(spec, logger)
	if err != nil {
		t.Fatal(err)
	}
	grandchild := firstPid(t, p)

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = p.Stop() })
	}
	stopped := make(chan struct{})
	go func() {
		wg.Wait()
		close(stopped)
	}()
	recv(t, "Stop to return", stopped)
	for i, err := range errs {
		if err != nil {
			t.Errorf("Stop() #%d = %v", i, err)
		}
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned before the process was reaped")
	}
	var ee *exec.ExitError
	if !errors.As(p.Err(), &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("Err() = %v, want killed by SIGKILL", p.Err())
	}
	if !logs.hasMsg(t, "still running after grace, killed") {
		t.Error("escalation not logged")
	}
	testutil.WaitUntil(t, within, "grandchild to die", func() bool { return exited(grandchild) })
	if err := p.Stop(); err != nil {
		t.Errorf("Stop() again = %v", err)
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after exit = %v, want os.ErrProcessDone", err)
	}
}

func TestStopGraceful(t *testing.T) {
	logger, logs := newLogger()
	p, err := Start(sh(`trap 'echo term; exit 0' TERM; echo ready; while :; do sleep 0.05; done`), logger)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitUntil(t, within, "ready", func() bool { return slices.Contains(p.Tail(), "ready") })
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	if p.Err() != nil {
		t.Errorf("Err() = %v, want nil (the trap exits 0)", p.Err())
	}
	if !slices.Contains(p.Tail(), "term") {
		t.Errorf("Tail() = %q, want the trap's output", p.Tail())
	}
	if logs.hasMsg(t, "still running after grace, killed") {
		t.Error("escalated although the child exited on SIGTERM")
	}
}

func TestSignal(t *testing.T) {
	p, err := Start(sh(`trap 'echo usr1; exit 0' USR1; echo ready; while :; do sleep 0.05; done`), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	testutil.WaitUntil(t, within, "ready", func() bool { return slices.Contains(p.Tail(), "ready") })
	if err := p.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitDone(t, p)
	if !slices.Contains(p.Tail(), "usr1") || p.Err() != nil {
		t.Errorf("after SIGUSR1: Tail() = %q, Err() = %v", p.Tail(), p.Err())
	}
}

func TestLeaderExitKillsGroup(t *testing.T) {
	// The background sleep keeps the output pipe open too: Done must not wait for it.
	p, err := Start(sh(`sleep 100 & echo $!; exit 3`), nil)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, p)
	var ee *exec.ExitError
	if !errors.As(p.Err(), &ee) || ee.ExitCode() != 3 {
		t.Errorf("Err() = %v, want exit status 3", p.Err())
	}
	grandchild, err := strconv.Atoi(p.Tail()[0])
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitUntil(t, within, "grandchild to die", func() bool { return exited(grandchild) })
}

func TestExited(t *testing.T) {
	if exited(os.Getpid()) {
		t.Error("exited(self) = true")
	}
	// An unreaped child is a zombie, which counts as exited.
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	waitExited(pid)
	if !exited(pid) {
		t.Error("exited(zombie) = false")
	}
	cmd.Wait()
	if !exited(pid) {
		t.Error("exited(reaped) = false")
	}
}

// startStale starts what a crashed agent would have left behind: a process group leader whose
// pid is recorded in pidFile.
func startStale(t *testing.T, pidFile string, path string, args ...string) (*exec.Cmd, <-chan error) {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	reaped := make(chan struct{})
	go func() {
		waited <- cmd.Wait()
		close(reaped)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-reaped
	})
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return cmd, waited
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestPidFileStale(t *testing.T) {
	logger, logs := newLogger()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	// /bin is a symlink on merged-/usr systems: /proc/<pid>/exe says /usr/bin/sleep.
	stale, waited := startStale(t, pidFile, "/bin/sleep", "100")

	p, err := Start(Spec{Name: "s", Path: "/bin/sleep", Args: []string{"100"}, PidFile: pidFile, StopGrace: 2 * time.Second}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	err = recv(t, "stale process to be reaped", waited)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("stale process %d ended with %v, want SIGTERM", stale.Process.Pid, err)
	}
	if !logs.hasMsg(t, "stopping stale process from pid file") {
		t.Error("stopping the stale process was not logged")
	}
	if got := readPid(t, pidFile); got != p.Pid() {
		t.Errorf("pid file holds %d, want %d", got, p.Pid())
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pid file after exit: %v, want it removed", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(pidFile)); len(entries) != 0 {
		t.Errorf("left behind in the pid file's directory: %v", entries)
	}
}

func TestPidFileForeign(t *testing.T) {
	logger, logs := newLogger()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	stale, waited := startStale(t, pidFile, "/bin/sleep", "100")

	spec := sh(`echo started`)
	spec.PidFile = pidFile
	p, err := Start(spec, logger)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, p)
	select {
	case err := <-waited:
		t.Fatalf("process %d running another executable was stopped: %v", stale.Process.Pid, err)
	default:
	}
	if err := syscall.Kill(stale.Process.Pid, 0); err != nil {
		t.Errorf("foreign process: %v", err)
	}
	if logs.hasMsg(t, "stopping stale process from pid file") {
		t.Error("logged stopping a foreign process")
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pid file after exit: %v, want it removed", err)
	}
}

func TestPidFileUnwritable(t *testing.T) {
	spec := sh(`sleep 100`)
	spec.PidFile = filepath.Join(t.TempDir(), "missing-dir", "child.pid")
	if p, err := Start(spec, nil); err == nil {
		p.Stop()
		t.Fatal("Start succeeded without a pid file")
	}
}

func TestCredential(t *testing.T) {
	if _, err := LookupCredential("no-such-user-here"); err == nil {
		t.Error("LookupCredential(unknown) succeeded")
	}
	cred, err := LookupCredential("nobody")
	if err != nil {
		t.Fatal(err)
	}
	if cred.Uid == 0 || len(cred.Groups) == 0 {
		t.Errorf("LookupCredential(nobody) = %+v", cred)
	}
	if os.Geteuid() != 0 {
		t.Skip("dropping credentials needs root")
	}
	spec := sh(`id -u; id -g`)
	spec.Credential = cred
	spec.Dir = "/"
	p, err := Start(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, p)
	want := []string{strconv.Itoa(int(cred.Uid)), strconv.Itoa(int(cred.Gid))}
	if got := p.Tail(); !slices.Equal(got, want) || p.Err() != nil {
		t.Errorf("id as nobody: %q, %v; want %q", got, p.Err(), want)
	}
}

func TestStopStaleReports(t *testing.T) {
	tests := []struct {
		name                string
		path                string
		args                []string
		start               bool
		wantFound, wantNice bool
	}{
		{name: "no pid file", path: "/bin/sleep"},
		{name: "ends on SIGTERM", path: "/bin/sleep", args: []string{"100"}, start: true, wantFound: true, wantNice: true},
		{name: "ignores SIGTERM", path: "/bin/sh", args: []string{"-c", "trap '' TERM; while :; do sleep 0.05; done"}, start: true, wantFound: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, _ := newLogger()
			pidFile := filepath.Join(t.TempDir(), "child.pid")
			if tt.start {
				cmd, _ := startStale(t, pidFile, tt.path, tt.args...)
				// The shell installs its trap a moment after it starts; a
				// SIGTERM before that would end it.
				if tt.name == "ignores SIGTERM" {
					waitIgnoresTERM(t, cmd.Process.Pid)
				}
			}
			found, graceful, err := StopStale(pidFile, tt.path, 300*time.Millisecond, logger)
			if err != nil {
				t.Fatal(err)
			}
			if found != tt.wantFound || graceful != tt.wantNice {
				t.Errorf("StopStale = found %v, graceful %v; want %v, %v", found, graceful, tt.wantFound, tt.wantNice)
			}
		})
	}
}

// waitIgnoresTERM waits until pid's SigIgn mask has SIGTERM.
func waitIgnoresTERM(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
				mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if err == nil && mask&(1<<(uint(syscall.SIGTERM)-1)) != 0 {
					return
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d never ignored SIGTERM", pid)
}

func TestArgv0(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/usr/bin/redis-server\x00/var/lib/redis-ha/redis.conf\x00", "/usr/bin/redis-server"},
		{"/usr/bin/redis-server 127.0.0.1:6379\x00\x00\x00", "/usr/bin/redis-server"}, // a rewritten title
		{"/usr/bin/redis-server 127.0.0.1:26379 [sentinel]", "/usr/bin/redis-server"},
		{"sleep\x00100\x00", "sleep"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := argv0([]byte(tt.in)); got != tt.want {
			t.Errorf("argv0(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
