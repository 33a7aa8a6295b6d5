package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestUpgradeRemovePurge: upgrading from the previous build keeps the
// configuration and the data and restarts the service; remove keeps
// /etc/redis-ha; purge removes the state and gives Debian's units back.
func TestUpgradeRemovePurge(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	requireDeb(t, "RHA_DEB_PREV")
	b := newBench(t)
	bx := b.Boxes("upgrade")[0]
	ctx := ctxFor(t, 5*time.Minute)
	debianRedisRunning(t, ctx, bx)

	version := func() string {
		return strings.TrimSpace(must(t, ctx, bx, "dpkg-query -W -f '${Version}' redis-ha-agent"))
	}
	install(t, ctx, bx, distPrev)
	prev := version()
	if a := isActive(ctx, bx, unit); a != "active" {
		t.Fatalf("previous build %s: unit %s", prev, a)
	}

	// The user's configuration and data: a drop-in the agent applies at
	// runtime, and a key.
	const dropin = "/etc/redis-ha/conf.d/50-local.conf"
	must(t, ctx, bx, "printf '[redis]\\nsettings = { maxmemory = \"123mb\" }\\n' > "+dropin)
	maxmemory := func(ctx context.Context) error {
		out, err := redisCLI(ctx, bx, "CONFIG", "GET", "maxmemory")
		if err != nil || !strings.HasSuffix(out, "\n128974848") {
			return fmt.Errorf("maxmemory: %q, %v; want 123mb from %s", out, err, dropin)
		}
		return nil
	}
	if err := eventually(ctx, 20*time.Second, maxmemory); err != nil {
		t.Fatalf("drop-in not applied by the previous build: %v", err)
	}
	if out, err := redisCLI(ctx, bx, "SET", "e2e:upgrade", "kept"); err != nil || out != "OK" {
		t.Fatalf("SET: %q, %v", out, err)
	}
	sums := func() string { return must(t, ctx, bx, "sha256sum /etc/redis-ha/password "+dropin) }
	confBefore := sums()
	before := show(t, ctx, bx, unit, "InvocationID", "MainPID")

	t.Run("upgrade keeps config and data, restarts", func(t *testing.T) {
		out := install(t, ctx, bx, distNew)
		if v := version(); v == prev {
			t.Fatalf("still %s after apt install of the new build:\n%s", v, out)
		} else {
			t.Logf("upgraded %s → %s", prev, v)
		}
		after := show(t, ctx, bx, unit, "ActiveState", "InvocationID", "MainPID", "NRestarts")
		if after["ActiveState"] != "active" || after["InvocationID"] == before["InvocationID"] {
			t.Errorf("service not restarted by the upgrade: before %v, after %v", before, after)
		}
		if got := sums(); got != confBefore {
			t.Errorf("configuration changed by the upgrade:\nbefore\n%s\nafter\n%s", confBefore, got)
		}
		if out, err := redisCLI(ctx, bx, "GET", "e2e:upgrade"); err != nil || out != "kept" {
			t.Errorf("data after upgrade: %q, %v", out, err)
		}
		if err := maxmemory(ctx); err != nil {
			t.Error(err)
		}
		for _, u := range debianUnits {
			if e := isEnabled(ctx, bx, u); e != "masked" {
				t.Errorf("%s after upgrade: %s, want masked", u, e)
			}
		}
	})

	t.Run("remove keeps /etc/redis-ha", func(t *testing.T) {
		out := must(t, ctx, bx, "apt remove -y redis-ha-agent 2>&1")
		t.Logf("apt remove:\n%s", out)
		if a := isActive(ctx, bx, unit); a == "active" || a == "activating" {
			t.Errorf("unit %s after remove", a)
		}
		// A stop is not a restart: the agent takes redis and sentinel down
		// with it (Debian's own units are masked, so any would be ours).
		if left, _, err := bx.Sh(ctx, "pgrep -a redis-server"); err == nil {
			t.Errorf("redis still running after remove:\n%s", left)
		}
		if got := sums(); got != confBefore {
			t.Errorf("configuration changed by remove:\nbefore\n%s\nafter\n%s", confBefore, got)
		}
		must(t, ctx, bx, "test -f /etc/redis-ha/redis-ha.conf")
		state, _, _ := bx.Sh(ctx, "ls -la /var/lib/redis-ha 2>&1")
		t.Logf("/var/lib/redis-ha after remove:\n%s", state)
	})

	t.Run("purge removes state, gives debian units back as found", func(t *testing.T) {
		out := must(t, ctx, bx, "apt purge -y redis-ha-agent 2>&1")
		t.Logf("apt purge:\n%s", out)
		for _, gone := range []string{"/var/lib/redis-ha", "/etc/redis-ha/redis-ha.conf", "/etc/redis-ha/password"} {
			if _, _, err := bx.Exec(ctx, "test", "!", "-e", gone); err != nil {
				t.Errorf("%s still there after purge", gone)
			}
		}
		// debianRedisRunning enabled and started them before the install.
		for _, u := range debianUnits {
			if e, a := isEnabled(ctx, bx, u), isActive(ctx, bx, u); e != "enabled" || a != "active" {
				t.Errorf("%s %s and %s after purge; the install found it enabled and active", u, e, a)
			}
		}
		left, _, _ := bx.Sh(ctx, "find /etc/redis-ha 2>&1")
		t.Logf("left in /etc/redis-ha (the user's own files):\n%s", left)
	})
}
