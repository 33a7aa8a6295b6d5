package agent

import (
	"os/exec"
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/supervisor"
)

// TestExitReason: redis' own last warnings say why it exited, unless it was
// killed, when they are older news.
func TestExitReason(t *testing.T) {
	exit := func(script string) error { return exec.Command("sh", "-c", script).Run() }
	warned := []string{"Can't handle RDB format version 12", "Error reading the RDB base file appendonly.aof.1.base.rdb, AOF loading aborted"}
	tests := []struct {
		name string
		e    supervisor.Exit
		want string
	}{
		{"its own words", supervisor.Exit{Err: exit("exit 1"), Warnings: warned},
			"Can't handle RDB format version 12; Error reading the RDB base file appendonly.aof.1.base.rdb, AOF loading aborted"},
		{"no words", supervisor.Exit{Err: exit("exit 1")}, "exit status 1"},
		{"killed: earlier warnings are not why", supervisor.Exit{Err: exit("kill -9 $$"), Warnings: warned}, "signal: killed"},
		{"a crash report is", supervisor.Exit{Err: exit("kill -11 $$"), Warnings: []string{"Redis 7.0.15 crashed by signal: 11, si_code: 1"}},
			"Redis 7.0.15 crashed by signal: 11, si_code: 1"},
		{"a start that failed", supervisor.Exit{Err: exec.ErrNotFound}, exec.ErrNotFound.Error()},
	}
	for _, tt := range tests {
		if got := exitReason(tt.e); got != tt.want {
			t.Errorf("%s: exitReason = %q, want %q", tt.name, got, tt.want)
		}
	}
}
