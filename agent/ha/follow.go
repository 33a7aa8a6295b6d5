package ha

import (
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Follow decides when a replica is re-pointed at the master a quorum of
// sentinels names. Sentinel reconfigures only the replicas it knew of when
// it failed over; one it had not yet learnt of (it learns them from the
// master's INFO every 10 s) would otherwise follow the dead master, and
// later chain behind it, forever.
type Follow struct {
	// After leaves Sentinel the first chance: it reconfigures the replicas it
	// knows within about a second.
	After time.Duration

	since time.Time // since when this replica follows the wrong server; zero when it does not
}

// Step returns the master to re-point this replica at, if it is time.
func (f *Follow) Step(now time.Time, v View) (wire.Addr, bool) {
	s, q := v.S, v.Q
	if !v.Fresh(now) || !s.RedisUp || s.Role.Kind != "slave" || q.Master.IsZero() ||
		q.Master == s.Self || q.Master == s.Role.Master || now.Sub(q.At) > StaleAfter {
		f.since = time.Time{}
		return wire.Addr{}, false
	}
	if f.since.IsZero() {
		f.since = now
		return wire.Addr{}, false
	}
	if now.Sub(f.since) < f.After {
		return wire.Addr{}, false
	}
	f.since = time.Time{}
	return q.Master, true
}
