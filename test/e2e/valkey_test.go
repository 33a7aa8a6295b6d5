package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9/logging"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
)

// valkeyUnits are Debian's own valkey units, which the package must stop and
// mask on a box with Valkey alone, as it does Debian's redis units.
var valkeyUnits = []string{"valkey-server.service", "valkey-sentinel.service"}

// TestValkeyStory: on boxes with Debian's Valkey alone (Debian 13), the
// user's story word for word gives a group of Valkey servers run as the
// valkey user, which survives a kill -9 of the master's valkey-server as
// PRODUCT.md promises for redis.
func TestValkeyStory(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	image, ok := box.ValkeyImage(box.Suite())
	if !ok {
		t.Skipf("Debian %s packages no Valkey: run with %s=trixie", box.Suite(), box.SuiteEnv)
	}
	logging.Disable()
	ctx := ctxFor(t, 12*time.Minute)
	fg := newFaultGroupOn(t, ctx, newBenchOf(t, image), valkeyUnits, "")

	n1 := fg.boxes[0]
	t.Run("valkey, as valkey", func(t *testing.T) {
		out, _, err := n1.Exec(ctx, "redis-ha-agent", "check")
		t.Logf("box %s: redis-ha-agent check:\n%s", n1.Name, out)
		if err != nil || !strings.Contains(out, "redis.binary /usr/bin/valkey-server: Valkey ") {
			t.Errorf("check: %v; want it to name Valkey as redis.binary's server", err)
		}
		for _, bx := range fg.boxes {
			users := strings.Fields(must(t, ctx, bx, "ps -o user= -C valkey-server"))
			if len(users) != 2 || users[0] != "valkey" || users[1] != "valkey" {
				t.Errorf("box %s: valkey-server runs as %v, want valkey and its sentinel as valkey", bx.Name, users)
			}
			for _, u := range valkeyUnits {
				if a, e := isActive(ctx, bx, u), isEnabled(ctx, bx, u); a != "inactive" || e != "masked" {
					t.Errorf("box %s: %s: %s and %s, want inactive and masked", bx.Name, u, a, e)
				}
			}
		}
		info, err := fg.client(ctx, n1.Addr+":6379", "INFO", "server")
		if err != nil || !strings.Contains(info, "server_name:valkey") {
			t.Errorf("INFO server of %s: %v, want server_name:valkey", n1.Name, err)
		}
	})
	t.Run("master's valkey killed (-9)", func(t *testing.T) {
		rep := fg.run(t, ctx, fault{name: "master's valkey killed (-9)", lost: 10, outage: 2 * time.Second, failovers: 1, inject: killRedis})
		server := time.Duration(-1)
		if rep.Server != nil {
			server = rep.Server.LongestOutage
		}
		t.Logf("Valkey on Debian %s, kill -9 of the master's valkey-server: outage %s (server side %s), %d of %d acknowledged writes lost, %d failovers",
			box.Suite(), rep.LongestOutage.Round(10*time.Millisecond), server.Round(10*time.Millisecond), rep.Lost, rep.Acked, rep.Failovers)
	})
}

// TestFlavourSwitch: on a box with Redis and Valkey side by side (Debian 13),
// the package starts Redis, whose data is RDB format 12; a drop-in switching
// redis.binary to Valkey, which cannot load it, is refused with that reason —
// Redis keeps serving — and a restart with it refuses to start, exit 78,
// saying why, instead of a start loop; without the drop-in all is as before.
func TestFlavourSwitch(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	image, ok := box.BothImage(box.Suite())
	if !ok {
		t.Skipf("Debian %s packages no Valkey: run with %s=trixie", box.Suite(), box.SuiteEnv)
	}
	b := newBenchOf(t, image)
	bx := b.Boxes("both")[0]
	ctx := ctxFor(t, 5*time.Minute)
	install(t, ctx, bx, distNew)
	if out, err := redisCLI(ctx, bx, "SET", "e2e:flavour", "kept"); err != nil || out != "OK" {
		t.Fatalf("SET: %q, %v", out, err)
	}
	// Format 12 on disk (Redis 7.4 and later): the AOF's base.
	if out, err := redisCLI(ctx, bx, "BGREWRITEAOF"); err != nil {
		t.Fatalf("BGREWRITEAOF: %q, %v", out, err)
	}
	err := eventually(ctx, 20*time.Second, func(ctx context.Context) error {
		out, _, _ := bx.Sh(ctx, "head -c 9 /var/lib/redis-ha/appendonlydir/*.base.rdb")
		if out != "REDIS0012" {
			return fmt.Errorf("AOF base header %q", out)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Redis did not write RDB format 12: %v", err)
	}

	const dropin = "/etc/redis-ha/conf.d/20-valkey.conf"
	const why = "cannot load /var/lib/redis-ha/appendonlydir/"
	t.Run("reload refused, redis keeps serving", func(t *testing.T) {
		must(t, ctx, bx, "printf '[redis]\\nbinary = \"/usr/bin/valkey-server\"\\n' > "+dropin)
		err := eventually(ctx, 20*time.Second, func(ctx context.Context) error {
			p := show(t, ctx, bx, unit, "StatusText")
			if !strings.Contains(p["StatusText"], "reload refused: redis.binary: Valkey ") || !strings.Contains(p["StatusText"], "RDB format 12") {
				return fmt.Errorf("StatusText %q", p["StatusText"])
			}
			t.Logf("StatusText: %s", p["StatusText"])
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		if out, err := redisCLI(ctx, bx, "GET", "e2e:flavour"); err != nil || out != "kept" {
			t.Errorf("redis after the refused reload: %q, %v", out, err)
		}
		out, _, _ := bx.Exec(ctx, "redis-ha-agent", "check")
		t.Logf("redis-ha-agent check:\n%s", out)
		if !strings.Contains(out, "FAIL") || !strings.Contains(out, why) {
			t.Errorf("check does not fail on the switch")
		}
	})

	t.Run("restart refused: exit 78, the reason in the journal", func(t *testing.T) {
		if _, _, err := bx.Exec(ctx, "systemctl", "restart", unit); err == nil {
			t.Error("systemctl restart with Valkey over format 12 succeeded")
		}
		p := show(t, ctx, bx, unit, "ActiveState", "ExecMainStatus", "NRestarts")
		if p["ActiveState"] != "failed" || p["ExecMainStatus"] != "78" {
			t.Errorf("after restart: %v, want failed with 78", p)
		}
		errs := must(t, ctx, bx, "journalctl -b -u "+unit+" -p err --no-pager -o cat")
		t.Logf("journalctl -p err:\n%s", tailLines(errs, 10))
		if !strings.Contains(errs, "refusing to start") || !strings.Contains(errs, why) {
			t.Errorf("the journal does not say why at priority err")
		}
		if n := strings.TrimSpace(must(t, ctx, bx, "pgrep -c -x valkey-server || true")); n != "0" {
			t.Errorf("%s valkey-server processes: started over the data", n)
		}
	})

	t.Run("switch undone: starts again with the data", func(t *testing.T) {
		must(t, ctx, bx, "rm "+dropin+" && systemctl restart "+unit)
		if out, err := redisCLI(ctx, bx, "GET", "e2e:flavour"); err != nil || out != "kept" {
			t.Errorf("after undoing the switch: %q, %v", out, err)
		}
	})
}

// TestRedisCannotStart: when redis exits at every start (here, a setting it
// refuses), STATUS=, `status` and the journal say why in redis' own words.
func TestRedisCannotStart(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	b := newBench(t)
	bx := b.Boxes("nostart")[0]
	ctx := ctxFor(t, 5*time.Minute)
	install(t, ctx, bx, distNew)

	const dropin = "/etc/redis-ha/conf.d/30-bad.conf"
	const words = "argument must be a memory value"
	must(t, ctx, bx, "printf '[redis.settings]\\nmaxmemory = \"lots\"\\n' > "+dropin)
	err := eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		p := show(t, ctx, bx, unit, "StatusText")
		if !strings.Contains(p["StatusText"], words) {
			return fmt.Errorf("StatusText %q", p["StatusText"])
		}
		t.Logf("StatusText: %s", p["StatusText"])
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	out, _, _ := bx.Exec(ctx, "redis-ha-agent", "status")
	t.Logf("redis-ha-agent status:\n%s", out)
	if !strings.Contains(out, words) {
		t.Errorf("status does not say why redis is down")
	}
	warnings := must(t, ctx, bx, "journalctl -b -u "+unit+" -p warning --no-pager -o cat")
	if !strings.Contains(warnings, "redis exited") || !strings.Contains(warnings, words) {
		t.Errorf("journalctl -p warning does not say why:\n%s", tailLines(warnings, 10))
	}
	must(t, ctx, bx, "rm "+dropin)
	err = eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		if out, err := redisCLI(ctx, bx, "PING"); err != nil || out != "PONG" {
			return fmt.Errorf("PING: %q, %v", out, err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("without the bad setting: %v", err)
	}
}
