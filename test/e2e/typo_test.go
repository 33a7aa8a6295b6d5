package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
)

// TestConfigTypo: a typo in a drop-in is refused with file and line. While
// the agent runs, the reload is refused and the service stays up on its last
// good configuration; on a restart the unit fails with 78 and stays failed,
// without a restart loop.
func TestConfigTypo(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	b := newBench(t)
	bx := b.Boxes("typo")[0]
	ctx := ctxFor(t, 5*time.Minute)
	install(t, ctx, bx, distNew)

	const dropin = "/etc/redis-ha/conf.d/50-typo.conf"
	// "prot" for "port", on line 2.
	where := regexp.MustCompile(`50-typo\.conf:2\b`)

	t.Run("while running: reload refused, service stays up", func(t *testing.T) {
		before := show(t, ctx, bx, unit, "MainPID", "InvocationID")
		must(t, ctx, bx, "printf '[redis]\\nprot = 6380\\n' > "+dropin)
		// The agent sees the change itself; an explicit reload must be
		// refused the same way. (Whether systemctl reload reports it is the
		// unit's choice: the service staying up is what counts.)
		out, errOut, err := bx.Exec(ctx, "systemctl", "reload", unit)
		t.Logf("systemctl reload: %v %s%s", err, out, errOut)
		err = eventually(ctx, 20*time.Second, func(ctx context.Context) error {
			p := show(t, ctx, bx, unit, "StatusText")
			if !strings.Contains(p["StatusText"], "reload refused") || !where.MatchString(p["StatusText"]) {
				return fmt.Errorf("StatusText %q does not say the reload was refused at 50-typo.conf:2", p["StatusText"])
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		after := show(t, ctx, bx, unit, "ActiveState", "MainPID", "InvocationID", "NRestarts")
		if after["ActiveState"] != "active" || after["MainPID"] != before["MainPID"] ||
			after["InvocationID"] != before["InvocationID"] || after["NRestarts"] != "0" {
			t.Errorf("service did not stay up: before %v, after %v", before, after)
		}
		if out, err := redisCLI(ctx, bx, "PING"); err != nil || out != "PONG" {
			t.Errorf("redis after refused reload: %q, %v", out, err)
		}
		if ok, j := journalHas(ctx, bx, where); !ok {
			t.Errorf("journal does not name 50-typo.conf:2:\n%s", tailLines(j, 20))
		}
		out, errOut, err = bx.Exec(ctx, "redis-ha-agent", "check-config")
		if box.ExitCode(err) != 78 || !where.MatchString(out+errOut) {
			t.Errorf("check-config: exit %d, want 78 naming 50-typo.conf:2:\n%s%s", box.ExitCode(err), out, errOut)
		}
	})

	t.Run("restart: exit 78, stays failed", func(t *testing.T) {
		_, _, err := bx.Exec(ctx, "systemctl", "restart", unit)
		if err == nil {
			t.Error("systemctl restart with a typo succeeded")
		}
		p := show(t, ctx, bx, unit, "ActiveState", "Result", "ExecMainStatus", "NRestarts", "RestartUSec")
		if p["ActiveState"] != "failed" || p["ExecMainStatus"] != "78" {
			t.Errorf("after restart: %v, want failed with status 78", p)
		}
		// Long enough for several restarts, were there a loop.
		wait := 5 * time.Second
		if d, err := time.ParseDuration(p["RestartUSec"]); err == nil && 3*d > wait {
			wait = 3 * d
		}
		startsBefore := starts(ctx, bx)
		t.Logf("systemd started the unit %d times this boot; waiting %s for more", startsBefore, wait)
		time.Sleep(wait)
		p2 := show(t, ctx, bx, unit, "ActiveState", "ExecMainStatus", "NRestarts")
		if p2["ActiveState"] != "failed" || p2["NRestarts"] != "0" {
			t.Errorf("%s after the failure: %v, want still failed, no restart", wait, p2)
		}
		if n := starts(ctx, bx); n != startsBefore {
			t.Errorf("unit started %d more times in the %s after the failure", n-startsBefore, wait)
		}
		if ok, j := journalHas(ctx, bx, where); !ok {
			t.Errorf("journal does not name 50-typo.conf:2:\n%s", tailLines(j, 20))
		}
		out, _, _ := bx.Exec(ctx, "journalctl", "-b", "-u", unit, "--no-pager", "-o", "cat", "-n", "15")
		t.Logf("journal:\n%s", out)
	})

	t.Run("typo fixed: starts again", func(t *testing.T) {
		must(t, ctx, bx, "rm "+dropin+" && systemctl restart "+unit)
		if a := isActive(ctx, bx, unit); a != "active" {
			t.Errorf("after fixing the typo: %s", a)
		}
	})
}

// starts counts systemd's "Starting redis-ha-agent.service" lines this boot.
func starts(ctx context.Context, bx *box.Box) int {
	out, _, _ := bx.Exec(ctx, "journalctl", "-b", "--no-pager", "-o", "cat", "_PID=1")
	return strings.Count(out, "Starting "+unit)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
