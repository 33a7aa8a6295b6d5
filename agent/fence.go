package agent

import (
	"context"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Self-fencing: a master that cannot reach a majority of the sentinels for
// sentinel.fence_after stops acknowledging writes, because the majority may
// be electing another master right now and whatever it accepts from here on
// would be thrown away when the partition heals (Jepsen measured 56 % of
// acknowledged writes lost this way). fence_after < down_after, so the fence
// is up before the other side can fail over.
//
// The fence itself (sentinel/fence.go) is min-replicas-to-write raised
// above the number of replicas: writes fail at once with NOREPLICAS.
//
// The fence loop asks every sentinel once per round (sentinel.Prober) and
// reads the answers at the next round, so an idle round costs one wake-up.
// An answer read at a round proves the sentinel reachable when the previous
// round asked, so a master that loses sight of the majority just after one
// round's answers is fenced two rounds later: rounds every fence_after/2
// (250 ms by default) fence it within fence_after. A sentinel slower than a
// round counts as unreachable for that round, as before.
const (
	fenceProbeEvery   = 250 * time.Millisecond // at most; fence_after/2 when shorter
	fenceProbeTimeout = 250 * time.Millisecond // a round that waits for its answers
	// A replica's view feeds /primary, /replica and status only; a round a
	// second is as fresh as the observation beside it.
	quorumEvery = time.Second
)

// fenceEvery is the master's round period.
func fenceEvery(cfg *config.Config) time.Duration {
	return min(fenceProbeEvery, time.Duration(cfg.Sentinel.FenceAfter)/2)
}

// fenceLoop watches the majority while this box is master, fences or
// unfences it, and keeps the VIP where /primary is true. It ends with ctx.
func (n *node) fenceLoop(ctx context.Context) {
	var probe *sentinel.Prober
	var vips vipState
	defer func() {
		n.releaseVIP(n.config(), &vips)
		if probe != nil {
			probe.Close()
		}
	}()
	every := fenceEvery(n.config())
	tick := time.NewTicker(every)
	defer tick.Stop()
	lastMajority := time.Now() // when a majority was last known reachable
	wasMaster := false
	var wrongSince time.Time
	var probeFor sentinel.Group // the group probe was made for
	var probeCfg *config.Config // the configuration probeFor was computed from
	again := false              // go round at once: just fenced
	var observedAt time.Time
	for {
		now := again // a sentinel event or a role change: ask and wait for the answers
		if !again {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			case <-n.refresh:
				now = true
			}
		}
		again = false
		cfg := n.config()
		n.reconcileVIP(ctx, cfg, &vips)
		master, fenced := n.fenceState()
		// A master asks every round (the fence must be quick); others once a
		// second. Only a master, or a box with a VIP to keep where /primary
		// is, needs the loop more often than that.
		next := quorumEvery
		if (master && len(cfg.Peers) > 1) || fenced || cfg.VIP.Address != "" {
			next = fenceEvery(cfg)
		}
		if next != every {
			every = next
			tick.Reset(every)
		}
		// This clock drives the periodic observation too: one timer instead
		// of two, and an idle agent's CPU is mostly its wake-ups.
		if !now && time.Since(observedAt) >= observeEvery-every/2 {
			observedAt = time.Now()
			select {
			case n.observeTick <- struct{}{}:
			default: // the main loop is still at the previous one
			}
		}
		if len(cfg.Peers) < 2 {
			continue
		}
		if !now && !master && !fenced && probe != nil && time.Since(probe.Asked()) < quorumEvery-every/2 {
			continue
		}
		if cfg != probeCfg {
			if g := cfg.Group(); probe == nil || !g.Equal(probeFor) {
				if probe != nil {
					probe.Close()
				}
				probe = sentinel.NewProber(g)
				probeFor = g
			}
			probeCfg = cfg
		}
		// A fenced master waits for its answers, so that it unfences the
		// moment the majority is back rather than a round later.
		wait := now || fenced
		if wait {
			probe.Send(time.Now())
			wctx, cancel := context.WithTimeout(ctx, fenceProbeTimeout)
			probe.Wait(wctx)
			cancel()
		} else {
			probe.Collect()
		}
		answers, asked := probe.Answers()
		if !wait {
			probe.Send(time.Now())
		}
		view := quorumOf(cfg, answers, asked)
		n.setQuorum(view)
		majority := len(cfg.Peers)/2 + 1
		switch {
		case !master || !wasMaster:
			// The fence's clock starts when this box becomes master: the
			// sentinels (or the start decision) have just made it so.
			lastMajority = time.Now()
		case view.reachable >= majority && asked.After(lastMajority):
			lastMajority = asked
		}
		wasMaster = master
		// Half a round of slack for timer jitter: the next round would be
		// late, and this one is at most fence_after after the last proof.
		fenceAt := time.Duration(cfg.Sentinel.FenceAfter) - fenceEvery(cfg)/2
		switch {
		case fenced && !master:
			// Restarted as a replica (restart gate, or Sentinel demoted it):
			// a replica's redis.conf already carries the normal setting.
			n.setFenced(false)
		case !fenced && master && time.Since(lastMajority) >= fenceAt:
			n.fence(ctx, cfg, view.reachable)
			again = true // a fenced master waits for its answers: start now
		case fenced && view.reachable >= majority:
			n.unfence(ctx, cfg)
		}
		n.followNamedMaster(ctx, cfg, view, &wrongSince)
		if now {
			n.reconcileVIP(ctx, cfg, &vips) // with the fresh view
		}
	}
}

// repointAfter leaves Sentinel the first chance to reconfigure a replica
// after a failover (it does so within about a second for the replicas it
// knows).
const repointAfter = time.Second

// followNamedMaster re-points a replica that keeps following another server
// than the master a quorum of sentinels names. Sentinel reconfigures only
// the replicas it knew of when it failed over; one it had not yet learnt of
// (it learns them from the master's INFO every 10 s) would otherwise follow
// the dead master, and later chain behind it, forever.
func (n *node) followNamedMaster(ctx context.Context, cfg *config.Config, q quorumView, since *time.Time) {
	v := n.readView()
	if !v.fresh || !v.s.redisUp || v.s.role.Kind != "slave" || q.master.IsZero() ||
		q.master == v.s.self || q.master == v.s.role.Master || time.Since(q.at) > staleAfter {
		*since = time.Time{}
		return
	}
	if since.IsZero() {
		*since = time.Now()
		return
	}
	if time.Since(*since) < repointAfter {
		return
	}
	*since = time.Time{}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	n.setCause("re-pointed by the agent: was following " + v.s.role.Master.String())
	if err := n.local.Redis().ReplicaOf(cctx, q.master); err != nil {
		n.log.Warn("re-point replica", "err", err)
		return
	}
	n.log.Warn("replica re-pointed to the master the sentinels name", "was", v.s.role.Master.String(), "master", q.master.String())
}

// quorumView is what the sentinels say, asked directly: how many answer,
// and which master (if any) a quorum of them names.
type quorumView struct {
	reachable int
	master    wire.Addr // zero when no quorum agrees
	at        time.Time // when the sentinels were asked
}

// quorumOf counts the sentinels that answered and the master a quorum of
// them names; at is when they were asked.
func quorumOf(cfg *config.Config, answers []wire.Answer, at time.Time) quorumView {
	v := quorumView{at: at, reachable: ha.Reachable(answers)}
	if m, ok := ha.Agreed(answers, cfg.SentinelQuorum()); ok {
		v.master = m
	}
	return v
}

func (n *node) setQuorum(v quorumView) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.view = v
}

func (n *node) fenceState() (master, fenced bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hist.role == "master", n.fenced
}

func (n *node) setFenced(f bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fenced = f
}

func (n *node) fence(ctx context.Context, cfg *config.Config, seen int) {
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := n.local.Redis().Fence(cctx, len(cfg.Peers)); err != nil {
		n.log.Error("fence: could not refuse writes", "err", err)
		return
	}
	n.setFenced(true)
	n.log.Warn("fenced: this master sees no majority of sentinels; refusing writes",
		"sentinels_reachable", seen, "of", len(cfg.Peers), "after", time.Duration(cfg.Sentinel.FenceAfter))
	n.observe(ctx)
}

// unfence lifts the fence once a majority is back: as master if a quorum of
// sentinels still names this box, else after demoting it to the master they
// name, so that no write held back meets a master about to be discarded.
func (n *node) unfence(ctx context.Context, cfg *config.Config) {
	actx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	answers := cfg.Group().AskAll(actx)
	named, ok := ha.Agreed(answers, cfg.SentinelQuorum())
	if !ok {
		return // no verdict yet: stay fenced
	}
	rc := n.local.Redis()
	if self := cfg.Self; named != self {
		n.setCause("demoted after isolation: the sentinels elected " + named.String())
		if err := rc.ReplicaOf(actx, named); err != nil {
			n.log.Error("unfence: demote", "err", err)
			return
		}
		n.log.Warn("demoted after isolation", "master", named.String())
	}
	if err := rc.Unfence(actx, len(cfg.Peers)); err != nil {
		n.log.Error("unfence", "err", err)
		return
	}
	n.setFenced(false)
	n.log.Info("unfenced: a majority of sentinels is reachable again", "master", named.String())
	n.observe(ctx)
}
