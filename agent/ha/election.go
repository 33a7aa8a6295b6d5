package ha

import "github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"

// Retry is what to do after the local sentinel lost an election.
type Retry int

const (
	RetryWait  Retry = iota // not yet: a sentinel still runs a failover, or the states are not all in
	RetryNow                // fail the group over through the local sentinel
	RetryNever              // nothing to retry, or another sentinel's to do
)

// RetryElection decides what follows an election that the local sentinel
// lost (-failover-abort-not-elected). When every live sentinel started an
// election at once, each voted for itself and nobody won: a split vote.
// Sentinel then waits twice failover_timeout (2 minutes by default) before
// it tries again, and the group has no master meanwhile. One sentinel may
// end that at once, with the failover SENTINEL FAILOVER forces, which holds
// no election: the sentinel with the lowest run id among those up, so that
// every agent picks the same one.
//
// It does so only while the master is still objectively down for it (a
// quorum agreed), no live sentinel runs a failover (one that won a slower
// election would otherwise race it), and every sentinel that answered still
// monitors the same master (a failover elsewhere would have moved it).
// local is the local sentinel's state; others are the other sentinels that
// answered.
func RetryElection(local wire.SentinelState, others []wire.SentinelState) Retry {
	if !local.ODown {
		return RetryNever // the master is back, or was never down for a quorum
	}
	lowest := local.MyID
	for _, p := range local.Peers {
		if !p.Down && p.RunID != "" && p.RunID < lowest {
			lowest = p.RunID
		}
	}
	if lowest != local.MyID {
		return RetryNever
	}
	if local.InProgress {
		return RetryWait
	}
	for _, o := range others {
		if o.Master != local.Master {
			return RetryNever // the group moved on
		}
		if o.InProgress {
			return RetryWait
		}
	}
	return RetryNow
}
