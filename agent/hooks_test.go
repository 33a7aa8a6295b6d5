package agent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
)

// TestHookCheckedBeforeEachRun: a hook that was root's at load but became
// writable by the redis user since is not run (review M3).
func TestHookCheckedBeforeEachRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	hook := filepath.Join(dir, "hook.sh")
	must(t, os.WriteFile(hook, []byte("#!/bin/sh\necho \"$1\" >> "+ran+"\n"), 0o755))
	n := &node{hooks: make(chan Change, 1)}
	n.setConfig(&config.Config{Hooks: config.Hooks{OnRoleChange: hook}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.runHooks(ctx, n.hooks, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer func() { cancel(); <-done }()

	send := func(role string) {
		n.hooks <- Change{To: role, Master: "10.0.0.1:6379"}
		time.Sleep(500 * time.Millisecond)
	}
	send("master")
	must(t, os.Chown(hook, 0, 65534))
	must(t, os.Chmod(hook, 0o775))
	send("replica")
	b, _ := os.ReadFile(ran)
	if string(b) != "master\n" {
		t.Errorf("hook ran for %q; want only the run before it became group-writable", b)
	}
}
