package supervisor

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// copyExe copies /bin/sleep to dir/name and returns its path.
func copyExe(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// replace puts a new copy of the program over path by rename, as dpkg does.
func replace(t *testing.T, path string) {
	t.Helper()
	tmp := copyExe(t, filepath.Dir(path), filepath.Base(path)+".dpkg-new")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestReplaced(t *testing.T) {
	dir := t.TempDir()
	exe := copyExe(t, dir, "prog")
	p, err := Start(Spec{Path: exe, Args: []string{"100"}, StopGrace: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	if r, why := p.Replaced(); r {
		t.Fatalf("Replaced right after start: %s", why)
	}
	replace(t, exe)
	if r, why := p.Replaced(); !r {
		t.Error("Replaced = false after the program was replaced on disk")
	} else {
		t.Logf("started: %s", why)
	}

}

func TestReplacedAdopted(t *testing.T) {
	dir := t.TempDir()
	exe := copyExe(t, dir, "prog")
	cmd := exec.Command(exe, "100")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p, err := Start(Spec{Path: exe, Adopt: cmd.Process.Pid}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r, why := p.Replaced(); r {
		t.Fatalf("Replaced right after adoption: %s", why)
	}
	replace(t, exe)
	r, why := p.Replaced()
	if !r {
		t.Fatal("Replaced = false after the program was replaced on disk")
	}
	t.Logf("adopted: %s", why)
}

func TestStartTime(t *testing.T) {
	got, err := startTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(got); d < -clockSlack || d > 10*time.Minute {
		t.Errorf("this test process started %v ago, by /proc", d)
	}
}
