package agent

import (
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listenNotify stands in for systemd: a real unixgram socket in NOTIFY_SOCKET.
func listenNotify(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return l
}

func readNotify(t *testing.T, l *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := l.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, _, err := l.ReadFromUnix(buf)
	if err != nil {
		t.Fatalf("read notify socket: %v", err)
	}
	return string(buf[:n])
}

func TestNotifierMessages(t *testing.T) {
	l := listenNotify(t)
	s := &notifier{log: slog.New(slog.DiscardHandler)}

	s.ready("master · single box")
	if got := readNotify(t, l); got != "READY=1\nSTATUS=master · single box" {
		t.Fatalf("ready: %q", got)
	}
	s.setStatus("master · single box") // unchanged: nothing sent
	s.setStatus("redis down")
	if got := readNotify(t, l); got != "STATUS=redis down" {
		t.Fatalf("status: %q", got)
	}
	s.reloading()
	got := readNotify(t, l)
	if !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") || !strings.HasSuffix(got, "\nSTATUS=reloading configuration") {
		t.Fatalf("reloading: %q", got)
	}
	s.extendStart(20*time.Second, "redis is loading its dataset")
	if got := readNotify(t, l); got != "EXTEND_TIMEOUT_USEC=20000000\nSTATUS=redis is loading its dataset" {
		t.Fatalf("extend: %q", got)
	}
	s.watchdog()
	if got := readNotify(t, l); got != "WATCHDOG=1" {
		t.Fatalf("watchdog: %q", got)
	}
	s.stopping()
	if got := readNotify(t, l); got != "STOPPING=1\nSTATUS=stopping" {
		t.Fatalf("stopping: %q", got)
	}
}

func TestNotifierWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	s := &notifier{log: slog.New(slog.DiscardHandler)}
	s.ready("x") // must neither fail nor block
	if s.failing {
		t.Fatal("no NOTIFY_SOCKET must be a silent no-op")
	}
}
