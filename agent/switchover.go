package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
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
	actx, cancel := context.WithTimeout(ctx, probeTimeout)
	answers := sentinel.AskAll(actx, sentinelAddrs(cfg), cfg.Password, cfg.Cluster.Name)
	cancel()
	master, ok := sentinel.Agreed(answers, sentinelQuorum(cfg))
	if !ok {
		return SwitchoverResult{}, fmt.Errorf("%w: no master named by a quorum of %d sentinels", errRefused, sentinelQuorum(cfg))
	}
	via := sentinelOf(cfg, master)
	sc := sentinel.NewSentinelClient(via, cfg.Password)
	defer sc.Close()
	if usable, ok, err := sentinel.UsableSentinels(ctx, sc, cfg.Cluster.Name); err != nil || !ok {
		return SwitchoverResult{}, fmt.Errorf("%w: sentinel quorum unhealthy (%d usable, err %v)", errRefused, usable, err)
	}

	mc := sentinel.NewRedisClient(master, cfg.Password)
	defer mc.Close()
	role, err := sentinel.ProbeRole(ctx, mc)
	if err != nil || role.Kind != "master" {
		return SwitchoverResult{}, fmt.Errorf("%w: %s does not answer as master (%v)", errRefused, master, err)
	}
	target, err := pickTarget(cfg, role, to)
	if err != nil {
		return SwitchoverResult{}, fmt.Errorf("%w: %v", errRefused, err)
	}
	res := SwitchoverResult{From: master.String(), To: target.String()}
	n.log.Info("switchover: starting", "from", res.From, "to", res.To)

	// Sentinel picks the replica itself; the others step aside for the
	// duration (replica-priority 0 = never promoted) so it picks ours.
	restore, err := n.holdOthers(ctx, cfg, role, target)
	defer restore()
	if err != nil {
		return res, fmt.Errorf("switchover: %w", err)
	}

	n.alignWithInfo(ctx, sc, cfg.Cluster.Name, target)
	if err := mc.Do(ctx, "CLIENT", "PAUSE", switchPause.Milliseconds(), "WRITE").Err(); err != nil {
		return res, fmt.Errorf("switchover: pause writes on %s: %w", master, err)
	}
	paused := time.Now()
	unpause := func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
		defer cancel()
		if err := mc.Do(uctx, "CLIENT", "UNPAUSE").Err(); err != nil {
			n.log.Warn("switchover: unpause (it lifts itself after the pause timeout)", "err", err)
		}
		res.Paused = time.Since(paused)
	}

	tc := sentinel.NewRedisClient(target, cfg.Password)
	defer tc.Close()
	if err := waitCaughtUp(ctx, mc, tc); err != nil {
		unpause()
		return res, fmt.Errorf("switchover: aborted, writes resumed on %s: %w", master, err)
	}
	n.setCause("switchover to " + res.To)
	if err := sentinel.Failover(ctx, sc, cfg.Cluster.Name); err != nil {
		unpause()
		return res, fmt.Errorf("switchover: aborted, writes resumed on %s: %w", master, err)
	}
	if err := waitNamed(ctx, sc, cfg.Cluster.Name, target); err != nil {
		// The failover is Sentinel's now; it finishes or aborts by itself.
		// The old master stays paused until its timeout rather than risk
		// acknowledging writes beside a promoted target.
		return res, fmt.Errorf("switchover: sentinels did not name %s in %v: %w", target, switchPublish, err)
	}
	// Demote before unpausing: a write held by the pause must meet a replica
	// (READONLY, not acknowledged), never a master that is about to be
	// overwritten.
	if err := mc.ReplicaOf(ctx, target.Host, strconv.Itoa(target.Port)).Err(); err != nil {
		n.log.Warn("switchover: demote old master (Sentinel will)", "err", err)
	}
	unpause()
	res.Took = time.Since(start)
	n.log.Info("switchover: done", "from", res.From, "to", res.To, "writes_paused", res.Paused.Round(time.Millisecond),
		"took", res.Took.Round(time.Millisecond))
	return res, nil
}

// pickTarget chooses the replica to promote: the one asked for, or the
// connected replica with the highest acknowledged offset and a non-zero
// priority.
func pickTarget(cfg *Config, role sentinel.Role, to string) (sentinel.Addr, error) {
	if len(role.Replicas) == 0 {
		return sentinel.Addr{}, errors.New("the master has no connected replica")
	}
	if to != "" {
		want, err := sentinel.ParseAddr(to, cfg.Redis.Port)
		if err != nil {
			return sentinel.Addr{}, err
		}
		for _, r := range role.Replicas {
			if r.Addr == want {
				return want, nil
			}
		}
		return sentinel.Addr{}, fmt.Errorf("%s is not a connected replica of the master", want)
	}
	best := role.Replicas[0]
	for _, r := range role.Replicas[1:] {
		if r.Offset > best.Offset {
			best = r
		}
	}
	return best.Addr, nil
}

// holdOthers sets replica-priority 0 on every replica but the target and
// returns the function that puts each one's own priority back.
func (n *node) holdOthers(ctx context.Context, cfg *Config, role sentinel.Role, target sentinel.Addr) (func(), error) {
	type held struct {
		c    *redis.Client
		prio string
	}
	var hs []held
	restore := func() {
		for _, h := range hs {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
			if err := h.c.ConfigSet(rctx, "replica-priority", h.prio).Err(); err != nil {
				n.log.Warn("switchover: restore replica-priority", "err", err)
			}
			cancel()
			h.c.Close()
		}
	}
	for _, r := range role.Replicas {
		if r.Addr == target {
			continue
		}
		c := sentinel.NewRedisClient(r.Addr, cfg.Password)
		prio, err := c.ConfigGet(ctx, "replica-priority").Result()
		if err == nil {
			err = c.ConfigSet(ctx, "replica-priority", "0").Err()
		}
		if err != nil {
			c.Close()
			return restore, fmt.Errorf("hold replica %s: %w", r.Addr, err)
		}
		hs = append(hs, held{c, prio["replica-priority"]})
	}
	return restore, nil
}

// waitCaughtUp waits until the target has processed everything the paused
// master has: then no acknowledged write can be lost by promoting it.
func waitCaughtUp(ctx context.Context, mc, tc *redis.Client) error {
	ctx, cancel := context.WithTimeout(ctx, switchCatchUp)
	defer cancel()
	for {
		m, err1 := sentinel.ProbeRole(ctx, mc)
		t, err2 := sentinel.ProbeRole(ctx, tc)
		if err1 == nil && err2 == nil && t.Kind == "slave" && t.Link == "connected" && t.Offset >= m.Offset {
			return nil
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return fmt.Errorf("target did not catch up with the master in %v", switchCatchUp)
		}
	}
}

// waitNamed waits until the sentinel names want as master.
func waitNamed(ctx context.Context, sc *redis.SentinelClient, name string, want sentinel.Addr) error {
	ctx, cancel := context.WithTimeout(ctx, switchPublish)
	defer cancel()
	for {
		if m, err := sentinel.MasterAddr(ctx, sc, name); err == nil && m == want {
			return nil
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// setCause tells the history why the next role change happens.
func (n *node) setCause(cause string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hist.cause = cause
}

// Sentinel learns that the target took the master role only from its next
// INFO of the target, and while a failover runs it sends one a second:
// started at a random moment, the switch is published 0.1 to 1.1 s after
// SENTINEL FAILOVER, and writes stay paused that long. A failover sends the
// first INFO at once when the last is over a second old (as it is in the
// normal ten-second rhythm), so it would almost always wait the full second.
// Starting when the last INFO is infoAge old instead lands the next one just
// after the promotion (SLAVEOF NO ONE goes out two or three of Sentinel's
// 50-100 ms ticks after the command). The wait happens before the pause:
// writes are unaffected, the command takes up to one INFO period longer
// (a second: sentineltune.go).
const (
	infoAge       = 600 * time.Millisecond
	infoAlignWait = 11 * time.Second // Sentinel's default INFO period is 10 s (sentineltune.go sets 1 s)
)

// alignWithInfo waits until the sentinel that will run the failover last
// had the target's INFO infoAge ago. It gives up quietly (the switchover is
// then as slow as Sentinel makes it, never less safe).
func (n *node) alignWithInfo(ctx context.Context, sc *redis.SentinelClient, name string, target sentinel.Addr) {
	ctx, cancel := context.WithTimeout(ctx, infoAlignWait)
	defer cancel()
	for {
		age, err := sentinel.InfoAge(ctx, sc, name, target)
		if err != nil {
			n.log.Warn("switchover: cannot time the failover to Sentinel's INFO; writes may pause up to a second longer", "err", err)
			return
		}
		if age <= infoAge {
			_ = sleepCtx(ctx, infoAge-age) // cut short by the bound: go anyway
			return
		}
		// The last INFO is too old to time against: poll for the next one.
		if sleepCtx(ctx, 50*time.Millisecond) != nil {
			n.log.Warn("switchover: no INFO of the target from Sentinel in time; failing over untimed")
			return
		}
	}
}
