package ha

import "time"

// VIPAction is what a VIP step asks of the agent.
type VIPAction int

const (
	VIPNone    VIPAction = iota
	VIPTake              // put the address on this box's interface and announce it
	VIPRelease           // take it off
)

// VIP decides where the virtual IP goes. It is reconciled, never scripted:
// every round compares "this box is the primary" (what /primary answers)
// with "the address is on my interface" and fixes the difference, so a VIP
// left behind by a crash is removed, one someone deleted comes back, and a
// demoted or fenced box drops it within a round.
type VIP struct {
	// HoldOff is how long a new primary waits before taking the address:
	// two of the old master's rounds, the first of which may have begun just
	// before its demotion. The old master lets go within one.
	HoldOff time.Duration

	misses       int       // consecutive rounds in which this box held the VIP but was not primary
	primarySince time.Time // since when this box is primary without a break; zero when it is not
}

// VIPState is what a VIP step looks at.
type VIPState struct {
	Primary bool // the View says primary and the local redis confirms it
	Demoted bool // the View says primary but the local redis answers as a replica
	Present bool // the address is on the interface
	Fenced  bool // this master is fenced
	Master  bool // the observation saw this box's redis as master
}

// Step decides one round.
func (v *VIP) Step(now time.Time, s VIPState) VIPAction {
	// One round without a quorum answer (a sentinel slower than the probe
	// timeout) must not bounce the VIP; a demotion or a fence drops it at once.
	if s.Present && !s.Primary && !s.Demoted && !s.Fenced && s.Master && v.misses < 1 {
		v.misses++
		return VIPNone
	}
	v.misses = 0
	if !s.Primary {
		v.primarySince = time.Time{}
	} else if v.primarySince.IsZero() {
		v.primarySince = now
	}
	switch {
	case s.Primary && !s.Present && now.Sub(v.primarySince) < v.HoldOff:
		// The old master drops the VIP within one of its rounds of being
		// demoted; taking it before that would put it on two boxes.
		return VIPNone
	case s.Primary && !s.Present:
		return VIPTake
	case !s.Primary && s.Present:
		return VIPRelease
	}
	return VIPNone
}
