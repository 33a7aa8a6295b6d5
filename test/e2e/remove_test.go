package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRemoveDeadAgent: `apt remove` stops redis even when the agent is
// already dead. KillMode=process lets redis outlive the agent (an agent crash
// is no failover), so a dead agent's redis is still in the unit's cgroup; a
// plain `systemctl stop` of the failed unit would leave it serving from a
// removed package.
func TestRemoveDeadAgent(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	b := newBench(t)
	bx := b.Boxes("deadrm")[0]
	ctx := ctxFor(t, 5*time.Minute)
	install(t, ctx, bx, distNew)
	if out, err := redisCLI(ctx, bx, "PING"); err != nil || out != "PONG" {
		t.Fatalf("PING after install: %q, %v", out, err)
	}

	// An agent that cannot come back: an invalid drop-in (refused while it
	// runs), then a kill; the restart exits 78 and the unit stays failed.
	must(t, ctx, bx, "printf '[redis]\\nprot = 6380\\n' > /etc/redis-ha/conf.d/50-typo.conf")
	must(t, ctx, bx, "systemctl kill --kill-whom=main --signal=SIGKILL "+unit)
	err := eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		p := show(t, ctx, bx, unit, "ActiveState", "ExecMainStatus")
		if p["ActiveState"] != "failed" || p["ExecMainStatus"] != "78" {
			return fmt.Errorf("unit %v, want failed with 78", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := redisCLI(ctx, bx, "PING"); err != nil || out != "PONG" {
		t.Fatalf("precondition: the dead agent's redis should still answer: %q, %v", out, err)
	}
	procs := must(t, ctx, bx, "pgrep -a redis-server || true")
	t.Logf("left running by the dead agent:\n%s", procs)

	out := must(t, ctx, bx, "apt remove -y redis-ha-agent 2>&1")
	t.Logf("apt remove:\n%s", out)
	if !strings.Contains(out, "stopping what the dead agent left running") {
		t.Errorf("apt remove did not say it stopped the dead agent's processes")
	}
	if left := strings.TrimSpace(must(t, ctx, bx, "pgrep -a redis-server || true")); left != "" {
		t.Errorf("still running after apt remove:\n%s", left)
	}
	if out, err := redisCLI(ctx, bx, "PING"); err == nil {
		t.Errorf("redis still answers after apt remove: %q", out)
	}
}
