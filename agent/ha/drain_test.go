package ha

import (
	"strings"
	"testing"
)

func TestDrain(t *testing.T) {
	tests := []struct {
		name string
		v    DrainView
		want string // in the refusal; "" = allowed
	}{
		{"a replica of a healthy three-box group", DrainView{Peers: 3, Promotable: 1, OtherSentinels: 2, Quorum: 2}, ""},
		{"the master of a healthy three-box group", DrainView{Peers: 3, SelfMaster: true, Promotable: 2, OtherSentinels: 2, Quorum: 2}, ""},
		{"the master when the other replica is drained", DrainView{Peers: 3, SelfMaster: true, Promotable: 1, OtherSentinels: 2, Quorum: 2},
			"keep 0 promotable replicas"},
		{"a second replica of three", DrainView{Peers: 3, Promotable: 0, OtherSentinels: 2, Quorum: 2}, "keep 0 promotable replicas"},
		{"the master with no replica up", DrainView{Peers: 3, SelfMaster: true, Promotable: 0, OtherSentinels: 2, Quorum: 2},
			"no promotable replica"},
		{"a box down already: the sentinels left are no majority", DrainView{Peers: 3, Promotable: 1, OtherSentinels: 1, Quorum: 2},
			"1 sentinels answer: a failover needs 2"},
		{"five boxes, quorum 3, two sentinels down", DrainView{Peers: 5, Promotable: 2, OtherSentinels: 2, Quorum: 3}, "needs 3"},
		{"five boxes, one drained already", DrainView{Peers: 5, SelfMaster: true, Promotable: 3, OtherSentinels: 4, Quorum: 3}, ""},
		{"single box", DrainView{Peers: 1}, "single-box mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Drain(tt.v)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Drain = %v, want a refusal saying %q", err, tt.want)
			}
		})
	}
}
