package agent

import (
	"context"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/supervisor"
)

// sentinelTiming shortens two of Sentinel's clocks; down_after itself is
// untouched. Sentinel pings each instance once a second and counts
// down_after from the first unanswered ping, so a master is seen down
// between down_after and down_after + 1 s after it stopped answering; and a
// sentinel that sees it down asks its peers for their opinion once a second,
// which adds up to another second before the failover starts. Half a second
// each halves both waits. Not lower: when it picks the replica to promote,
// Sentinel skips any whose last INFO is older than five ping periods, and
// during a failover it asks for INFO only once a second, so at 250 ms a
// reply late by a quarter of a second would abort the failover (and the
// retry waits twice failover_timeout).
var sentinelTiming = []string{"ping-period", "500", "ask-period", "500"}

// sentinelTuneWait bounds how long a freshly started sentinel may take to
// answer; after that it keeps Sentinel's defaults (slower, not wrong).
const sentinelTuneWait = 30 * time.Second

// sentinelStarted is the sentinel child's OnStart: Sentinel keeps SENTINEL
// DEBUG settings in memory only, so each start needs them again.
func (n *node) sentinelStarted(*supervisor.Process) {
	select {
	case n.sentStarted <- struct{}{}:
	default: // one is pending already
	}
}

// tuneSentinels applies sentinelTiming after every start of the local
// sentinel, until ctx ends.
func (n *node) tuneSentinels(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.sentStarted:
		}
		n.tuneSentinel(ctx)
	}
}

func (n *node) tuneSentinel(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, sentinelTuneWait)
	defer cancel()
	var err error
	for {
		cfg := n.config()
		pctx, pcancel := context.WithTimeout(ctx, probeTimeout)
		err = sentinel.Debug(pctx, n.localSentinelClient(cfg), sentinelTiming...)
		pcancel()
		if err == nil {
			n.log.Info("sentinel timing set", "settings", sentinelTiming)
			return
		}
		if sleepCtx(ctx, 100*time.Millisecond) != nil {
			break
		}
	}
	if ctx.Err() == context.DeadlineExceeded {
		n.log.Warn("sentinel timing not set; it keeps its defaults (failovers up to a second slower)", "err", err)
	}
}
