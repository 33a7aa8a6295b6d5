package agent

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
)

// The state directory belongs to the redis user; the agent works in it as
// root. These are the plants of the security review (M1): each must leave
// root-only files alone and never hang the agent.

func stateDirCfg(t *testing.T) (*config.Config, string) {
	t.Helper()
	cfg := &config.Config{Node: config.Node{DataDir: t.TempDir()}}
	secret := filepath.Join(t.TempDir(), "root-only")
	if err := os.WriteFile(secret, []byte("ROOT-ONLY-SECRET-0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, secret
}

// plantAt puts at p what the redis user could: a link to secret, a FIFO,
// or garbage.
func plantAt(t *testing.T, p, secret, kind string) {
	t.Helper()
	switch kind {
	case "symlink":
		must(t, os.Symlink(secret, p))
	case "hardlink":
		must(t, os.Link(secret, p))
	case "fifo":
		must(t, syscall.Mkfifo(p, 0o666))
	case "garbage":
		must(t, os.WriteFile(p, []byte("ROOT-ONLY-SECRET-0123456789abcdef0123456789\n"), 0o644))
	}
}

func quietNode() *node {
	return &node{log: slog.New(slog.NewTextHandler(io.Discard, nil)), hooks: make(chan Change, 16)}
}

func TestHistoryRefusesPlants(t *testing.T) {
	for _, plant := range []string{"symlink", "hardlink", "fifo"} {
		t.Run(plant, func(t *testing.T) {
			cfg, secret := stateDirCfg(t)
			p := historyPath(cfg)
			plantAt(t, p, secret, plant)
			within(t, func() {
				if err := appendHistory(p, Change{To: "master"}); err == nil {
					t.Error("appendHistory wrote through the plant")
				}
				if _, err := readHistory(p); err == nil {
					t.Error("readHistory read through the plant")
				}
			})
			if b, _ := os.ReadFile(secret); strings.Count(string(b), "\n") != 1 {
				t.Errorf("root-only file appended to: %q", b)
			}
		})
	}
}

func TestMyIDRefusesPlants(t *testing.T) {
	for _, plant := range []string{"symlink", "hardlink", "fifo", "garbage"} {
		t.Run(plant, func(t *testing.T) {
			cfg, secret := stateDirCfg(t)
			plantAt(t, myIDPath(cfg), secret, plant)
			within(t, func() {
				id, err := quietNode().myID(cfg)
				if err != nil || strings.Contains(id, "SECRET") || len(id) != 40 {
					t.Errorf("sentinel id %q, %v", id, err)
				}
			})
		})
	}
}

func TestMyIDKept(t *testing.T) {
	cfg, _ := stateDirCfg(t)
	n := quietNode()
	first, err := n.myID(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := n.myID(cfg)
	if err != nil || again != first {
		t.Fatalf("second read: %q, %v; want %q", again, err, first)
	}
}

// within runs f and fails the test if it does not return in 5 s: a FIFO
// opened the usual way blocks for ever.
func within(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the agent hangs on the plant")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
