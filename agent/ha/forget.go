package ha

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Membership. cluster.peers is the truth, edited on every box in any order.
// A box added needs nothing from here: its agent starts redis as the
// replica of the master the sentinels name, and the sentinels learn it, its
// redis from the master's INFO and its sentinel from its hello messages. A
// box removed (or replaced by one at another address) stays in every
// sentinel's memory, as a replica and as a sentinel that counts in its
// majority, until SENTINEL RESET makes that sentinel learn the group
// afresh. Forget decides when, and which sentinel.
//
// Only the master's agent steps it. There is one master a quorum names, so
// two boxes never reset at once, and the boxes converge whatever order
// their peers are edited in: until the master's box is edited it counts the
// removed box as a member and forgets nothing; once it is, it forgets what
// its peers no longer hold. A box whose peers are still the old ones
// changes nothing in the sentinels' memory, but a sentinel restarted there
// loads the removed box again (sentinel.conf keeps only its own peers), and
// the master forgets it again.
//
// What is forgotten is only what would not come back at once: a replica
// not in the peers whose link to the master is gone, a sentinel not in the
// peers and down, or one whose address Sentinel stopped trusting (port 0:
// another sentinel announced it, as a box re-imaged at the same address
// with a new id does). A removed box still running would be learnt again
// the next second; it is reported instead (Forgetting.Alive). A box powered
// off goes without a word: its master lists it until repl-timeout (60 s),
// and every sentinel reset would learn it again from the master's INFO. A
// removed replica that has not acknowledged for DeadAfter is gone, and its
// link is dropped (Forgetting.Drop) unless a member shares its host, which
// the master cannot tell apart from it.
//
// When: one sentinel at a time (redis-doc sentinel.md), only while a quorum
// of sentinels, and a majority, names this box and none runs a failover,
// and only once every sentinel that answers knows the others that answer
// and every replica connected to the master: a sentinel just reset has
// learnt the group again before the next is reset. That replaces the
// documented 30 s between resets with the condition the 30 s waits for; a
// sentinel that cannot learn a peer (a cut between two boxes) holds the
// next reset for Settle at most.

// MembersView is the group as the master's agent sees it for Forget.
type MembersView struct {
	Self      wire.Addr   // this box's redis
	Master    bool        // ROLE says master
	Peers     []wire.Addr // cluster.peers
	Sentinels []wire.Addr // the peers' sentinels
	Quorum    int
	Links     []wire.Link // the replicas this master lists (INFO replication)
	Known     []Known     // one per sentinel asked
}

// Known is one sentinel's answer: what it remembers of the group.
type Known struct {
	Sentinel wire.Addr
	State    wire.SentinelState // with its Replicas
	Err      error              // no answer: it counts for nothing
}

// Forgetting is one step of Forget.
type Forgetting struct {
	Reset wire.Addr // the sentinel to reset now; zero: none
	Wait  string    // why not now, while something is to be forgotten
	// Stale lists what the sentinels remember of boxes that are no longer
	// members ("replica 10.0.0.13:6379 on sentinel 10.0.0.11:26379").
	Stale []string
	// Alive lists what is not in the peers yet answers: a removed box still
	// running (stop its agent) or an added one this box's peers lack yet.
	Alive []string
	// Drop lists removed replicas whose dead links the master still holds:
	// close them now, before any reset.
	Drop []wire.Addr
}

// Forget paces the resets; its zero value with Gap and Settle set is ready.
type Forget struct {
	Gap       time.Duration // at least this long between two resets
	Settle    time.Duration // at most this long waiting for sentinels to learn the group
	DeadAfter time.Duration // a replica silent this long has gone

	last     time.Time // the last reset
	learning time.Time // since when some sentinel has not known the whole group
}

// Step decides whether a sentinel is reset now. A reset it returns counts
// as done: the next one waits Gap from now.
func (f *Forget) Step(now time.Time, v MembersView) Forgetting {
	var out Forgetting
	var connected []wire.Addr // links that are alive
	var drop []wire.Addr
	for _, l := range v.Links {
		if time.Duration(l.Lag)*time.Second <= f.DeadAfter {
			connected = append(connected, l.Addr)
			continue
		}
		shared := slices.ContainsFunc(v.Peers, func(p wire.Addr) bool { return p.Host == l.Addr.Host })
		if !slices.Contains(v.Peers, l.Addr) && !shared {
			drop = append(drop, l.Addr)
		}
	}
	var answered []Known
	stale := map[wire.Addr]bool{} // sentinels that remember something to forget
	for _, k := range v.Known {
		if k.Err != nil {
			continue
		}
		answered = append(answered, k)
		for _, r := range k.State.Replicas {
			switch {
			case slices.Contains(v.Peers, r.Addr):
			case slices.Contains(connected, r.Addr):
				out.Alive = appendNew(out.Alive, "replica "+r.Addr.String())
			default:
				stale[k.Sentinel] = true
				out.Stale = append(out.Stale, fmt.Sprintf("replica %s on sentinel %s", r.Addr, k.Sentinel))
			}
		}
		for _, p := range k.State.Peers {
			switch {
			case slices.Contains(v.Sentinels, p.Addr):
			case p.Addr.Port != 0 && !p.Down:
				out.Alive = appendNew(out.Alive, "sentinel "+p.Addr.String())
			default:
				stale[k.Sentinel] = true
				out.Stale = append(out.Stale, fmt.Sprintf("sentinel %s on sentinel %s", p.Addr, k.Sentinel))
			}
		}
	}
	if len(out.Stale) == 0 && len(drop) == 0 {
		f.learning = time.Time{}
		return out
	}
	if !v.Master {
		out.Wait = "this box is not the master"
		return out
	}
	agree := 0
	for _, k := range answered {
		switch {
		case k.State.Master != v.Self:
			out.Wait = fmt.Sprintf("sentinel %s names %s as master", k.Sentinel, k.State.Master)
			return out
		case k.State.InProgress || k.State.ODown:
			out.Wait = fmt.Sprintf("sentinel %s is failing the master over", k.Sentinel)
			return out
		}
		agree++
	}
	if need := max(v.Quorum, len(v.Sentinels)/2+1); agree < need {
		out.Wait = fmt.Sprintf("%d sentinels answer naming this master; a reset needs %d (the quorum and a majority)", agree, need)
		return out
	}
	out.Drop = drop
	if len(out.Stale) == 0 {
		return out
	}
	// A removed replica still linked may be a box powered off moments ago:
	// until its link is known dead, every reset would learn it again.
	for _, a := range out.Alive {
		if strings.HasPrefix(a, "replica ") {
			out.Wait = a + ", not in cluster.peers, is still linked to the master"
			return out
		}
	}
	if why := learning(answered, connected); why != "" {
		if f.learning.IsZero() {
			f.learning = now
		}
		if now.Sub(f.learning) < f.Settle {
			out.Wait = why
			return out
		}
	} else {
		f.learning = time.Time{}
	}
	if !f.last.IsZero() && now.Sub(f.last) < f.Gap {
		out.Wait = fmt.Sprintf("the last reset was %s ago; resets are %s apart", now.Sub(f.last).Round(time.Millisecond), f.Gap)
		return out
	}
	for _, k := range answered {
		if stale[k.Sentinel] {
			out.Reset = k.Sentinel
			f.last, f.learning = now, time.Time{}
			return out
		}
	}
	return out
}

// learning says which sentinel does not know the whole group yet: every
// other sentinel that answered, every replica connected to the master; ""
// when each does.
func learning(answered []Known, connected []wire.Addr) string {
	for _, k := range answered {
		for _, o := range answered {
			if o.Sentinel != k.Sentinel && !slices.ContainsFunc(k.State.Peers, func(p wire.PeerState) bool { return p.Addr == o.Sentinel }) {
				return fmt.Sprintf("sentinel %s does not know sentinel %s yet", k.Sentinel, o.Sentinel)
			}
		}
		for _, c := range connected {
			if !slices.ContainsFunc(k.State.Replicas, func(p wire.PeerState) bool { return p.Addr == c }) {
				return fmt.Sprintf("sentinel %s does not know replica %s yet", k.Sentinel, c)
			}
		}
	}
	return ""
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
