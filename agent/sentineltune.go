package agent

import (
	"context"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/supervisor"
)

// sentinelTiming sets four of Sentinel's clocks; down_after itself is
// untouched, and each change costs Sentinel and redis a few small requests a
// second (no difference measurable in their idle CPU).
//
//   - ping-period 500 ms (default 1 s): Sentinel counts down_after from the
//     first unanswered ping, so a master is seen down up to one ping period
//     after down_after.
//
//   - ask-period 500 ms (default 1 s): a sentinel that sees the master down
//     asks its peers' opinion that often; the failover waits for it. Not
//     100 ms: then every sentinel reached odown within a tenth of a second
//     of the others and each started its own election; each wrote its new
//     epoch to disk before asking for votes (an fsync, 0.5 s on a busy
//     disk), each voted for itself meanwhile, nobody won, and Sentinel
//     waits twice failover_timeout (2 min) before it tries again. Seen on
//     the box bench with a frozen master, whose sentinel votes too.
//
//   - info-period 1 s (default 10 s): Sentinel sees the promotion only in
//     its next INFO of the new master. A failover sends INFO once a second
//     but fires one at once when the last is older, just before it promotes,
//     so the switch waited nearly a full second; with INFO every second all
//     along, the wait is anywhere in the second, half on average. It also
//     lets Sentinel notice new replicas within a second, and lets switchover
//     time its start to the INFO (switchover.go) within a second.
//
//   - election-timeout 3 s (default 10 s): a sentinel that has not won its
//     election by then gives up. When every sentinel gave up (a split vote)
//     the agent of the one with the lowest id fails the group over through
//     it (loop.go, ha.RetryElection) instead of letting Sentinel wait twice
//     failover_timeout; the sooner they give up, the sooner that starts. A
//     won election takes well under a second, slow disks included.
//
// Not lower than 500 ms for ping: when it picks the replica to promote,
// Sentinel skips any whose last INFO is older than five ping periods, and
// INFO comes once a second, so at 250 ms a reply late by a quarter of a
// second would abort the failover (and the retry waits twice
// failover_timeout).
var sentinelTiming = []string{"ping-period", "500", "ask-period", "500", "info-period", "1000", "election-timeout", "3000"}

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
		pctx, pcancel := context.WithTimeout(ctx, probeTimeout)
		err = n.local.Sentinel().Debug(pctx, sentinelTiming...)
		pcancel()
		if err == nil {
			n.log.Info("sentinel timing set", "settings", sentinelTiming)
			if n.adopted.sentinel.CompareAndSwap(true, false) {
				n.configureAdoptedSentinel(ctx, n.config())
			}
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
