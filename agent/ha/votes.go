package ha

import (
	"fmt"
	"sort"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Named lists the masters the answers name; a sentinel that failed to
// answer, or knows no master, names none.
func Named(answers []wire.Answer) []wire.Addr {
	out := make([]wire.Addr, 0, len(answers))
	for _, a := range answers {
		if a.Err == nil && !a.Master.IsZero() {
			out = append(out, a.Master)
		}
	}
	return out
}

// Reachable counts the sentinels that answered, knowing a master or not.
func Reachable(answers []wire.Answer) int {
	n := 0
	for _, a := range answers {
		if a.Reachable() {
			n++
		}
	}
	return n
}

// MostNamed returns the master named most often and its votes; ties go to
// the lowest address as it prints, so that every agent breaks them the same
// way. A zero value is no vote. K is a wire.Addr, or the "host:port" that
// status reads from each box.
func MostNamed[K comparable](named []K) (K, int, bool) {
	var zero K
	votes := map[K]int{}
	for _, m := range named {
		if m != zero {
			votes[m]++
		}
	}
	if len(votes) == 0 {
		return zero, 0, false
	}
	ms := make([]K, 0, len(votes))
	for m := range votes {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool {
		if votes[ms[i]] != votes[ms[j]] {
			return votes[ms[i]] > votes[ms[j]]
		}
		return fmt.Sprint(ms[i]) < fmt.Sprint(ms[j])
	})
	return ms[0], votes[ms[0]], true
}

// Agreed returns the master named by at least quorum (at least 1) of the
// answers. It refuses when two masters both reach quorum (possible only
// with a quorum below a majority): then there is nothing to agree on.
func Agreed(answers []wire.Answer, quorum int) (wire.Addr, bool) {
	quorum = max(quorum, 1)
	votes := map[wire.Addr]int{}
	for _, m := range Named(answers) {
		votes[m]++
	}
	var won wire.Addr
	n := 0
	for m, v := range votes {
		if v >= quorum {
			won = m
			n++
		}
	}
	if n != 1 {
		return wire.Addr{}, false
	}
	return won, true
}

// Unanimous reports whether every sentinel that answered names m, and at
// least quorum of them did. A switchover is published by one sentinel and
// reaches the others through their hello messages (every two seconds): until
// then the old master is still the most named, and a box that asked them
// just then would start as master beside the new one.
func Unanimous(answers []wire.Answer, m wire.Addr, quorum int) bool {
	n := 0
	for _, a := range answers {
		switch {
		case !a.Reachable():
		case a.Err != nil || a.Master != m:
			return false
		default:
			n++
		}
	}
	return n >= max(quorum, 1)
}
