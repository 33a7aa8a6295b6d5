package ha

import "time"

// FenceAction is what a Fence step asks of the agent.
type FenceAction int

const (
	FenceNone  FenceAction = iota
	FenceUp                // refuse writes now: no majority heard from for fence_after
	FenceDown              // a majority is back: ask who the master is, and lift the fence
	FenceClear             // this box is no longer master: a replica carries no fence, forget it
	FenceCheck             // no proof for fence_after, but only because nobody asked: ask now and wait
)

// Fence decides when a master fences itself. A master that cannot reach a
// majority of the sentinels for fence_after stops acknowledging writes,
// because the majority may be electing another master right now and
// whatever it accepts from here on would be thrown away when the partition
// heals. fence_after < down_after, so the fence is up before the other side
// can fail over.
//
// The answers of a round prove the sentinels reachable when the round
// asked, so the clock runs from the latest round a majority answered. The
// zero Fence is ready once After and Every are set.
type Fence struct {
	After time.Duration // sentinel.fence_after
	Every time.Duration // the round period while master (at most After/2)

	lastMajority time.Time // when a majority was last known reachable
	wasMaster    bool
}

// Round is one quorum round as a Fence needs it.
type Round struct {
	Reachable int       // sentinels that answered
	Majority  int       // of the whole group
	Asked     time.Time // when the question went out
}

// Step takes one round: now, whether this box is master and fenced, and the
// round's count.
func (f *Fence) Step(now time.Time, master, fenced bool, r Round) FenceAction {
	switch {
	case !master || !f.wasMaster:
		// The fence's clock starts when this box becomes master: the
		// sentinels (or the start decision) have just made it so.
		f.lastMajority = now
	case r.Reachable >= r.Majority && r.Asked.After(f.lastMajority):
		f.lastMajority = r.Asked
	}
	f.wasMaster = master
	// Half a round of slack for timer jitter: the next round would be late,
	// and this one is at most fence_after after the last proof.
	fenceAt := f.After - f.Every/2
	switch {
	case fenced && !master:
		// Restarted as a replica (restart gate, or Sentinel demoted it): a
		// replica's redis.conf already carries the normal setting.
		return FenceClear
	case !fenced && master && now.Sub(f.lastMajority) >= fenceAt:
		// Fence on evidence only: the latest question went unanswered by a
		// majority. When a majority answered it and it is simply old, this
		// agent's own rounds came late (a busy box, a slow step, a local
		// redis that does not answer): that proves nothing about the
		// network. Fencing then refused writes with every sentinel in sight.
		if r.Reachable >= r.Majority {
			return FenceCheck
		}
		return FenceUp
	case fenced && r.Reachable >= r.Majority:
		return FenceDown
	}
	return FenceNone
}

// FenceDrift says whether redis's own fence, read back in one observation,
// differs from what the agent had decided at that observation: a fence
// command whose reply timed out may run later (a frozen master wakes up and
// carries it out), and a fenced master demoted at runtime keeps its fence
// into a later promotion. Only what is read back is trusted.
func FenceDrift(s Snapshot) bool {
	return s.RedisUp && s.FenceRead && s.FenceSet != s.Fenced
}
