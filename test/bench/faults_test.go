package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
	"github.com/redis-ha-agent/redis-ha-agent/test/faultcheck"
)

// How a fault run goes: the writer runs warmUp before the fault, the fault
// is injected and ends (healed, booted, restarted), the bench watches the
// group at least watch more, waits until it has settled, lets the writer go
// on for coolDown and then has the checker read every acknowledged key back.
// warmUp also bounds what the tutorial loses when its master restarts from
// its last snapshot: every write of the run before the fault.
const (
	warmUp   = 5 * time.Second
	watch    = 3 * time.Second
	coolDown = 2 * time.Second
	// afterBack: the writers keep going this long after the faulty box is
	// back (booted, healed, resumed, restarted). A box that comes back must
	// cause nothing, and what it causes comes seconds after it is back.
	afterBack = 30 * time.Second
	// offFor: a powered-off box stays off at least this long, as in the
	// report of issue #10 (booted again 17 s after the power-off).
	offFor      = 17 * time.Second
	settleLimit = 2 * time.Minute
	checkLimit  = time.Minute
	partition   = 15 * time.Second
	freeze      = 20 * time.Second
	// Sentinel starts no failover of a master within twice its
	// failover-timeout (60 s in both setups) of the last one it started or
	// voted for. SENTINEL FAILOVER, which the agent's fast failover and both
	// switchovers use, holds no election and is not held back. A fault that
	// needs Sentinel to elect a failover on its own waits that long after
	// the group's last such failover: the table measures a fault on a
	// rested group, for both setups alike.
	electionPause = 2*60*time.Second + 5*time.Second
)

// inject applies a fault to g, whose master is m, and returns once the fault
// is over: healed, booted again, restarted, or the master moved. It calls
// mark at the instant of the fault.
type inject func(ctx context.Context, g *group, m *box.Box, others []*box.Box, mark func()) error

// fault is one row of PRODUCT.md's guarantees table.
type fault struct {
	name   string
	goal   Goal
	inject map[string]inject // by setup; absent: the fault does not exist there
	// elected: the new master comes from an election among the sentinels
	// (not from SENTINEL FAILOVER), which waits out electionPause.
	elected bool
	// failovers: how many the fault needs (PRODUCT.md: one for a dead, cut
	// or frozen master and a switchover, none for an agent kill); the run
	// must see exactly that many.
	failovers int
	// last: run it after the others on ours, since a failure of it may
	// leave a box in a state the next faults would inherit.
	last bool
}

func both(f inject) map[string]inject { return map[string]inject{ours: f, tutorial: f} }

var failoverGoal = Goal{Outage: downAfter + time.Second, Lost: 10, Text: "≤ 6 s (down_after + 1 s), ≤ 10 lost"}

// faults is PRODUCT.md's guarantees table, in its order.
func faults() []fault {
	return []fault{
		{name: "master's redis killed (-9)", goal: Goal{2 * time.Second, 10, "≤ 2 s, ≤ 10 lost"}, inject: both(killRedis), failovers: 1},
		{name: "master's agent killed (-9)", goal: Goal{2 * time.Second, 10, "≤ 2 s, ≤ 10 lost"},
			inject: map[string]inject{ours: killAgent}, last: true, failovers: 0},
		{name: "master box powered off (booted again)", goal: failoverGoal, inject: both(powerOff), elected: true, failovers: 1},
		{name: "master cut off 15 s; client on the majority side", goal: failoverGoal, inject: both(cut(false)), elected: true, failovers: 1},
		{name: "master cut off 15 s; client stuck with the old master", inject: both(cut(true)), elected: true, failovers: 1,
			goal: Goal{Lost: writeRate, Text: "waits for heal, ≤ 1 s of writes (200)"}},
		{name: "master's redis frozen (SIGSTOP 20 s)", goal: failoverGoal, inject: both(freezeRedis), elected: true, failovers: 1},
		{name: "planned switchover", goal: Goal{time.Second, 0, "≤ 1 s, 0 lost"}, failovers: 1,
			inject: map[string]inject{ours: agentSwitchover, tutorial: sentinelFailover}},
	}
}

// run measures one fault on g: two writers run from warmUp before it until
// afterBack after it is over and the group has settled — the default
// client, as users configure it (every sentinel, go-redis's defaults),
// whose outage is the client outage, and the tuned client, whose outage is
// the server's — while every sentinel's +switch-master is counted. It
// returns the default client's report with the tuned one's as its Server,
// or a Run with Err saying why there is none.
func (g *group) run(t *testing.T, ctx context.Context, name string, f inject, elected bool, failovers int) *Run {
	t.Helper()
	if wait := time.Until(g.lastElection.Add(electionPause)); elected && wait > 0 {
		t.Logf("%s, %s: waiting %s for the sentinels to be allowed another election", g.setup, name, wait.Round(time.Second))
		sleep(ctx, wait)
	}
	start := time.Now()
	old, err := g.settled(ctx, "", settleLimit)
	if err != nil {
		return &Run{Err: fmt.Sprintf("%s, %s: the group had not settled before the fault: %v", g.setup, name, err)}
	}
	m, others, err := g.box(old)
	if err != nil {
		return &Run{Err: err.Error()}
	}
	sw := faultcheck.WatchSwitches(ctx, g.target)
	defer sw.Stop()
	w := faultcheck.Start(ctx, g.target, writeRate)
	defer w.Stop()
	tw := faultcheck.StartTuned(ctx, g.target.WithoutSentinelOn(m.Addr), writeRate)
	defer tw.Stop()
	sleep(ctx, warmUp)
	injectErr := f(ctx, g, m, others, func() { w.MarkFault(name); tw.MarkFault(name) })
	back := time.Now()
	sleep(ctx, watch)
	master, settleErr := g.settled(ctx, "", settleLimit)
	sleep(ctx, max(coolDown, time.Until(back.Add(afterBack))))
	l, tl, switches := w.Stop(), tw.Stop(), sw.Stop()
	if injectErr != nil {
		return &Run{Err: fmt.Sprintf("%s, %s: %v", g.setup, name, injectErr)}
	}
	if l.FaultAt.IsZero() {
		return &Run{Err: fmt.Sprintf("%s, %s: the fault was never injected", g.setup, name)}
	}
	rep, err := faultcheck.Check(ctx, g.target, l, checkLimit)
	if err != nil {
		return &Run{Err: fmt.Sprintf("%s, %s: %v", g.setup, name, err)}
	}
	trep, err := faultcheck.Check(ctx, g.target, tl, checkLimit)
	if err != nil {
		return &Run{Err: fmt.Sprintf("%s, %s, tuned client: %v", g.setup, name, err)}
	}
	rep.Server = &trep
	fo := faultcheck.Failovers(switches)
	rep.Failovers = len(fo)
	run := &Run{Report: rep, FailoversNeeded: failovers}
	if settleErr != nil {
		run.Unsettled = settleErr.Error()
		t.Logf("%s, %s: the group did not settle after the fault: %v", g.setup, name, settleErr)
	}
	if elected {
		g.lastElection = electedAt(l, rep.Master, old)
	}
	t.Logf("%s: %s (master %s → %s; run took %s)%s%s\n  tuned client:%s", g.setup, rep.Row(), old, master,
		time.Since(start).Round(time.Second), switchStory(l.FaultAt, switches), spans(l), spans(tl))
	return run
}

// switchStory lists what the sentinels announced, relative to the fault.
func switchStory(faultAt time.Time, switches []faultcheck.Switch) string {
	var b strings.Builder
	for _, s := range switches {
		fmt.Fprintf(&b, "\n    %+.2fs sentinel %s: +switch-master %s → %s", s.At.Sub(faultAt).Seconds(), s.Sentinel, s.From, s.To)
	}
	return b.String()
}

// electedAt bounds when the sentinels elected a new master in a run: no
// later than its first acknowledged write. When the master did not change,
// an election may still have been tried: the end of the run bounds it.
func electedAt(l *faultcheck.WriteLog, master, old string) time.Time {
	if master != old {
		for _, r := range l.Records {
			if r.Acked && r.Server == master && r.End.After(l.FaultAt) {
				return r.End
			}
		}
	}
	return l.Stopped
}

// spans says which server acknowledged what, and when relative to the
// fault: the story behind a row, for the log.
func spans(l *faultcheck.WriteLog) string {
	var b strings.Builder
	at := func(tm time.Time) string { return fmt.Sprintf("%+.2fs", tm.Sub(l.FaultAt).Seconds()) }
	for _, sp := range l.AckSpans() {
		fmt.Fprintf(&b, "\n    %s: %d acks %s..%s", sp.Server, sp.Acks, at(sp.From), at(sp.To))
	}
	failed := 0
	errs := map[string]int{}
	for _, r := range l.Records {
		if !r.Acked {
			failed++
			errs[r.Err]++
		}
	}
	fmt.Fprintf(&b, "\n    %d attempts failed; times relative to the fault", failed)
	for e, n := range errs {
		fmt.Fprintf(&b, "\n    %4d× %s", n, e)
	}
	return b.String()
}

func killRedis(ctx context.Context, g *group, m *box.Box, _ []*box.Box, mark func()) error {
	pid, err := g.redisPID(ctx, m)
	if err != nil {
		return err
	}
	mark()
	_, err = sh(ctx, m, "kill -9 "+strconv.Itoa(pid))
	return err
}

// killAgent kills the master's agent and returns once systemd has started
// another (RestartSec=2s); the group settling, that agent's unit active
// included, is the run's to wait for.
func killAgent(ctx context.Context, g *group, m *box.Box, _ []*box.Box, mark func()) error {
	before, err := mainPID(ctx, m, agentUnit)
	if err != nil {
		return err
	}
	mark()
	if _, err := sh(ctx, m, "kill -9 "+strconv.Itoa(before)); err != nil {
		return err
	}
	return eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		pid, err := mainPID(ctx, m, agentUnit)
		if err == nil && pid == before {
			err = fmt.Errorf("box %s: agent pid %d, the killed one", m.Name, pid)
		}
		return err
	})
}

// powerOff pulls the master box's plug, waits until the other boxes'
// sentinels agree on a new master and offFor has passed, and boots it again
// on its disk.
func powerOff(ctx context.Context, g *group, m *box.Box, others []*box.Box, mark func()) error {
	old := m.Addr + ":6379"
	mark()
	if err := m.PowerOff(); err != nil {
		return err
	}
	offAt := time.Now()
	err := eventually(ctx, time.Minute, func(ctx context.Context) error {
		n, err := g.namedBy(ctx, others)
		if err == nil && n == old {
			err = fmt.Errorf("with %s off, the sentinels still name it", m.Name)
		}
		return err
	})
	// The clients write to the new master while the old box is off.
	sleep(ctx, max(coolDown, time.Until(offAt.Add(offFor))))
	if berr := box.BootAll(ctx, m); berr != nil {
		return fmt.Errorf("boot again: %w (and %v)", berr, err)
	}
	return err
}

// cut isolates the master from the other boxes for partition, with the
// client on its side (withClient) or on the others', then heals.
func cut(withClient bool) inject {
	return func(ctx context.Context, g *group, m *box.Box, others []*box.Box, mark func()) error {
		side, rest := []string{m.Name}, []string{}
		for _, bx := range others {
			rest = append(rest, bx.Name)
		}
		if withClient {
			side = append(side, "client")
		} else {
			rest = append(rest, "client")
		}
		mark()
		start := time.Now()
		if err := g.b.Cut(side, rest); err != nil {
			g.b.Heal()
			return err
		}
		g.logf("%s: cut %v from %v in %s", g.setup, side, rest, time.Since(start).Round(time.Millisecond))
		sleep(ctx, partition)
		return g.b.Heal()
	}
}

// freezeRedis stops the master's redis without killing it: it holds its
// connections, answers nothing, and wakes up still believing it is master.
func freezeRedis(ctx context.Context, g *group, m *box.Box, _ []*box.Box, mark func()) error {
	pid, err := g.redisPID(ctx, m)
	if err != nil {
		return err
	}
	mark()
	if _, err := sh(ctx, m, "kill -STOP "+strconv.Itoa(pid)); err != nil {
		return err
	}
	sleep(ctx, freeze)
	// The agent may have replaced it meanwhile; that is its call.
	sh(context.WithoutCancel(ctx), m, "kill -CONT "+strconv.Itoa(pid))
	return nil
}

// agentSwitchover is the user's planned switchover, run on a replica's box,
// which returns once the switch is done.
func agentSwitchover(ctx context.Context, g *group, m *box.Box, others []*box.Box, mark func()) error {
	mark()
	if out, err := sh(ctx, others[0], "redis-ha-agent switchover 2>&1"); err != nil {
		return fmt.Errorf("redis-ha-agent switchover: %w: %s", err, out)
	}
	return movedFrom(ctx, g, m)
}

// sentinelFailover is the tutorial's planned switchover: SENTINEL FAILOVER
// asked of the local sentinel on a replica's box (no password: tutorials set
// none on the sentinels).
func sentinelFailover(ctx context.Context, g *group, m *box.Box, others []*box.Box, mark func()) error {
	mark()
	out, err := sh(ctx, others[0], "redis-cli -p 26379 SENTINEL FAILOVER "+masterSet)
	if err == nil && out != "OK" {
		err = fmt.Errorf("answered %q", out)
	}
	if err != nil {
		return fmt.Errorf("SENTINEL FAILOVER: %w", err)
	}
	return movedFrom(ctx, g, m)
}

// movedFrom waits until every sentinel names a master other than m.
func movedFrom(ctx context.Context, g *group, m *box.Box) error {
	return eventually(ctx, time.Minute, func(ctx context.Context) error {
		n, err := g.named(ctx)
		if err == nil && n == m.Addr+":6379" {
			err = fmt.Errorf("sentinels still name %s", n)
		}
		return err
	})
}
