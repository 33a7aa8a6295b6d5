package agent

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// buildAgent builds the binary once per test binary run, for tests of what
// only a process shows: exit codes under another user, signals.
func buildAgent(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// Run as another user too: t.TempDir's directories are 0700.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "redis-ha-agent")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/redis-ha-agent")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestCLIProcess: a non-root `status` that cannot read the password asks
// the agents' /status and never exits 78 (the configuration is not invalid); a CLI verb stuck on an agent
// that never answers ends on SIGTERM (review L2, L7).
func TestCLIProcess(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("builds the binary and runs it as another user (root only)")
	}
	bin := buildAgent(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "password")
	run := filepath.Join(dir, "run")
	must(t, os.WriteFile(pw, []byte("s3cret\n"), 0o640))
	must(t, os.Mkdir(run, 0o755))
	conf := filepath.Join(dir, "redis-ha.conf")
	must(t, os.WriteFile(conf, []byte("[auth]\npassword_file = \""+pw+"\"\n[node]\nrun_dir = \""+run+"\"\ndata_dir = \""+dir+"\"\n"), 0o644))

	t.Run("non-root status", func(t *testing.T) {
		cmd := exec.Command(bin, "status", "--config", conf)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		// No agent runs here: its /status does not answer, so the group
		// is unhealthy (1), and the report says it could not read the
		// password and asked the agents instead.
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("exit: %v; want status 1\n%s%s", err, stdout.String(), stderr.String())
		}
		if !bytes.Contains(stdout.Bytes(), []byte("cannot read "+pw)) {
			t.Errorf("status does not say why it asked the agents:\n%s%s", stdout.String(), stderr.String())
		}
	})

	t.Run("switchover ends on SIGTERM", func(t *testing.T) {
		// An "agent" that accepts and never answers.
		l, err := net.Listen("unix", filepath.Join(run, "agent.sock"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		cmd := exec.Command(bin, "switchover", "--config", conf)
		must(t, cmd.Start())
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		must(t, cmd.Process.Signal(syscall.SIGTERM))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
			// Ended by the signal itself, not by a handler that the next
			// blocking read would make wait.
			ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
				t.Errorf("ended %v after SIGTERM with %v; want killed by SIGTERM", time.Since(start).Round(time.Millisecond), cmd.ProcessState)
			}
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatal("switchover ignores SIGTERM")
		}
	})
}
