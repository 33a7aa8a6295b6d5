package bench

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/test/faultcheck"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden.md")

// fakeRun is a run with one failover, needed, and a tuned client that saw
// the servers back 200 ms sooner and lost as much.
func fakeRun(outage time.Duration, lost int, converged bool) *Run {
	return &Run{FailoversNeeded: 1, Report: faultcheck.Report{LongestOutage: outage, Lost: lost, Acked: 3000, Converged: converged,
		Failovers: 1, Server: &faultcheck.Report{LongestOutage: outage - 200*time.Millisecond, Lost: lost}}}
}

// TestMarkdown renders a report of every kind of cell: n/a, error, not
// converged, double master, goals met and missed.
func TestMarkdown(t *testing.T) {
	dm := fakeRun(16*time.Second, 2987, true)
	kill, off := fakeRun(1400*time.Millisecond, 0, true), fakeRun(7*time.Second, 0, true)
	kill.Fault, off.Fault = "master's redis killed (-9)", "master box powered off (booted again)"
	off5 := fakeRun(6500*time.Millisecond, 3, true)
	off5.Fault = off.Fault
	dm.DoubleMaster, dm.DoubleMasterWindow = true, 9*time.Second
	// A box that came back and caused a second failover.
	off.Failovers = 2
	agentKill := fakeRun(600*time.Millisecond, 0, true)
	agentKill.Failovers, agentKill.FailoversNeeded = 0, 0
	agentKill.Unsettled = "box n1: agent activating"
	r := &Report{
		Date:    time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC),
		Runtime: 21*time.Minute + 30*time.Second,
		Machine: []string{"host: Debian 12.12, Linux 6.1; 2 × Test CPU; 23.4 GiB RAM"},
		Faults: []FaultRow{
			{Fault: "master's redis killed (-9)", Goal: Goal{2 * time.Second, 10, "≤ 2 s, ≤ 10 lost"},
				Ours: kill, Tutorial: fakeRun(300*time.Millisecond, 1002, true)},
			{Fault: "master's agent killed (-9)", Goal: Goal{2 * time.Second, 10, "≤ 2 s, ≤ 10 lost"},
				Ours: agentKill},
			{Fault: "master box powered off (booted again)", Goal: failoverGoal,
				Ours: off, Tutorial: &Run{Err: "tutorial: boot again: timeout"}},
			{Fault: "master cut off 15 s; client stuck with the old master", Goal: Goal{Lost: 200, Text: "waits for heal, ≤ 1 s of writes (200)"},
				Ours: fakeRun(17*time.Second, 95, false), Tutorial: dm},
			{Fault: "planned switchover", Goal: Goal{time.Second, 0, "≤ 1 s, 0 lost"},
				Ours: fakeRun(900*time.Millisecond, 0, true), Tutorial: fakeRun(200*time.Millisecond, 0, true)},
		},
		Footprint: Footprint{
			Window: time.Minute,
			Agent: []Proc{
				{Label: "agent, master box", RSS: 9 << 20, HWM: 11 << 20, CPU: 0.15, Threads: 8, FDs: 14, Goroutines: 23},
				{Label: "agent, replica box", RSS: 13 << 20, HWM: 14 << 20, CPU: 0.05, Threads: 8, FDs: 13, Goroutines: 21},
			},
			Sentinel: []Proc{
				{Label: "redis-sentinel, master box", RSS: 11 << 20, HWM: 11 << 20, CPU: 0.3, Threads: 5, FDs: 12, Goroutines: -1},
				{Label: "redis-sentinel, replica box", Err: "not running"},
			},
			AgentSentinel:  []Proc{{Label: "master box", RSS: 10 << 20, CPU: 0.25}},
			AgentBinary:    Binary{Size: 9 << 20, Static: true, Stripped: true},
			SentinelBinary: Binary{Size: 2387088, Libs: 7, Stripped: true},
		},
		Start: []StartRow{
			{Case: "empty dataset, one box", Agent: Timing{D: 400 * time.Millisecond}, Redis: Timing{D: 60 * time.Millisecond}},
			{Case: "1000000 keys × 1000 B (RSS 1.06 GiB), one box", Overhead: true,
				Agent: Timing{D: 5 * time.Second, Load: 3700 * time.Millisecond}, Redis: Timing{D: 3800 * time.Millisecond, Load: 3600 * time.Millisecond}},
			{Case: "replica box of a 3-box group, restart", Agent: Timing{D: 1500 * time.Millisecond}, Redis: Timing{Err: "failed"},
				Sentinel: Timing{D: 80 * time.Millisecond}},
		},
		Scale: []ScaleRow{
			{Boxes: 3, Kill: kill, PowerOff: off, AgentRSSMaster: 9 << 20, AgentRSSReplica: 13 << 20},
			{Boxes: 5, Kill: &Run{Err: "no master"}, PowerOff: off5, AgentRSSMaster: 9 << 20},
			{Boxes: 7, Err: "boot: timeout"},
		},
		Notes: []string{"a note"},
	}
	got := r.Markdown()
	const golden = "testdata/report.golden.md"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readTestdata(t, "report.golden.md")
	if got != want {
		gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
		for i := range max(len(gl), len(wl)) {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("Markdown differs from %s (go test -run TestMarkdown -update rewrites it) at line %d:\n got %q\nwant %q", golden, i+1, g, w)
			}
		}
	}
}

func TestRatio(t *testing.T) {
	for _, c := range []struct {
		a, b float64
		want string
	}{
		{0, 0, "—"}, {5, 0, "∞"}, {0, 1002, "0"}, {1, 3, "0.33"}, {3, 1002, "0.003"}, {1.4, 0.3, "4.7"}, {120, 3, "40"},
	} {
		if got := ratio(c.a, c.b); got != c.want {
			t.Errorf("ratio(%v, %v) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}

func TestMet(t *testing.T) {
	g := Goal{2 * time.Second, 10, ""}
	for _, c := range []struct {
		name string
		r    *Run
		goal Goal
		want string
	}{
		{"within", fakeRun(time.Second, 10, true), g, "yes"},
		{"slow and lossy", fakeRun(3*time.Second, 11, true), g, "**no**: outage, lost"},
		{"not converged", fakeRun(time.Second, 0, false), g, "**no**: not converged"},
		{"not settled", &Run{Report: fakeRun(time.Second, 0, true).Report, FailoversNeeded: 1, Unsettled: "x"}, g, "**no**: not settled"},
		{"a second failover", &Run{Report: func() faultcheck.Report { r := fakeRun(time.Second, 0, true).Report; r.Failovers = 2; return r }(),
			FailoversNeeded: 1}, g, "**no**: 2 failovers"},
		{"the tuned client lost", &Run{Report: func() faultcheck.Report {
			r := fakeRun(time.Second, 0, true).Report
			r.Server = &faultcheck.Report{Lost: 11}
			return r
		}(), FailoversNeeded: 1}, g, "**no**: lost"},
		{"no outage bound", fakeRun(time.Hour, 0, true), Goal{Lost: 200}, "yes"},
		{"error", &Run{Err: "x"}, g, "not measured"},
	} {
		if got := (FaultRow{Goal: c.goal, Ours: c.r}).Met(); got != c.want {
			t.Errorf("%s: Met = %q, want %q", c.name, got, c.want)
		}
	}
}
