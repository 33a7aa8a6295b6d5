package agent

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
)

// Membership's effects (ha.Forget decides). On the master, every
// membersEvery, the loop has every sentinel asked what it remembers of the
// group, away from the loop's goroutine (a sentinel that does not answer
// costs probeTimeout), steps Forget with the answers, and runs a reset it
// decides as an operation: never beside a switchover, a restart or a drain.
const (
	membersEvery = 2 * time.Second
	// forgetGap: a sentinel reset learns the other sentinels from their
	// hello messages, every 2 s, and the replicas from the master's INFO,
	// every second (SENTINEL DEBUG info-period): two hello rounds to spare.
	forgetGap = 5 * time.Second
	// forgetSettle is redis-doc's spacing of resets: the longest a sentinel
	// that cannot learn a peer holds the next reset.
	forgetSettle = 30 * time.Second
	// replicaDeadAfter: a replica that has not acknowledged this long has
	// gone. It is min-replicas-max-lag, after which the master no longer
	// counts it for writes either.
	replicaDeadAfter = 10 * time.Second
)

// membersDue: the loop should ask the sentinels what they remember now.
func (n *node) membersDue(cfg *config.Config) bool {
	st := &n.st
	return !st.gathering && !st.switching && len(cfg.Peers) > 1 && st.view.S.IsMaster() &&
		time.Since(st.gatheredAt) >= membersEvery
}

// gatherMembers asks every sentinel of cfg what it remembers of the group,
// at once, within probeTimeout.
func (n *node) gatherMembers(ctx context.Context, cfg *config.Config, s ha.Snapshot) ha.MembersView {
	g := cfg.Group()
	v := ha.MembersView{Self: cfg.Self, Master: s.IsMaster(), Peers: cfg.Peers, Sentinels: g.Sentinels,
		Quorum: cfg.SentinelQuorum(), Known: make([]ha.Known, len(g.Sentinels))}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	links, err := n.local.Redis().Links(cctx)
	if err != nil {
		v.Master = false // not known: nothing is decided on it
	}
	v.Links = links
	var wg sync.WaitGroup
	for i, a := range g.Sentinels {
		wg.Go(func() {
			sc := g.Sentinel(a)
			defer sc.Close()
			st, err := sc.Known(cctx, g.Name)
			v.Known[i] = ha.Known{Sentinel: a, State: st, Err: err}
		})
	}
	wg.Wait()
	return v
}

// forgetStep steps ha.Forget with what the sentinels answered, says what
// changed, and returns the sentinel to reset now (zero: none).
func (n *node) forgetStep(v ha.MembersView) ha.Forgetting {
	st := &n.st
	st.forget.Gap, st.forget.Settle, st.forget.DeadAfter = forgetGap, forgetSettle, replicaDeadAfter
	f := st.forget.Step(time.Now(), v)
	said := strings.Join(f.Stale, "; ") + "|" + strings.Join(f.Alive, "; ") + "|" + f.Wait
	if said != st.forgetSaid {
		st.forgetSaid = said
		switch {
		case len(f.Stale) > 0 && f.Reset.IsZero():
			n.log.Info("membership: the sentinels remember boxes no longer in cluster.peers; waiting to reset them",
				"remembered", strings.Join(f.Stale, "; "), "waiting", f.Wait)
		case len(f.Alive) > 0:
			n.log.Warn("membership: not in cluster.peers, yet running: forgotten only once stopped (stop its agent), "+
				"or a box added elsewhere whose address this box's peers lack", "running", strings.Join(f.Alive, "; "))
		}
	}
	return f
}

// forget carries a step of ha.Forget out: the master closes the dead links
// of removed replicas (else every sentinel learns them again from its INFO
// until repl-timeout), then one sentinel forgets what is gone.
func (n *node) forget(ctx context.Context, cfg *config.Config, f ha.Forgetting) {
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	for _, a := range f.Drop {
		if k, err := n.local.Redis().DropReplicas(cctx, a.Host); err != nil {
			n.log.Warn("membership: could not close a removed replica's dead link", "replica", a.String(), "err", err)
		} else if k > 0 {
			n.log.Info("membership: closed the dead replication link of a box no longer in cluster.peers",
				"replica", a.String(), "silent for more than", replicaDeadAfter)
		}
	}
	if !f.Reset.IsZero() {
		n.resetSentinel(ctx, cfg, f)
	}
}

// resetSentinel makes one sentinel forget what is gone: SENTINEL RESET,
// after which it learns the group again.
func (n *node) resetSentinel(ctx context.Context, cfg *config.Config, f ha.Forgetting) {
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	sc := cfg.Group().Sentinel(f.Reset)
	defer sc.Close()
	if err := sc.Reset(cctx, cfg.Cluster.Name); err != nil {
		n.log.Warn("membership: could not reset a sentinel", "sentinel", f.Reset.String(), "err", err)
		return
	}
	var forgets []string
	for _, s := range f.Stale {
		if strings.HasSuffix(s, " on sentinel "+f.Reset.String()) {
			forgets = append(forgets, strings.TrimSuffix(s, " on sentinel "+f.Reset.String()))
		}
	}
	n.log.Warn("membership: sentinel reset (SENTINEL RESET) to forget boxes no longer in cluster.peers; it learns the group again",
		"sentinel", f.Reset.String(), "forgets", strings.Join(forgets, ", "))
}
