package ha

import (
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// t0 is the tests' clock: every case counts from it.
var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

var (
	asMaster  = wire.Role{Kind: "master"}
	replicaOf = func(m wire.Addr, link string) wire.Role { return wire.Role{Kind: "slave", Master: m, Link: link} }
	masterS   = Snapshot{Self: a, Peers: 3, RedisUp: true, Role: asMaster, Named: a, Usable: 3}
	replicaS  = Snapshot{Self: a, Peers: 3, RedisUp: true, Role: replicaOf(b, "connected"), Named: b, Usable: 3}
)

func TestStatusLine(t *testing.T) {
	tests := []struct {
		name string
		s    Snapshot
		want string
	}{
		{"single box", Snapshot{Single: true, Self: a, RedisUp: true, Role: asMaster}, "master · single box"},
		{"healthy master", Snapshot{Self: a, RedisUp: true, Role: asMaster, Named: a, Usable: 3, Peers: 3, InSync: 2},
			"master · 2/2 replicas in sync · sentinels 3/3"},
		{"fenced master", Snapshot{Self: a, RedisUp: true, Role: asMaster, Fenced: true, Named: a, Usable: 1, Peers: 3},
			"master · FENCED: no majority of sentinels in sight, refusing writes · sentinels 1/3"},
		{"replica", replicaS, "replica of 10.0.0.12:6379 · link up · sentinels 3/3"},
		{"replica syncing", Snapshot{Self: a, RedisUp: true, Role: replicaOf(b, "sync"), Named: b, Usable: 2, Peers: 3},
			"replica of 10.0.0.12:6379 · link sync · sentinels 2/3"},
		{"demoted master not yet reconfigured", Snapshot{Self: a, RedisUp: true, Role: asMaster, Named: b, Usable: 3, Peers: 3},
			"master · 0/2 replicas in sync · sentinels 3/3 · sentinels name 10.0.0.12:6379"},
		{"gated", Snapshot{Self: a, Gated: true, Usable: 3, Peers: 3}, "redis down: restart gate holds it until the sentinels name a new master · sentinels 3/3"},
		{"down", Snapshot{Self: a, Usable: 3, Peers: 3}, "redis down · sentinels 3/3"},
		{"down, in its own words", Snapshot{Self: a, Usable: 3, Peers: 3, RedisErr: "Can't handle RDB format version 12"},
			"redis down: Can't handle RDB format version 12 · sentinels 3/3"},
		{"gated, in its own words", Snapshot{Self: a, Gated: true, Usable: 3, Peers: 3, RedisErr: "Bad file format reading the append only file"},
			"redis down (Bad file format reading the append only file): restart gate holds it until the sentinels name a new master · sentinels 3/3"},
		{"paused", Snapshot{Self: a, RedisUp: true, Role: replicaOf(b, "connected"), Named: b, Usable: 3, Peers: 3, Paused: true},
			"replica of 10.0.0.12:6379 · link up · sentinels 3/3 · PAUSED: no automatic failover"},
		{"paused for a while", Snapshot{Self: a, RedisUp: true, Role: asMaster, Named: a, Usable: 3, Peers: 3, InSync: 2, Paused: true,
			PausedUntil: time.Date(2026, 12, 1, 12, 30, 0, 0, time.UTC)},
			"master · 2/2 replicas in sync · sentinels 3/3 · PAUSED: no automatic failover until 2026-12-01T12:30:00Z"},
		{"reload refused", Snapshot{Single: true, Self: a, RedisUp: true, Role: asMaster, ReloadErr: "/etc/redis-ha/conf.d/50.conf:2: redis.prot: unknown key"},
			"master · single box · reload refused: /etc/redis-ha/conf.d/50.conf:2: redis.prot: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StatusLine(tt.s); got != tt.want {
				t.Errorf("StatusLine:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestViewVouches(t *testing.T) {
	fenced := masterS
	fenced.Fenced = true
	namesOther := masterS
	namesOther.Named = b
	single := Snapshot{Single: true, Self: a, RedisUp: true, Role: asMaster}
	agreed := Quorum{Master: a, At: t0}
	tests := []struct {
		name    string
		v       View
		now     time.Time
		primary bool
		replica bool // no lag bound
		healthy bool
	}{
		{"agreed master", View{S: masterS, Q: agreed, At: t0}, t0, true, false, true},
		{"single box", View{S: single, At: t0}, t0, true, false, true},
		{"no quorum agreement", View{S: masterS, Q: Quorum{At: t0}, At: t0}, t0, false, false, true},
		{"the quorum names another", View{S: masterS, Q: Quorum{Master: b, At: t0}, At: t0}, t0, false, false, true},
		{"our sentinel names another", View{S: namesOther, Q: agreed, At: t0}, t0, false, false, true},
		{"fenced", View{S: fenced, Q: agreed, At: t0}, t0, false, false, true},
		{"stale observation", View{S: masterS, Q: agreed, At: t0}, t0.Add(StaleAfter), false, false, false},
		{"stale quorum round", View{S: masterS, Q: agreed, At: t0.Add(StaleAfter)}, t0.Add(StaleAfter), false, false, true},
		{"replica", View{S: replicaS, Q: Quorum{Master: b, At: t0}, At: t0}, t0, false, true, true},
		{"replica syncing", View{S: Snapshot{Self: a, RedisUp: true, Role: replicaOf(b, "sync")}, At: t0}, t0, false, false, true},
		{"redis down", View{S: Snapshot{Self: a, Peers: 3}, At: t0}, t0, false, false, false},
		{"gated", View{S: Snapshot{Self: a, Peers: 3, Gated: true}, At: t0}, t0, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.v.IsPrimary(tt.now); got != tt.primary {
				t.Errorf("IsPrimary = %v, want %v", got, tt.primary)
			}
			if got := tt.v.IsReplica(tt.now, -1); got != tt.replica {
				t.Errorf("IsReplica = %v, want %v", got, tt.replica)
			}
			if got := tt.v.Healthy(tt.now); got != tt.healthy {
				t.Errorf("Healthy = %v, want %v", got, tt.healthy)
			}
		})
	}
}

func TestViewReplicaLag(t *testing.T) {
	tests := []struct {
		lag, bound int64
		want       bool
	}{
		{100, 1024, true}, {4096, 1024, false}, {-1, 1024, false}, {-1, -1, true}, {0, 0, true},
	}
	for _, tt := range tests {
		v := View{S: replicaS, Lag: tt.lag, At: t0}
		if got := v.IsReplica(t0, tt.bound); got != tt.want {
			t.Errorf("lag %d, bound %d: IsReplica = %v, want %v", tt.lag, tt.bound, got, tt.want)
		}
	}
}
