package agent

import (
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
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

func TestStatusLine(t *testing.T) {
	self := wire.Addr{Host: "10.0.0.11", Port: 6379}
	other := wire.Addr{Host: "10.0.0.12", Port: 6379}
	master := wire.Role{Kind: "master"}
	replica := wire.Role{Kind: "slave", Master: other, Link: "connected"}
	tests := []struct {
		name string
		s    snapshot
		want string
	}{
		{"single box", snapshot{single: true, self: self, redisUp: true, role: master}, "master · single box"},
		{"healthy master", snapshot{self: self, redisUp: true, role: master, master: self, usable: 3, peers: 3, inSync: 2},
			"master · 2/2 replicas in sync · sentinels 3/3"},
		{"replica", snapshot{self: self, redisUp: true, role: replica, master: other, usable: 3, peers: 3},
			"replica of 10.0.0.12:6379 · link up · sentinels 3/3"},
		{"replica syncing", snapshot{self: self, redisUp: true, role: wire.Role{Kind: "slave", Master: other, Link: "sync"}, master: other, usable: 2, peers: 3},
			"replica of 10.0.0.12:6379 · link sync · sentinels 2/3"},
		{"demoted master not yet reconfigured", snapshot{self: self, redisUp: true, role: master, master: other, usable: 3, peers: 3},
			"master · 0/2 replicas in sync · sentinels 3/3 · sentinels name 10.0.0.12:6379"},
		{"gated", snapshot{self: self, gated: true, usable: 3, peers: 3}, "redis down: restart gate holds it until the sentinels name a new master · sentinels 3/3"},
		{"reload refused", snapshot{single: true, self: self, redisUp: true, role: master, reloadErr: "/etc/redis-ha/conf.d/50.conf:2: redis.prot: unknown key"},
			"master · single box · reload refused: /etc/redis-ha/conf.d/50.conf:2: redis.prot: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusLine(tt.s); got != tt.want {
				t.Errorf("statusLine:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
