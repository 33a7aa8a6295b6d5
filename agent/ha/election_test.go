package ha

import (
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

func TestRetryElection(t *testing.T) {
	old := wire.Addr{Host: "10.0.0.1", Port: 6379}
	moved := wire.Addr{Host: "10.0.0.2", Port: 6379}
	up := func(ids ...string) []wire.PeerState {
		var out []wire.PeerState
		for _, id := range ids {
			out = append(out, wire.PeerState{RunID: id})
		}
		return out
	}
	state := func(id string, peers []wire.PeerState) wire.SentinelState {
		return wire.SentinelState{MyID: id, Master: old, ODown: true, Peers: peers}
	}
	tests := []struct {
		name   string
		local  wire.SentinelState
		others []wire.SentinelState
		want   Retry
	}{
		{"split vote of three, lowest id: fail over now", state("a", up("b", "c")),
			[]wire.SentinelState{state("b", up("a", "c")), state("c", up("a", "b"))}, RetryNow},
		{"split vote, not the lowest id: the lowest does it", state("b", up("a", "c")),
			[]wire.SentinelState{state("a", up("b", "c"))}, RetryNever},
		// A power-off: the lowest id is on the dead box, seen down.
		{"the lowest id is down: the lowest of those up", state("b", []wire.PeerState{{RunID: "a", Down: true}, {RunID: "c"}}),
			[]wire.SentinelState{state("c", []wire.PeerState{{RunID: "a", Down: true}, {RunID: "b"}})}, RetryNow},
		{"master back up: nothing to do", wire.SentinelState{MyID: "a", Master: old, Peers: up("b")}, nil, RetryNever},
		{"another sentinel still runs a failover: wait", state("a", up("b", "c")),
			[]wire.SentinelState{{MyID: "b", Master: old, ODown: true, InProgress: true}}, RetryWait},
		{"the local sentinel still runs one: wait", wire.SentinelState{MyID: "a", Master: old, ODown: true, InProgress: true}, nil, RetryWait},
		{"another sentinel names a new master: the group moved on", state("a", up("b")),
			[]wire.SentinelState{{MyID: "b", Master: moved}}, RetryNever},
		{"no other sentinel answered: the local one alone", state("a", up("b", "c")), nil, RetryNow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RetryElection(tt.local, tt.others); got != tt.want {
				t.Errorf("RetryElection = %v, want %v", got, tt.want)
			}
		})
	}
}
