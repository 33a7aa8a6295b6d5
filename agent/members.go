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
	for _, r := range s.Role.Replicas {
		v.Connected = append(v.Connected, r.Addr)
	}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
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
	st.forget.Gap, st.forget.Settle = forgetGap, forgetSettle
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
