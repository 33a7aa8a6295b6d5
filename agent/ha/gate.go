package ha

import (
	"fmt"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Decision is who should be master, and why we think so.
type Decision struct {
	Master wire.Addr
	Why    string
}

// Authority is what ChooseMaster weighs, most authoritative first.
type Authority struct {
	Single     bool          // no peers: this box is the master
	Answers    []wire.Answer // every sentinel's answer, asked now
	Remembered *wire.Addr    // the master our own sentinel last wrote to its state file, for this group
	Bootstrap  wire.Addr     // cluster.bootstrap_primary
}

// ChooseMaster decides which box is master, in order of authority:
//  1. what the reachable sentinels name (the group's consensus);
//  2. what our own sentinel last wrote to its state file (sentinels are down
//     or unreachable, but the group existed);
//  3. the bootstrap_primary, only when nothing anywhere knows a master: the
//     group's very first start. A node never elects itself.
func ChooseMaster(self wire.Addr, a Authority) Decision {
	if a.Single {
		return Decision{self, "single-box mode"}
	}
	if m, votes, ok := MostNamed(Named(a.Answers)); ok {
		return Decision{m, fmt.Sprintf("named by %d/%d sentinels", votes, len(a.Answers))}
	}
	if a.Remembered != nil {
		return Decision{*a.Remembered, "no sentinel reachable; our sentinel's last known master"}
	}
	return Decision{a.Bootstrap, "first start of the group: bootstrap_primary"}
}

// Crashed says whether the redis about to start follows a crash. On the
// agent's first start that is the running marker found in the state
// directory (redis crashed, or the box lost power), unless the previous
// agent's redis was found still running and has just stopped cleanly: it
// held every acknowledged write and persisted them all on SIGTERM. After
// that, any exit the agent did not ask for is a crash.
func Crashed(first, requested, marker, stoppedCleanly bool) bool {
	if !first {
		return !requested
	}
	return marker && !stoppedCleanly
}

// Start is how redis starts: the replica of ReplicaOf, or master when nil.
type Start struct {
	ReplicaOf *wire.Addr
	Why       string
}

// Gate is the restart gate. A redis that crashed (or whose box lost power)
// while it was master must not come back as master while peers exist: its
// replicas may hold writes it never persisted, and a fast restart would
// make them resync to its stale data (Sentinel may not even notice the
// restart). It stays down until the sentinels name another master, then
// starts as that master's replica.
type Gate struct {
	// FailoverEvery spaces the requests for a fast failover while the gate
	// holds: the agent knows for certain that the master is dead, which
	// Sentinel would learn only after down_after.
	FailoverEvery time.Duration
	// Paused: the group is in maintenance (no replica may be promoted).
	// Nothing can replace a crashed master then, and holding it down would
	// leave the group without one until the pause ends: it restarts as
	// master with what it persisted (with AOF, every write it acknowledged
	// but the last second's on a power loss), and no failover is asked for.
	Paused bool

	lastTry time.Time
}

// Step decides, given the current decision, whether redis starts (and how)
// or stays held, and whether to ask for a failover now.
func (g *Gate) Step(now time.Time, self wire.Addr, d Decision, crashed, single bool) (start Start, hold, failover bool) {
	switch {
	case d.Master != self:
		m := d.Master
		why := d.Why
		if crashed {
			why = "after a crash, " + why
		}
		return Start{ReplicaOf: &m, Why: why}, false, false
	case !crashed || single:
		return Start{Why: d.Why}, false, false
	case g.Paused:
		return Start{Why: "after a crash while the group is paused, " + d.Why}, false, false
	}
	if now.Sub(g.lastTry) >= g.FailoverEvery {
		g.lastTry = now
		failover = true
	}
	return Start{}, true, failover
}

// Priority is the replica-priority this box's redis runs with: 0 (never
// promoted) while the group is paused, this box is drained, or it is an
// empty replica that has never synced with its master; else the configured
// node.priority. Sentinel skips a replica of priority 0 whatever asks it to
// fail over (its own election, SENTINEL FAILOVER from an agent or a human),
// so it stops every way of promoting a replica at the server, and it lives
// in redis: a sentinel restarted meanwhile still sees it.
//
// An empty replica that never synced is a new or re-imaged box, or a box of
// a group whose bootstrap primary has not started yet. Sentinel would
// promote it (its INFO says master_link_down_since_seconds:-1, which passes
// every check), and the data of the master it replaced, when that comes
// back, would be wiped by the sync from it: the dataset adopt-data gave the
// bootstrap primary, for one.
func Priority(configured int, paused, drained, unsynced bool) int {
	if paused || drained || unsynced {
		return 0
	}
	return configured
}
