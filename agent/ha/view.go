package ha

import (
	"fmt"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// StaleAfter is how old an observation may be before this box stops
// vouching for it (observations come every second).
const StaleAfter = 3 * time.Second

// Snapshot is what one observation of the local redis and sentinel saw.
type Snapshot struct {
	Single  bool // no peers
	Self    wire.Addr
	RedisUp bool      // ROLE answered
	Role    wire.Role // valid when RedisUp
	Gated   bool      // the restart gate holds redis down
	Fenced  bool      // refusing writes: no majority in sight (the agent's decision)
	// FenceRead: redis answered CONFIG GET min-replicas-to-write, and
	// FenceSet is whether that refuses every write (redis's own fence).
	FenceRead, FenceSet bool
	Named               wire.Addr // the master the local sentinel names
	Usable              int       // sentinels the local sentinel counts as reachable (CKQUORUM)
	Peers               int
	InSync              int // master: replicas that acknowledged the previous observation's offset
	ReloadErr           string
	// RedisErr is why redis last exited when nobody asked it to, in its own
	// words where it gave some ("Can't handle RDB format version 12"); "" once
	// it runs again.
	RedisErr string
	// Paused: the group is in maintenance; PausedUntil is when that ends
	// by itself (zero: at resume).
	Paused      bool
	PausedUntil time.Time
	// Pending says why redis should restart ("" when nothing asks): its
	// binary was replaced on disk, or a restart-only setting changed.
	Pending string
	Drained bool // this box is never promoted (drain)
}

// IsMaster: redis answers, as master.
func (s Snapshot) IsMaster() bool { return s.RedisUp && s.Role.Kind == "master" }

// Quorum is what the sentinels said, asked directly in one round.
type Quorum struct {
	Reachable int       // sentinels that answered
	Master    wire.Addr // named by a quorum of them; zero when none is
	At        time.Time // when they were asked
}

// View is one consistent read of what this box knows: the latest
// observation, taken At, and the latest quorum round.
type View struct {
	S   Snapshot
	Q   Quorum
	Lag int64 // replica: bytes behind its master; -1 unknown
	At  time.Time
}

// Fresh: the observation is recent enough to vouch for.
func (v View) Fresh(now time.Time) bool { return now.Sub(v.At) < StaleAfter }

// IsPrimary: this box is the master a quorum of sentinels names, and it is
// not fenced (single box: it is the master).
func (v View) IsPrimary(now time.Time) bool {
	if !v.Fresh(now) || !v.S.IsMaster() || v.S.Fenced {
		return false
	}
	if v.S.Single {
		return true
	}
	// Both the quorum round and our own sentinel must name this box: each can
	// lag a switch by up to a round, and either one seeing it is enough to stop
	// vouching for a master being demoted.
	return v.Q.Master == v.S.Self && v.S.Named == v.S.Self && now.Sub(v.Q.At) < StaleAfter
}

// IsReplica: a replica with its link up; with maxLag ≥ 0 also a known lag
// within it (an unknown lag is not vouched for).
func (v View) IsReplica(now time.Time, maxLag int64) bool {
	return v.Fresh(now) && v.S.RedisUp && v.S.Role.Kind == "slave" && v.S.Role.Link == "connected" &&
		(maxLag < 0 || (v.Lag >= 0 && v.Lag <= maxLag))
}

// Healthy: redis answers and the gate does not hold it.
func (v View) Healthy(now time.Time) bool { return v.Fresh(now) && v.S.RedisUp && !v.S.Gated }

// StatusLine is the one honest line of STATUS=, e.g.
// "master · 2/2 replicas in sync · sentinels 3/3".
func StatusLine(s Snapshot) string {
	var parts []string
	switch {
	case s.Gated && s.RedisErr != "":
		parts = append(parts, "redis down ("+s.RedisErr+"): restart gate holds it until the sentinels name a new master")
	case s.Gated:
		parts = append(parts, "redis down: restart gate holds it until the sentinels name a new master")
	case !s.RedisUp && s.RedisErr != "":
		parts = append(parts, "redis down: "+s.RedisErr)
	case !s.RedisUp:
		parts = append(parts, "redis down")
	case s.Role.Kind == "master" && s.Fenced:
		parts = append(parts, "master · FENCED: no majority of sentinels in sight, refusing writes")
	case s.Role.Kind == "master" && s.Single:
		parts = append(parts, "master · single box")
	case s.Role.Kind == "master":
		parts = append(parts, fmt.Sprintf("master · %d/%d replicas in sync", s.InSync, s.Peers-1))
	default:
		link := "link up"
		if s.Role.Link != "connected" {
			link = "link " + s.Role.Link
		}
		parts = append(parts, fmt.Sprintf("replica of %s · %s", s.Role.Master, link))
	}
	if !s.Single {
		parts = append(parts, fmt.Sprintf("sentinels %d/%d", s.Usable, s.Peers))
		// Say so when redis and the sentinels disagree (a failover in
		// flight, or a demoted master Sentinel has not reconfigured yet).
		want := s.Role.Master
		if s.Role.Kind == "master" {
			want = s.Self
		}
		if s.RedisUp && !s.Named.IsZero() && s.Named != want {
			parts = append(parts, "sentinels name "+s.Named.String())
		}
	}
	if s.Paused {
		p := "PAUSED: no automatic failover"
		if !s.PausedUntil.IsZero() {
			p += " until " + s.PausedUntil.UTC().Format(time.RFC3339)
		}
		parts = append(parts, p)
	}
	if s.Drained {
		parts = append(parts, "DRAINED: never promoted until undrained")
	}
	if s.Pending != "" {
		parts = append(parts, "restart pending: "+s.Pending)
	}
	if s.ReloadErr != "" {
		parts = append(parts, "reload refused: "+s.ReloadErr)
	}
	return strings.Join(parts, " · ")
}
