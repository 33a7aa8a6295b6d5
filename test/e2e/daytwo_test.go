package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
	"github.com/redis-ha-agent/redis-ha-agent/test/faultcheck"
)

// The day-two operations of issue #12, each measured like a fault
// (faultGroup.run): the default client writing throughout, every sentinel's
// +switch-master counted, every acknowledged key read back.

const sentPid = "/run/redis-ha/sentinel.pid"

// TestDayTwoAgentRestart: the master's agent killed, restarted with
// systemctl, and upgraded to a different build. Each time the next agent
// adopts redis and sentinel as they run: no write fails, none is lost, no
// failover happens.
func TestDayTwoAgentRestart(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	requireDeb(t, "RHA_DEB_PREV")
	lockBench(t)
	ctx := ctxFor(t, 15*time.Minute)
	// The group runs the previous build, so that the last step upgrades it.
	fg := newFaultGroupScript(t, ctx, strings.Replace(story, "cd "+distNew, "cd "+distPrev, 1))
	var reps []faultcheck.Report
	for _, f := range []fault{
		{name: "master's agent kill -9", inject: adopts(killAgent)},
		{name: "master's agent systemctl restart", inject: adopts(restartAgent)},
		{name: "master's agent upgraded", inject: adopts(upgradeAgent)},
	} {
		// PRODUCT.md: no outage, nothing lost, no failover. No failed write
		// is asserted; the outage (the longest gap between acks, one write
		// interval being 5 ms) is reported, and a gap over this bound logs
		// the journals.
		f.outage = 250 * time.Millisecond
		rep := fg.run(t, ctx, f)
		if rep.Failed > 0 {
			t.Errorf("%s: %d writes failed; the agent's restart must not touch redis", f.name, rep.Failed)
		}
		reps = append(reps, rep)
	}
	t.Logf("agent restarts on the master's box, default client (every sentinel listed):\n%s", faultcheck.Table(reps))
}

// adopts wraps an agent restart: redis and sentinel must run on with the
// same pids, and the new agent must say it adopted them.
func adopts(restart func(t *testing.T, ctx context.Context, fg *faultGroup, m *box.Box, others []*box.Box)) func(t *testing.T, ctx context.Context, fg *faultGroup, m *box.Box, others []*box.Box) {
	return func(t *testing.T, ctx context.Context, fg *faultGroup, m *box.Box, others []*box.Box) {
		t.Helper()
		pids := func() string { return shIn(t, ctx, m, "cat "+redisPid+" "+sentPid+" | tr '\\n' ' '") }
		before := pids()
		since := shIn(t, ctx, m, "date +%s.%N")
		restart(t, ctx, fg, m, others)
		err := eventually(ctx, agentLimit, func(ctx context.Context) error {
			if a := isActive(ctx, m, unit); a != "active" {
				return fmt.Errorf("unit %s", a)
			}
			out, _, err := m.Sh(ctx, "journalctl -u "+unit+" --no-pager -o cat --since @"+since+" | grep -c 'adopting it'")
			if err != nil || strings.TrimSpace(out) != "2" {
				return fmt.Errorf("the new agent has not adopted redis and sentinel yet (%q adoptions logged)", strings.TrimSpace(out))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("box %s: %v", m.Name, err)
		}
		if after := pids(); after != before {
			t.Errorf("box %s: redis and sentinel pids %s -> %s: restarted, not adopted", m.Name, before, after)
		}
	}
}

// restartAgent is `systemctl restart redis-ha-agent`, which returns once
// the new agent is ready (Type=notify).
func restartAgent(t *testing.T, ctx context.Context, fg *faultGroup, m *box.Box, others []*box.Box) {
	before := show(t, ctx, m, unit, "MainPID")["MainPID"]
	shIn(t, ctx, m, "systemctl restart "+unit)
	if after := show(t, ctx, m, unit, "MainPID")["MainPID"]; after == before {
		t.Fatalf("box %s: MainPID %s unchanged by systemctl restart", m.Name, before)
	}
}

var versionRE = regexp.MustCompile(`^redis-ha-agent \S+$`)

// upgradeAgent installs the build under test over the previous one, as
// `apt install` of a newer package does: a different binary, and the
// package's postinst restarts the unit.
func upgradeAgent(t *testing.T, ctx context.Context, fg *faultGroup, m *box.Box, others []*box.Box) {
	look := func() (string, string) {
		return shIn(t, ctx, m, "redis-ha-agent version"), shIn(t, ctx, m, "sha256sum < /usr/bin/redis-ha-agent")
	}
	v0, sum0 := look()
	out := install(t, ctx, m, distNew)
	v1, sum1 := look()
	if v1 == v0 || sum1 == sum0 || !versionRE.MatchString(v1) {
		t.Fatalf("box %s: %q (%.12s) -> %q (%.12s): not a different build\n%s", m.Name, v0, sum0, v1, sum1, out)
	}
	t.Logf("box %s: upgraded %s -> %s", m.Name, strings.TrimPrefix(v0, "redis-ha-agent "), strings.TrimPrefix(v1, "redis-ha-agent "))
}

// pausedFor is how long the paused group's master box stays off.
const pausedFor = 20 * time.Second

// TestDayTwoPause: the group paused, then the master's box powered off for
// 20 s: no failover while paused, the box comes back as master, and resume
// converges with nothing lost.
func TestDayTwoPause(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	lockBench(t)
	ctx := ctxFor(t, 10*time.Minute)
	fg := newFaultGroup(t, ctx)
	rep := fg.run(t, ctx, fault{name: "paused, master's box off 20 s, resumed", inject: pausedPowerOff})
	t.Logf("pause on three boxes, default client (every sentinel listed):\n%s", faultcheck.Table([]faultcheck.Report{rep}))
}

func pausedPowerOff(t *testing.T, ctx context.Context, fg *faultGroup, m *box.Box, others []*box.Box) {
	t.Logf("box %s: %s", others[0].Name, shIn(t, ctx, others[0], "redis-ha-agent pause"))
	for _, bx := range fg.boxes {
		err := eventually(ctx, 10*time.Second, func(ctx context.Context) error {
			v, err := fg.metric(ctx, bx, "redis_ha_paused")
			status := show(t, ctx, bx, unit, "StatusText")["StatusText"]
			if err != nil || v != "1" || !strings.Contains(status, "PAUSED") {
				return fmt.Errorf("box %s: redis_ha_paused %q (%v), STATUS=%q", bx.Name, v, err, status)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if out := shIn(t, ctx, others[1], "redis-ha-agent status || true"); !strings.Contains(out, "PAUSED") {
		t.Errorf("status does not say paused:\n%s", out)
	}
	if err := m.PowerOff(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pausedFor)
	for _, bx := range others {
		if m, err := fg.oneMaster(ctx, others); err == nil {
			t.Errorf("box %s: %s promoted while paused", bx.Name, m)
		}
	}
	if err := box.BootAll(ctx, m); err != nil {
		t.Fatal(err)
	}
	err := eventually(ctx, 2*time.Minute, func(ctx context.Context) error {
		if a := isActive(ctx, m, unit); a != "active" {
			return fmt.Errorf("box %s: unit %s", m.Name, a)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("box %s: %s", others[1].Name, shIn(t, ctx, others[1], "redis-ha-agent resume"))
}

// metric reads one sample of a box's /metrics from the client namespace.
func (fg *faultGroup) metric(ctx context.Context, bx *box.Box, name string) (string, error) {
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: fg.b.ClientDial}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+bx.Addr+":"+httpPort+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("no %s in /metrics", name)
}

// TestDayTwoRestart: restart --rolling on three boxes (replicas first, then
// one switchover, then the old master), then redis-server replaced on disk
// on two boxes, the master's among them, and restart --rolling --pending,
// which must restart exactly those two.
func TestDayTwoRestart(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	lockBench(t)
	ctx := ctxFor(t, 12*time.Minute)
	fg := newFaultGroup(t, ctx)
	var reps []faultcheck.Report
	reps = append(reps, fg.run(t, ctx, fault{name: "restart --rolling", failovers: 1, outage: time.Second,
		inject: func(t *testing.T, ctx context.Context, fg *faultGroup, m *box.Box, others []*box.Box) {
			before := fg.redisPids(t, ctx)
			t.Logf("box %s: redis-ha-agent restart --rolling:\n%s", others[0].Name, shIn(t, ctx, others[0], "redis-ha-agent restart --rolling 2>&1"))
			after := fg.redisPids(t, ctx)
			for name, pid := range before {
				if after[name] == pid {
					t.Errorf("box %s: redis pid %s unchanged: not restarted", name, pid)
				}
			}
		}}))
	reps = append(reps, fg.run(t, ctx, fault{name: "redis-server replaced on 2 boxes, restart --rolling --pending", failovers: 1, outage: time.Second,
		inject: func(t *testing.T, ctx context.Context, fg *faultGroup, m *box.Box, others []*box.Box) {
			replaced := map[string]bool{m.Name: true, others[0].Name: true}
			for _, bx := range []*box.Box{m, others[0]} {
				// As dpkg unpacks a new redis-server: a new file renamed over the old.
				shIn(t, ctx, bx, `f=$(readlink -f /usr/bin/redis-server) && cp -p "$f" "$f.dpkg-new" && mv "$f.dpkg-new" "$f"`)
			}
			for _, bx := range fg.boxes {
				want := "0"
				if replaced[bx.Name] {
					want = "1"
				}
				err := eventually(ctx, 10*time.Second, func(ctx context.Context) error {
					if v, err := fg.metric(ctx, bx, "redis_ha_pending_restart"); err != nil || v != want {
						return fmt.Errorf("box %s: redis_ha_pending_restart %q (%v), want %s", bx.Name, v, err, want)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("box %s: redis-ha-agent status:\n%s", others[1].Name, shIn(t, ctx, others[1], "redis-ha-agent status 2>&1 || true"))
			before := fg.redisPids(t, ctx)
			t.Logf("box %s: redis-ha-agent restart --rolling --pending:\n%s", others[1].Name,
				shIn(t, ctx, others[1], "redis-ha-agent restart --rolling --pending 2>&1"))
			after := fg.redisPids(t, ctx)
			for name, pid := range before {
				if restarted := after[name] != pid; restarted != replaced[name] {
					t.Errorf("box %s: restarted %v, its redis-server replaced %v", name, restarted, replaced[name])
				}
			}
		}}))
	t.Logf("restarts on three boxes, default client (every sentinel listed):\n%s", faultcheck.Table(reps))
}

// redisPids reads every box's redis pid.
func (fg *faultGroup) redisPids(t *testing.T, ctx context.Context) map[string]string {
	t.Helper()
	pids := map[string]string{}
	for _, bx := range fg.boxes {
		pids[bx.Name] = shIn(t, ctx, bx, "cat "+redisPid)
	}
	return pids
}

// lockBench waits for the host-wide bench lock (box.New takes it once per
// test process) before a test starts its time budget: waiting behind
// another engineer's long run must not eat the budget of the test itself.
func lockBench(t *testing.T) { newBench(t) }
