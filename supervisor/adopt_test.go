package supervisor

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// startOrphan starts what an agent that died leaves running: a group leader writing a line
// every 50 ms to the named pipe output (whose reading end died with that agent), its pid in
// pidFile.
func startOrphan(t *testing.T, pidFile, output, script string) (*exec.Cmd, <-chan error) {
	t.Helper()
	r, w, err := outputPipe(output)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r.Close() // the agent that started it is gone
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return cmd, waited
}

// ticker ignores SIGPIPE, as redis does: while no agent reads its output, its writes fail.
const ticker = `trap '' PIPE; i=0; while :; do i=$((i+1)); echo "tick $i" 2>/dev/null; sleep 0.05; done`

func TestAdoptStop(t *testing.T) {
	logger, logs := newLogger()
	dir := t.TempDir()
	pidFile, output := filepath.Join(dir, "c.pid"), filepath.Join(dir, "c.out")
	orphan, waited := startOrphan(t, pidFile, output, ticker)

	pid := orphan.Process.Pid
	if !Runs(pid, "/bin/sh") {
		t.Fatalf("Runs(%d, /bin/sh) = false", pid)
	}
	if Runs(pid, "/bin/sleep") {
		t.Error("Runs matched a process running another executable")
	}
	p, err := Start(Spec{Name: "c", Path: "/bin/sh", Adopt: pid, PidFile: pidFile, Output: output, StopGrace: 2 * time.Second}, logger)
	if err != nil {
		t.Fatal(err)
	}
	// Its lines reach the adopting agent through the named pipe it kept.
	deadline := time.Now().Add(within)
	for len(p.Tail()) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(p.Tail()) < 3 {
		t.Fatalf("no output from the adopted process: %q", p.Tail())
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Err(); err != nil {
		t.Errorf("adopted process stopped with SIGTERM: Err() = %v, want nil (a clean stop)", err)
	}
	err = recv(t, "orphan to end", waited)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("adopted process ended with %v, want SIGTERM", err)
	}
	if _, err := os.Stat(pidFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pid file after the adopted process ended: %v, want it removed", err)
	}
	if !logs.hasMsg(t, "tick 3") {
		t.Error("the adopted process's lines were not logged")
	}
}

func TestAdoptExitOnItsOwn(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "c.pid")
	orphan, _ := startOrphan(t, pidFile, filepath.Join(dir, "c.out"), `trap '' PIPE; sleep 100`)
	p, err := Start(Spec{Path: "/bin/sh", Adopt: orphan.Process.Pid, PidFile: pidFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(orphan.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDone(t, p)
	if !errors.Is(p.Err(), ErrStatusUnknown) {
		t.Errorf("Err() = %v, want ErrStatusUnknown: a crash must not pass for a clean stop", p.Err())
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after exit = %v, want os.ErrProcessDone", err)
	}
}

func TestAdoptRefusesAnotherProgram(t *testing.T) {
	dir := t.TempDir()
	orphan, _ := startOrphan(t, filepath.Join(dir, "c.pid"), filepath.Join(dir, "c.out"), ticker)
	if p, err := Start(Spec{Path: "/bin/sleep", Adopt: orphan.Process.Pid}, nil); err == nil {
		p.Stop()
		t.Fatal("adopted a process running another executable")
	}
}

func TestChildKeep(t *testing.T) {
	dir := t.TempDir()
	pidFile, output := filepath.Join(dir, "c.pid"), filepath.Join(dir, "c.out")
	exits := make(chan Exit, 1)
	started := make(chan *Process, 1)
	c := &Child{Name: "c",
		Next: func(ctx context.Context, last *Exit) (Spec, error) {
			return Spec{Path: "/bin/sh", Args: []string{"-c", ticker}, PidFile: pidFile, Output: output}, nil
		},
		OnStart: func(p *Process) { started <- p },
		OnExit:  func(e Exit) { exits <- e },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	p := recv(t, "start", started)
	t.Cleanup(func() { syscall.Kill(-p.Pid(), syscall.SIGKILL) })
	c.Keep()
	cancel()
	if err := recv(t, "Run to return", done); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-exits:
		t.Fatalf("OnExit(%+v) for a process left running", e)
	default:
	}
	if err := syscall.Kill(p.Pid(), 0); err != nil {
		t.Fatalf("process left running is gone: %v", err)
	}
	// The next agent finds it and takes it over, output and all.
	pid := readPid(t, pidFile)
	if pid != p.Pid() || !Runs(pid, "/bin/sh") {
		t.Fatalf("pid file names %d, want %d running /bin/sh", pid, p.Pid())
	}
	q, err := Start(Spec{Path: "/bin/sh", Adopt: pid, PidFile: pidFile, Output: output, StopGrace: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Stop(); err != nil || q.Err() != nil {
		t.Errorf("stop of the adopted process: %v, Err %v", err, q.Err())
	}
}
