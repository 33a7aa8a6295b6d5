package ha

import (
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

func TestChooseMaster(t *testing.T) {
	tests := []struct {
		name string
		a    Authority
		want Decision
	}{
		{"single box", Authority{Single: true, Bootstrap: b}, Decision{a, "single-box mode"}},
		{"the sentinels name a master", Authority{Answers: []wire.Answer{names(b), names(b), failed}, Remembered: &c, Bootstrap: a},
			Decision{b, "named by 2/3 sentinels"}},
		{"one sentinel is enough to know", Authority{Answers: []wire.Answer{names(c), failed, failed}, Bootstrap: a},
			Decision{c, "named by 1/3 sentinels"}},
		{"no sentinel reachable: our sentinel remembers", Authority{Answers: []wire.Answer{failed, failed, failed}, Remembered: &c, Bootstrap: a},
			Decision{c, "no sentinel reachable; our sentinel's last known master"}},
		{"sentinels up but knowing no master: remembered first", Authority{Answers: []wire.Answer{noMaster, noMaster, noMaster}, Remembered: &c, Bootstrap: a},
			Decision{c, "no sentinel reachable; our sentinel's last known master"}},
		{"nothing anywhere: the group's first start", Authority{Answers: []wire.Answer{noMaster, failed, failed}, Bootstrap: b},
			Decision{b, "first start of the group: bootstrap_primary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ChooseMaster(a, tt.a); got != tt.want {
				t.Errorf("ChooseMaster = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCrashed(t *testing.T) {
	tests := []struct {
		name                                     string
		first, requested, marker, stoppedCleanly bool
		want                                     bool
	}{
		{"first start, clean last stop", true, false, false, false, false},
		{"first start after a crash or power loss", true, false, true, false, true},
		{"first start: the killed agent's redis lived and stopped cleanly", true, false, true, true, false},
		{"restart asked for (reload, shutdown)", false, true, true, false, false},
		{"redis exited on its own", false, false, true, false, true},
	}
	for _, tt := range tests {
		if got := Crashed(tt.first, tt.requested, tt.marker, tt.stoppedCleanly); got != tt.want {
			t.Errorf("%s: Crashed = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestRestartGate: the order of authority meets the crash marker.
func TestRestartGate(t *testing.T) {
	type step struct {
		at       int // ms since t0
		d        Decision
		crashed  bool
		single   bool
		paused   bool
		replica  *wire.Addr // nil: master
		hold     bool
		failover bool
	}
	namesSelf := Decision{a, "named by 3/3 sentinels"}
	namesB := Decision{b, "named by 2/3 sentinels"}
	tests := []struct {
		name  string
		steps []step
		why   string // of the last start
	}{
		{"a clean master starts as master", []step{{d: namesSelf}}, "named by 3/3 sentinels"},
		{"a replica starts as the named master's replica", []step{{d: namesB, replica: &b}}, "named by 2/3 sentinels"},
		{"a crashed replica restarts as a replica", []step{{d: namesB, crashed: true, replica: &b}}, "after a crash, named by 2/3 sentinels"},
		{"a crashed single box restarts with its data", []step{{d: Decision{a, "single-box mode"}, crashed: true, single: true}}, "single-box mode"},
		{"a crashed master is held and asks for a failover, once a second, until another is named", []step{
			{at: 0, d: namesSelf, crashed: true, hold: true, failover: true},
			{at: 200, d: namesSelf, crashed: true, hold: true},
			{at: 800, d: namesSelf, crashed: true, hold: true},
			{at: 1000, d: namesSelf, crashed: true, hold: true, failover: true},
			{at: 1200, d: namesB, crashed: true, replica: &b},
		}, "after a crash, named by 2/3 sentinels"},
		{"a crashed master of a paused group restarts as master, asking for no failover", []step{
			{d: namesSelf, crashed: true, paused: true},
		}, "after a crash while the group is paused, named by 3/3 sentinels"},
		{"a paused group's crashed replica restarts as a replica", []step{
			{d: namesB, crashed: true, paused: true, replica: &b},
		}, "after a crash, named by 2/3 sentinels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := Gate{FailoverEvery: ms(1000)}
			var last Start
			for i, s := range tt.steps {
				g.Paused = s.paused
				start, hold, failover := g.Step(t0.Add(ms(s.at)), a, s.d, s.crashed, s.single)
				if hold != s.hold || failover != s.failover {
					t.Fatalf("step %d: hold %v, failover %v; want %v, %v", i, hold, failover, s.hold, s.failover)
				}
				if hold {
					continue
				}
				if (start.ReplicaOf == nil) != (s.replica == nil) || (s.replica != nil && *start.ReplicaOf != *s.replica) {
					t.Fatalf("step %d: replica of %v, want %v", i, start.ReplicaOf, s.replica)
				}
				last = start
			}
			if last.Why != tt.why {
				t.Errorf("why %q, want %q", last.Why, tt.why)
			}
		})
	}
}

func TestPriority(t *testing.T) {
	tests := []struct {
		configured                int
		paused, drained, unsynced bool
		want                      int
	}{
		{100, false, false, false, 100},
		{100, true, false, false, 0},
		{100, false, true, false, 0},
		{100, true, true, false, 0},
		{100, false, false, true, 0}, // empty, never synced
		{0, false, false, false, 0},  // configured never to be promoted
		{25, false, false, false, 25},
	}
	for _, tt := range tests {
		if got := Priority(tt.configured, tt.paused, tt.drained, tt.unsynced); got != tt.want {
			t.Errorf("Priority(%d, paused %v, drained %v, unsynced %v) = %d, want %d",
				tt.configured, tt.paused, tt.drained, tt.unsynced, got, tt.want)
		}
	}
}
