package ha

import "testing"

// TestVIPHandover: a demoted master lets go at once, a new one waits two
// rounds, one round without a quorum answer does not bounce the address.
func TestVIPHandover(t *testing.T) {
	type round struct {
		at   int // ms since t0
		s    VIPState
		want VIPAction
	}
	primary := VIPState{Primary: true, Master: true}
	holding := VIPState{Primary: true, Master: true, Present: true}
	tests := []struct {
		name   string
		rounds []round
	}{
		{"a new primary waits two rounds", []round{
			{0, primary, VIPNone}, {250, primary, VIPNone}, {500, primary, VIPTake},
		}},
		{"a break in being primary restarts the wait", []round{
			{0, primary, VIPNone}, {250, VIPState{Master: true}, VIPNone}, {500, primary, VIPNone},
			{750, primary, VIPNone}, {1000, primary, VIPTake},
		}},
		{"a primary holding it keeps it", []round{{0, holding, VIPNone}, {250, holding, VIPNone}}},
		{"demoted: let go at once", []round{
			{0, holding, VIPNone}, {250, VIPState{Demoted: true, Present: true, Master: true}, VIPRelease},
		}},
		{"fenced: let go at once", []round{
			{0, holding, VIPNone}, {250, VIPState{Present: true, Fenced: true, Master: true}, VIPRelease},
		}},
		{"one round without a quorum answer keeps it", []round{
			{0, holding, VIPNone}, {250, VIPState{Present: true, Master: true}, VIPNone}, {500, holding, VIPNone},
		}},
		{"two such rounds let go", []round{
			{0, holding, VIPNone}, {250, VIPState{Present: true, Master: true}, VIPNone},
			{500, VIPState{Present: true, Master: true}, VIPRelease},
		}},
		{"redis down: let go at once", []round{{0, holding, VIPNone}, {250, VIPState{Present: true}, VIPRelease}}},
		{"left behind by a crash on a replica: removed", []round{{0, VIPState{Present: true}, VIPRelease}}},
		{"deleted by someone: back, the primary having waited its two rounds", []round{
			{0, holding, VIPNone}, {250, primary, VIPNone}, {500, primary, VIPTake},
		}},
		{"nothing to do on a replica", []round{{0, VIPState{}, VIPNone}, {250, VIPState{}, VIPNone}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := VIP{HoldOff: ms(500)}
			for i, r := range tt.rounds {
				if got := v.Step(t0.Add(ms(r.at)), r.s); got != r.want {
					t.Fatalf("round %d (at %d ms, %+v) = %v, want %v", i, r.at, r.s, got, r.want)
				}
			}
		})
	}
}
