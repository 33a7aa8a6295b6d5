package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Switchover timings. The pause is a safety net: if the agent dies mid-way,
// redis lifts it by itself.
const (
	switchPause   = 15 * time.Second // CLIENT PAUSE ... WRITE on the old master
	switchCatchUp = 5 * time.Second  // for the target to hold the master's offset
	switchPublish = 10 * time.Second // for the sentinels to name the target
)

// SwitchoverResult is what `switchover` prints.
type SwitchoverResult struct {
	From   string        `json:"from"`
	To     string        `json:"to"`
	Paused time.Duration `json:"paused_ns"` // how long writes were held on the old master
	Took   time.Duration `json:"took_ns"`
}

// errRefused marks a switchover that was not attempted because it would be
// unsafe; nothing was changed.
var errRefused = errors.New("switchover refused")

// errAlreadySwitching refuses a second switchover or restart while one runs.
var errAlreadySwitching = fmt.Errorf("%w: a switchover or restart is already running", errRefused)

// switchover moves the master role with zero acknowledged writes lost:
// pause writes on the master, wait until the target holds the master's
// offset, let Sentinel fail over (so every sentinel agrees), demote the old
// master the moment the switch is published (Sentinel alone leaves it
// writable for ~10 s), then unpause. Any failure before the switch aborts
// cleanly: writes are unpaused and priorities restored.
func (n *node) switchover(ctx context.Context, to string) (SwitchoverResult, error) {
	start := time.Now()
	cfg := n.config()
	if len(cfg.Peers) < 2 {
		return SwitchoverResult{}, fmt.Errorf("%w: single-box mode has no replica to switch to", errRefused)
	}
	if n.isPaused() {
		return SwitchoverResult{}, errPaused
	}
	actx, cancel := context.WithTimeout(ctx, probeTimeout)
	g := cfg.Group()
	answers := g.AskAll(actx)
	cancel()
	master, ok := ha.Agreed(answers, cfg.SentinelQuorum())
	if !ok {
		return SwitchoverResult{}, fmt.Errorf("%w: no master named by a quorum of %d sentinels", errRefused, cfg.SentinelQuorum())
	}
	via := cfg.SentinelOf(master)
	sc := g.Sentinel(via)
	defer sc.Close()
	if usable, ok, err := sc.Usable(ctx, g.Name); err != nil || !ok {
		return SwitchoverResult{}, fmt.Errorf("%w: sentinel quorum unhealthy (%d usable, err %v)", errRefused, usable, err)
	}

	mc := sentinel.NewRedis(master, cfg.Creds())
	defer mc.Close()
	role, err := mc.Role(ctx)
	if err != nil || role.Kind != "master" {
		return SwitchoverResult{}, fmt.Errorf("%w: %s does not answer as master (%v)", errRefused, master, err)
	}
	role.Replicas = promotable(ctx, cfg, role.Replicas)
	target, err := pickTarget(cfg, role, to)
	if err != nil {
		return SwitchoverResult{}, fmt.Errorf("%w: %v", errRefused, err)
	}
	res := SwitchoverResult{From: master.String(), To: target.String()}
	n.log.Info("switchover: starting", "from", res.From, "to", res.To)

	// Sentinel picks the replica itself; the others step aside for the
	// duration (replica-priority 0 = never promoted) so it picks ours.
	held, err := n.holdOthers(ctx, cfg, role, target)
	defer held.restore(ctx, n.log)
	if err != nil {
		return res, fmt.Errorf("switchover: %w", err)
	}
	// Sentinel reads priorities from its INFO of each replica: until it has
	// seen them, it could still pick another one.
	if err := n.waitForSentinel(ctx, sc, g.Name, target, held); err != nil {
		return res, fmt.Errorf("switchover: aborted before any change: %w", err)
	}
	if err := mc.PauseWrites(ctx, switchPause); err != nil {
		return res, fmt.Errorf("switchover: pause writes on %s: %w", master, err)
	}
	paused := time.Now()
	unpause := func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
		defer cancel()
		if err := mc.Unpause(uctx); err != nil {
			n.log.Warn("switchover: unpause (it lifts itself after the pause timeout)", "err", err)
		}
		res.Paused = time.Since(paused)
	}

	tc := sentinel.NewRedis(target, cfg.Creds())
	defer tc.Close()
	if err := waitCaughtUp(ctx, mc, tc); err != nil {
		unpause()
		return res, fmt.Errorf("switchover: aborted, writes resumed on %s: %w", master, err)
	}
	n.roles.setCause("switchover to " + res.To)
	if err := sc.Failover(ctx, g.Name); err != nil {
		unpause()
		return res, fmt.Errorf("switchover: aborted, writes resumed on %s: %w", master, err)
	}
	named, err := waitSwitched(ctx, sc, g.Name, master)
	if err != nil {
		// The failover is Sentinel's now; it finishes or aborts by itself.
		// The old master stays paused until its timeout rather than risk
		// acknowledging writes beside a promoted target.
		return res, fmt.Errorf("switchover: sentinels did not name a new master in %v: %w", switchPublish, err)
	}
	// Demote before unpausing: a write held by the pause must meet a replica
	// (READONLY, not acknowledged), never a master that is about to be
	// overwritten.
	if err := mc.ReplicaOf(ctx, named); err != nil {
		n.log.Warn("switchover: demote old master (Sentinel will)", "err", err)
	}
	unpause()
	if named != target {
		// Only the target was known to hold the old master's offset: say
		// so loudly. (It takes a sentinel that missed the held priorities,
		// which waitForSentinel rules out.)
		return res, fmt.Errorf("switchover: Sentinel promoted %s, not %s", named, target)
	}
	res.Took = time.Since(start)
	n.log.Info("switchover: done", "from", res.From, "to", res.To, "writes_paused", res.Paused.Round(time.Millisecond),
		"took", res.Took.Round(time.Millisecond))
	return res, nil
}

// promotable keeps the replicas Sentinel may promote: replica-priority 0
// (drained, or node.priority 0) is never promoted, so switching to one can
// only fail.
func promotable(ctx context.Context, cfg *config.Config, replicas []wire.Replica) []wire.Replica {
	var out []wire.Replica
	for _, r := range replicas {
		c := sentinel.NewRedis(r.Addr, cfg.Creds())
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		prio, err := c.Get(cctx, "replica-priority")
		cancel()
		c.Close()
		if err == nil && prio != "0" {
			out = append(out, r)
		}
	}
	return out
}

// pickTarget chooses the replica to promote: the one asked for, or the
// connected replica with the highest acknowledged offset and a non-zero
// priority.
func pickTarget(cfg *config.Config, role wire.Role, to string) (wire.Addr, error) {
	if len(role.Replicas) == 0 {
		return wire.Addr{}, errors.New("the master has no connected replica that may be promoted (drained boxes and node.priority 0 may not)")
	}
	if to != "" {
		want, err := wire.ParseAddr(to, cfg.Redis.Port)
		if err != nil {
			return wire.Addr{}, err
		}
		for _, r := range role.Replicas {
			if r.Addr == want {
				return want, nil
			}
		}
		return wire.Addr{}, fmt.Errorf("%s is not a connected replica of the master that may be promoted", want)
	}
	best := role.Replicas[0]
	for _, r := range role.Replicas[1:] {
		if r.Offset > best.Offset {
			best = r
		}
	}
	return best.Addr, nil
}

// holds are the replicas a switchover set to replica-priority 0 so that
// Sentinel promotes its target, each with the priority to put back.
type holds []hold

type hold struct {
	addr wire.Addr
	c    *sentinel.Redis
	prio string
}

// holdOthers sets replica-priority 0 on every replica but the target.
// The caller restores them.
func (n *node) holdOthers(ctx context.Context, cfg *config.Config, role wire.Role, target wire.Addr) (holds, error) {
	var hs holds
	for _, r := range role.Replicas {
		if r.Addr == target {
			continue
		}
		c := sentinel.NewRedis(r.Addr, cfg.Creds())
		prio, err := c.HoldPriority(ctx)
		if err != nil {
			c.Close()
			return hs, fmt.Errorf("hold replica %s: %w", r.Addr, err)
		}
		hs = append(hs, hold{r.Addr, c, prio})
	}
	return hs, nil
}

// reassert sets replica-priority 0 again on a held replica that Sentinel
// sees at another: that replica's own agent, started a moment before the
// switchover, applies its configured priority once at its first round.
func (hs holds) reassert(ctx context.Context, addr wire.Addr) {
	for _, h := range hs {
		if h.addr == addr {
			rctx, cancel := context.WithTimeout(ctx, probeTimeout)
			_ = h.c.Set(rctx, "replica-priority", "0")
			cancel()
		}
	}
}

// restore puts each held replica's own priority back.
func (hs holds) restore(ctx context.Context, log *slog.Logger) {
	for _, h := range hs {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
		if err := h.c.Set(rctx, "replica-priority", h.prio); err != nil {
			log.Warn("switchover: restore replica-priority", "replica", h.addr, "err", err)
		}
		cancel()
		h.c.Close()
	}
}

func (hs holds) held(addr wire.Addr) bool {
	return slices.ContainsFunc(hs, func(h hold) bool { return h.addr == addr })
}

// waitCaughtUp waits until the target has processed everything the paused
// master has: then no acknowledged write can be lost by promoting it.
func waitCaughtUp(ctx context.Context, mc, tc *sentinel.Redis) error {
	ctx, cancel := context.WithTimeout(ctx, switchCatchUp)
	defer cancel()
	for {
		m, err1 := mc.Role(ctx)
		t, err2 := tc.Role(ctx)
		if err1 == nil && err2 == nil && t.Kind == "slave" && t.Link == "connected" && t.Offset >= m.Offset {
			return nil
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return fmt.Errorf("target did not catch up with the master in %v", switchCatchUp)
		}
	}
}

// waitSwitched waits until the sentinel names another master than old and
// returns it.
func waitSwitched(ctx context.Context, sc *sentinel.Sentinel, name string, old wire.Addr) (wire.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, switchPublish)
	defer cancel()
	for {
		if m, err := sc.MasterAddr(ctx, name); err == nil && m != old {
			return m, nil
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return wire.Addr{}, err
		}
	}
}

// Sentinel learns that the target took the master role only from its next
// INFO of the target, and while a failover runs it sends one a second:
// started at a random moment, the switch is published 0.1 to 1.1 s after
// SENTINEL FAILOVER, and writes stay paused that long. A failover sends the
// first INFO at once when the last is over a second old (always, with
// Sentinel's default ten-second period), so it would wait the full second.
// Starting when the last INFO is infoAge old instead lands the next one just
// after the promotion (SLAVEOF NO ONE goes out two or three of Sentinel's
// 50-100 ms ticks after the command). The wait happens before the pause:
// writes are unaffected, the command takes up to one INFO period longer
// (a second: sentineltune.go).
const (
	infoAge         = 600 * time.Millisecond
	sentinelWaitMax = 12 * time.Second // Sentinel's default INFO period is 10 s
)

// waitForSentinel waits until the sentinel that will run the failover has
// seen replica-priority 0 on every replica holdOthers held (else the
// switchover is refused), then until its last INFO of the target is infoAge
// old. Failing to time the INFO only makes the pause longer, never less
// safe: it goes on.
func (n *node) waitForSentinel(ctx context.Context, sc *sentinel.Sentinel, name string, target wire.Addr, held holds) error {
	ctx, cancel := context.WithTimeout(ctx, sentinelWaitMax)
	defer cancel()
	aside := false
	for {
		reps, err := sc.Replicas(ctx, name)
		if err != nil {
			return err
		}
		var age time.Duration = -1
		ready := true
		for _, r := range reps {
			switch {
			case r.Addr == target:
				age = r.InfoAge
			case r.Priority != 0 && held.held(r.Addr):
				ready = false
				// Sentinel's view lags its INFO period; setting 0 again
				// on a replica already at 0 costs one round trip.
				held.reassert(ctx, r.Addr)
			}
		}
		if age < 0 {
			return fmt.Errorf("the sentinel does not know %s as a replica", target)
		}
		aside = aside || ready
		if aside && age <= infoAge {
			_ = sleepCtx(ctx, infoAge-age) // cut short by the bound: go anyway
			return nil
		}
		if sleepCtx(ctx, 50*time.Millisecond) != nil {
			if !aside {
				return fmt.Errorf("the sentinel did not see the other replicas step aside in %v", sentinelWaitMax)
			}
			n.log.Warn("switchover: no INFO of the target from Sentinel in time; failing over untimed")
			return nil
		}
	}
}
