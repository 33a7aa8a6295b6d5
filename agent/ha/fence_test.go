package ha

import (
	"testing"
	"time"
)

// TestFenceTiming drives a Fence round by round, as the agent does with
// fence_after 500 ms and a round every 250 ms, and checks the action of
// each round.
func TestFenceTiming(t *testing.T) {
	type round struct {
		at        int  // ms since t0
		master    bool // this box is master
		fenced    bool // and fenced
		reachable int  // sentinels that answered the round asked at askedAt
		askedAt   int  // ms since t0; the previous round's question
		want      FenceAction
	}
	majority := func(at, asked int) round { return round{at: at, master: true, reachable: 3, askedAt: asked} }
	alone := func(at, asked int) round { return round{at: at, master: true, reachable: 1, askedAt: asked} }
	tests := []struct {
		name   string
		rounds []round
	}{
		{"a master that sees the majority never fences", []round{
			majority(0, 0), majority(250, 0), majority(500, 250), majority(750, 500), majority(1000, 750),
		}},
		{"isolated after the last answer: fenced fence_after after it", []round{
			majority(0, 0), majority(250, 0), majority(500, 250),
			{at: 750, master: true, reachable: 1, askedAt: 500, want: FenceUp}, // the question asked at 500 met the partition
		}},
		{"half a round of slack for a late timer", []round{
			majority(0, 0), alone(250, 0), {at: 625, master: true, reachable: 1, askedAt: 250, want: FenceUp},
		}},
		{"the clock starts when the box becomes master", []round{
			{at: 0, reachable: 1}, {at: 250, reachable: 1}, {at: 500, reachable: 1},
			alone(750, 500), alone(1000, 750),
			{at: 1125, master: true, reachable: 1, askedAt: 1000, want: FenceUp},
		}},
		{"an answer older than the last proof proves nothing: ask again", []round{
			majority(0, 0), {at: 250, master: true, reachable: 3, askedAt: -1000},
			{at: 375, master: true, reachable: 3, askedAt: -500, want: FenceCheck},
			{at: 400, master: true, reachable: 3, askedAt: 390}, // the check: a majority, now
		}},
		// Seen on the box bench: a round 600 ms late (the box busy, the
		// local redis frozen) fenced a master that every sentinel answered.
		{"late rounds: the majority answered, the question is old: check, not fence", []round{
			majority(0, 0), majority(250, 0),
			{at: 900, master: true, reachable: 3, askedAt: 250, want: FenceCheck},
			{at: 910, master: true, reachable: 3, askedAt: 900},
			majority(1160, 910),
		}},
		{"late rounds, and the check finds no majority: fence", []round{
			majority(0, 0), majority(250, 0),
			{at: 900, master: true, reachable: 3, askedAt: 250, want: FenceCheck},
			{at: 1150, master: true, reachable: 1, askedAt: 900, want: FenceUp},
		}},
		// After a slow unfence, the next round reads the answers to the
		// unfence's own round: old, but a majority's.
		{"just unfenced after a slow step: check, not fence again", []round{
			{at: 0, master: true, fenced: true, reachable: 3, askedAt: 0, want: FenceDown},
			{at: 1000, master: true, reachable: 3, askedAt: 0, want: FenceCheck},
			{at: 1010, master: true, reachable: 3, askedAt: 1005},
		}},
		{"fenced: unfence once a majority answers", []round{
			{at: 0, master: true, fenced: true, reachable: 1},
			{at: 250, master: true, fenced: true, reachable: 2, askedAt: 250, want: FenceDown},
		}},
		{"fenced and still alone: stay fenced", []round{
			{at: 0, master: true, fenced: true, reachable: 1},
			{at: 250, master: true, fenced: true, reachable: 1, askedAt: 250},
		}},
		{"fenced, then restarted as a replica: forget the fence", []round{
			{at: 0, master: true, fenced: true, reachable: 1},
			{at: 250, fenced: true, reachable: 1, want: FenceClear},
		}},
		{"a replica never fences", []round{
			{at: 0, reachable: 0}, {at: 5000, reachable: 0}, {at: 60000, reachable: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Fence{After: ms(500), Every: ms(250)}
			for i, r := range tt.rounds {
				got := f.Step(t0.Add(ms(r.at)), r.master, r.fenced, Round{Reachable: r.reachable, Majority: 2, Asked: t0.Add(ms(r.askedAt))})
				if got != r.want {
					t.Fatalf("round %d (at %d ms) = %v, want %v", i, r.at, got, r.want)
				}
			}
		})
	}
}

// TestFenceWithinFenceAfter sweeps the moment the majority is lost over a
// round and checks the fence comes up no later than fence_after after the
// last round a majority answered, and never before it.
func TestFenceWithinFenceAfter(t *testing.T) {
	const after, every = 500 * time.Millisecond, 250 * time.Millisecond
	for lost := time.Duration(0); lost < every; lost += 10 * time.Millisecond {
		f := Fence{After: after, Every: every}
		var lastProof time.Time
		asked := t0
		f.Step(t0, true, false, Round{Reachable: 3, Majority: 2, Asked: t0})
		fencedAt := time.Time{}
		for now := t0.Add(every); now.Before(t0.Add(5 * time.Second)); now = now.Add(every) {
			reachable := 3
			if asked.Sub(t0) >= every+lost {
				reachable = 1 // the question sent at asked met a partition
			} else {
				lastProof = asked
			}
			if f.Step(now, true, false, Round{Reachable: reachable, Majority: 2, Asked: asked}) == FenceUp {
				fencedAt = now
				break
			}
			asked = now
		}
		if fencedAt.IsZero() {
			t.Fatalf("lost %v into a round: never fenced", lost)
		}
		if d := fencedAt.Sub(lastProof); d > after || d < after-every {
			t.Errorf("lost %v into a round: fenced %v after the last proof, want within (%v, %v]", lost, d, after-every, after)
		}
	}
}

func TestFenceDrift(t *testing.T) {
	tests := []struct {
		name string
		s    Snapshot
		want bool
	}{
		{"agreed, unfenced", Snapshot{RedisUp: true, FenceRead: true}, false},
		{"agreed, fenced", Snapshot{RedisUp: true, FenceRead: true, Fenced: true, FenceSet: true}, false},
		// A fence sent to a frozen master timed out and ran when it woke.
		{"redis fenced behind the agent's back", Snapshot{RedisUp: true, FenceRead: true, FenceSet: true}, true},
		{"the agent's fence lost", Snapshot{RedisUp: true, FenceRead: true, Fenced: true}, true},
		{"not read back: trust nothing", Snapshot{RedisUp: true, FenceSet: true}, false},
		{"redis down", Snapshot{FenceRead: true, FenceSet: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FenceDrift(tt.s); got != tt.want {
				t.Errorf("FenceDrift(%+v) = %v, want %v", tt.s, got, tt.want)
			}
		})
	}
}
