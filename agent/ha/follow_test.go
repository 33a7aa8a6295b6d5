package ha

import (
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

func TestFollowNamedMaster(t *testing.T) {
	following := func(m wire.Addr) Snapshot {
		return Snapshot{Self: a, Peers: 3, RedisUp: true, Role: replicaOf(m, "connected")}
	}
	type round struct {
		at   int // ms since t0
		v    View
		want wire.Addr // zero: not yet
	}
	wrong := func(at int) View {
		return View{S: following(c), Q: Quorum{Master: b, At: t0.Add(ms(at))}, At: t0.Add(ms(at))}
	}
	tests := []struct {
		name   string
		rounds []round
	}{
		{"following the named master: nothing to do", []round{
			{0, View{S: following(b), Q: Quorum{Master: b, At: t0}, At: t0}, wire.Addr{}},
		}},
		{"following another: re-pointed after a second", []round{
			{0, wrong(0), wire.Addr{}}, {500, wrong(500), wire.Addr{}}, {1000, wrong(1000), b},
		}},
		{"Sentinel fixes it in time: nothing", []round{
			{0, wrong(0), wire.Addr{}}, {500, View{S: following(b), Q: Quorum{Master: b, At: t0.Add(ms(500))}, At: t0.Add(ms(500))}, wire.Addr{}},
			{1000, wrong(1000), wire.Addr{}}, // a fresh wrong start: the second starts again
		}},
		{"no quorum agreement: nothing", []round{
			{0, View{S: following(c), At: t0}, wire.Addr{}}, {2000, View{S: following(c), At: t0.Add(ms(2000))}, wire.Addr{}},
		}},
		{"the quorum names this box: Sentinel promotes, not us", []round{
			{0, View{S: following(c), Q: Quorum{Master: a, At: t0}, At: t0}, wire.Addr{}},
			{2000, View{S: following(c), Q: Quorum{Master: a, At: t0.Add(ms(2000))}, At: t0.Add(ms(2000))}, wire.Addr{}},
		}},
		{"a master is never re-pointed", []round{
			{0, View{S: masterS, Q: Quorum{Master: b, At: t0}, At: t0}, wire.Addr{}},
			{2000, View{S: masterS, Q: Quorum{Master: b, At: t0.Add(ms(2000))}, At: t0.Add(ms(2000))}, wire.Addr{}},
		}},
		{"a stale quorum round proves nothing", []round{
			{0, wrong(0), wire.Addr{}},
			{5000, View{S: following(c), Q: Quorum{Master: b, At: t0}, At: t0.Add(ms(5000))}, wire.Addr{}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Follow{After: ms(1000)}
			for i, r := range tt.rounds {
				got, ok := f.Step(t0.Add(ms(r.at)), r.v)
				if got != r.want || ok != !r.want.IsZero() {
					t.Fatalf("round %d (at %d ms) = %v, %v; want %v", i, r.at, got, ok, r.want)
				}
			}
		})
	}
}
