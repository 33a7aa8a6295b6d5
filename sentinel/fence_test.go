package sentinel

import "testing"

func TestFenced(t *testing.T) {
	tests := []struct {
		min, peers int
		want       bool
	}{
		{0, 0, false}, // single box: no fence
		{1, 3, false}, // the generated majority bound
		{2, 3, false}, // both replicas required: strict, not fenced
		{3, 3, true},  // the fence: more replicas than exist
		{5, 5, true},
		{2, 5, false},
	}
	for _, tt := range tests {
		if got := fenced(tt.min, tt.peers); got != tt.want {
			t.Errorf("fenced(%d, %d) = %v, want %v", tt.min, tt.peers, got, tt.want)
		}
	}
	// The fence and the healthy value must be on either side of the line.
	for peers := 2; peers <= 9; peers++ {
		if fenced(MinReplicas(peers), peers) || !fenced(peers, peers) {
			t.Errorf("%d peers: MinReplicas fenced or the fence not", peers)
		}
	}
}
