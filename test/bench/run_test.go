package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
)

// threeBoxes is the main part: both setups on three boxes each, side by side
// on one bench, plus a box of its own for the start → READY cases. In order:
// the idle footprint (both groups idle at once, one window), start → READY,
// then every fault on ours and on the tutorial, alternately.
func threeBoxes(t *testing.T, deb string, rep *Report) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	b := newBench(t, deb)
	nBoxes := addBoxes(t, b, "n", 11, 3)
	tBoxes := addBoxes(t, b, "t", 21, 3)
	solo, err := b.AddBox("solo", "10.88.0.31")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := box.BootAll(ctx, append(append(nBoxes, tBoxes...), solo)...); err != nil {
		t.Fatal(err)
	}
	t.Logf("7 boxes booted in %s", time.Since(start).Round(100*time.Millisecond))

	og, tg := newGroup(t, ours, b, nBoxes), newGroup(t, tutorial, b, tBoxes)
	groups := []*group{og, tg}
	start = time.Now()
	if err := inParallel(groups, func(g *group) error { return g.install(ctx) }); err != nil {
		t.Fatalf("setting the groups up: %v", err)
	}
	var masters []string
	for _, g := range groups {
		m, err := g.settled(ctx, "", 3*time.Minute)
		if err != nil {
			t.Fatalf("%s: not settled after the setup: %v", g.setup, err)
		}
		masters = append(masters, m)
	}
	t.Logf("both setups installed and settled in %s", time.Since(start).Round(100*time.Millisecond))

	// Footprint: both groups idle, one window for every process.
	oM, oR := roleBoxes(og, masters[0])
	tM, tR := roleBoxes(tg, masters[1])
	sleep(ctx, 5*time.Second) // past the sentinels' first rounds of discovery
	procs, notes := footprint(ctx, []watched{
		agentProc("agent, master box", oM), agentProc("agent, replica box", oR),
		sentinelProc("redis-sentinel, master box", tM), sentinelProc("redis-sentinel, replica box", tR),
		agentSentinelProc("master box", oM), agentSentinelProc("replica box", oR),
	})
	rep.Footprint = Footprint{Window: idleWindow, Agent: procs[0:2], Sentinel: procs[2:4], AgentSentinel: procs[4:6]}
	for _, n := range notes {
		rep.note(t, "%s", n)
	}
	for _, p := range procs {
		if p.Err != "" {
			t.Errorf("footprint of %s: %s", p.Label, p.Err)
			rep.note(t, "footprint of %s: not measured: %s", p.Label, p.Err)
		}
	}
	if a, s, err := binaries(tM); err != nil {
		t.Errorf("binaries: %v", err)
		rep.note(t, "binary sizes: not measured: %v", err)
	} else {
		rep.Footprint.AgentBinary, rep.Footprint.SentinelBinary = a, s
	}
	threeRow := ScaleRow{Boxes: 3}
	threeRow.AgentRSSMaster, threeRow.AgentRSSReplica = agentRSS(ctx, og, oM)

	// Start → READY.
	empty, loaded := startTimes(t, ctx, rep, solo)
	restart := StartRow{Case: "replica box of a 3-box group, restart"}
	restart.Agent = startReady(ctx, oR, agentUnit)
	restart.Redis = startReady(ctx, tR, "redis-server.service")
	restart.Sentinel = startReady(ctx, tR, "redis-sentinel.service")
	rep.Start = []StartRow{empty, loaded, restart}
	for _, s := range rep.Start {
		for what, tm := range map[string]Timing{"agent": s.Agent, "redis-server": s.Redis, "redis-sentinel": s.Sentinel} {
			if tm.Err != "" {
				t.Errorf("start → READY, %s, %s: %s", s.Case, what, tm.Err)
				rep.note(t, "start → READY, %s, %s: not measured: %s", s.Case, what, tm.Err)
			}
		}
	}

	// Faults, ours then the tutorial's for each; those marked last after
	// all the others.
	fs := faults()
	rows := make([]FaultRow, len(fs))
	measure := func(i int, g *group) {
		f := fs[i]
		in, ok := f.inject[g.setup]
		if !ok {
			return
		}
		r := g.run(t, ctx, f.name, in, f.elected, f.failovers)
		if r.Err != "" {
			t.Error(r.Err)
			rep.note(t, "not measured: %s", r.Err)
		}
		if r.Unsettled != "" {
			rep.note(t, "%s, %s: not settled within %s after the fault: %s", g.setup, f.name, settleLimit, r.Unsettled)
		}
		if g.setup == ours {
			rows[i].Ours = r
		} else {
			rows[i].Tutorial = r
		}
	}
	for i, f := range fs {
		rows[i].Fault, rows[i].Goal = f.name, f.goal
		if !f.last {
			for _, g := range groups {
				measure(i, g)
			}
		}
	}
	for i, f := range fs {
		if f.last {
			for _, g := range groups {
				measure(i, g)
			}
		}
	}
	rep.Faults = rows
	threeRow.Kill, threeRow.PowerOff = rep.Faults[0].Ours, rep.Faults[2].Ours
	rep.Scale = append(rep.Scale, threeRow)

	saveLogs(t, ctx, "", append(append(nBoxes, tBoxes...), solo))

	agentPeak, agentOn := peakHWM(ctx, nBoxes, agentUnit)
	sentPeak, sentOn := peakHWM(ctx, tBoxes, "redis-sentinel.service")
	rep.note(t, "after the fault run, the highest peak RSS (VmHWM) of an agent was %s (box %s) and of a redis-sentinel %s (box %s); "+
		"a process restarted by a fault (agent kill, power-off) starts its peak over", mibOrNA(agentPeak), agentOn, mibOrNA(sentPeak), sentOn)
}

// scale is the agent alone on n boxes: its RSS once settled, then the
// failover after the master's redis is killed and after its box is powered
// off, measured as in the fault table.
func scale(t *testing.T, deb string, n int) ScaleRow {
	row := ScaleRow{Boxes: n}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	fail := func(err error) ScaleRow {
		row.Err = err.Error()
		t.Error(err)
		return row
	}
	b := newBench(t, deb)
	boxes := addBoxes(t, b, "n", 11, n)
	start := time.Now()
	if err := box.BootAll(ctx, boxes...); err != nil {
		return fail(err)
	}
	g := newGroup(t, ours, b, boxes)
	if err := g.install(ctx); err != nil {
		return fail(err)
	}
	master, err := g.settled(ctx, "", 3*time.Minute)
	if err != nil {
		return fail(err)
	}
	t.Logf("%d boxes booted, installed and settled in %s", n, time.Since(start).Round(100*time.Millisecond))
	defer saveLogs(t, ctx, fmt.Sprintf("%d-boxes", n), boxes)
	sleep(ctx, 5*time.Second)
	m, _ := roleBoxes(g, master)
	row.AgentRSSMaster, row.AgentRSSReplica = agentRSS(ctx, g, m)
	for _, f := range []struct {
		name    string
		in      inject
		elected bool
		dst     **Run
	}{
		{"master's redis killed (-9)", killRedis, false, &row.Kill},
		{"master box powered off (booted again)", powerOff, true, &row.PowerOff},
	} {
		r := g.run(t, ctx, f.name, f.in, f.elected, 1)
		if r.Err != "" {
			t.Error(r.Err)
		}
		*f.dst = r
	}
	return row
}

// logScript prints what a box's redis, sentinel and agent logged, over all
// its boots.
const logScript = `journalctl --no-pager -o short-monotonic -u redis-ha-agent -u redis-server -u redis-sentinel
for f in /var/log/redis/redis-server.log /var/log/redis/redis-sentinel.log; do
	[ -s "$f" ] && { echo "===== $f"; cat "$f"; }
done
true`

// saveLogs keeps every box's logs in out/logs (or its subdirectory sub),
// for whoever reads a number and wants the story behind it.
func saveLogs(t *testing.T, ctx context.Context, sub string, boxes []*box.Box) {
	dir := filepath.Join("out", "logs", sub)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Log(err)
		return
	}
	for _, bx := range boxes {
		out, _, err := bx.Sh(ctx, logScript)
		if err != nil {
			out += fmt.Sprintf("\n(incomplete: %v)\n", err)
		}
		if err := os.WriteFile(filepath.Join(dir, bx.Name+".log"), []byte(out), 0o644); err != nil {
			t.Log(err)
		}
	}
}

// roleBoxes returns the box of master and a replica's.
func roleBoxes(g *group, master string) (m, r *box.Box) {
	m, others, err := g.box(master)
	if err != nil {
		return g.boxes[0], g.boxes[1] // settled says otherwise; the samples will tell
	}
	return m, others[0]
}

// agentRSS is the agent's RSS on the master's box, and the highest of the
// replicas'; 0 where not measured.
func agentRSS(ctx context.Context, g *group, m *box.Box) (master, replica int64) {
	for _, bx := range g.boxes {
		pid, err := mainPID(ctx, bx, agentUnit)
		if err != nil {
			continue
		}
		s, err := sample(ctx, bx, pid)
		if err != nil {
			continue
		}
		if bx == m {
			master = s.RSS
		} else {
			replica = max(replica, s.RSS)
		}
	}
	return master, replica
}
