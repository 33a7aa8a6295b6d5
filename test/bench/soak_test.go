package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
	"github.com/redis-ha-agent/redis-ha-agent/test/faultcheck"
)

// SoakEnv must be "1" for TestSoak to run: make soak sets it.
const SoakEnv = "RHA_SOAK"

// The soak's knobs, from the environment (make soak passes its variables).
const (
	soakDurationEnv = "RHA_SOAK_DURATION" // how long to keep injecting (default 20m)
	soakFaultsEnv   = "RHA_SOAK_FAULTS"   // comma-separated fault names (default: all)
	soakCountEnv    = "RHA_SOAK_COUNT"    // stop after this many faults instead (0: by duration)
	soakSeedEnv     = "RHA_SOAK_SEED"     // the random order (default: the clock)
)

// Between two faults: the next comes 30–60 s after the last one started,
// and never sooner than afterBack after the faulty box was back.
const (
	soakGapMin = 30 * time.Second
	soakGapMax = 60 * time.Second
)

// soakFault is one fault the soak may pick, with what it may cost.
type soakFault struct {
	name      string // as RHA_SOAK_FAULTS names it
	what      string
	in        inject
	failovers int           // exactly this many
	lost      int           // acknowledged writes lost, at most (each client)
	outage    time.Duration // PRODUCT.md's bound, reported (0: waits for the heal)
	// oldMasterWrites: the client sits with the old master, which may
	// acknowledge until it fences itself: two masters may be seen.
	oldMasterWrites bool
}

// soakFaults is the whole fault list of PRODUCT.md's guarantees table.
func soakFaults() []soakFault {
	return []soakFault{
		{"redis-kill", "master's redis killed (-9)", killRedis, 1, 10, 2 * time.Second, false},
		{"agent-kill", "master's agent killed (-9)", killAgent, 0, 10, 2 * time.Second, false},
		{"power-off", "master box powered off, booted again", powerOff, 1, 10, downAfter + time.Second, false},
		{"cut", "master cut off 15 s, client on the majority side", cut(false), 1, 10, downAfter + time.Second, false},
		{"cut-client", "master cut off 15 s, client with the old master", cut(true), 1, writeRate, 0, true},
		{"freeze", "master's redis frozen (SIGSTOP 20 s)", freezeRedis, 1, 10, downAfter + time.Second, false},
		{"switchover", "planned switchover", agentSwitchover, 1, 0, time.Second, false},
	}
}

// soakStep is one fault of the soak, as it went.
type soakStep struct {
	n                int
	f                soakFault
	at, back, end    time.Time // injected, over (box back), next fault's turn
	from, to         string    // the master before and after
	injectErr        string
	settleErr        string
	tuned            *faultcheck.WriteLog
	client, server   faultcheck.Report
	failovers        []faultcheck.Switch
	violations       []string
	clientOutageOver bool
}

// TestSoak is `make soak`: one group of three boxes set up by the user's
// story, the default client writing throughout, and a random fault of the
// whole list every 30–60 s for RHA_SOAK_DURATION (20 minutes by default),
// each fault once per turn of the list, in a random order.
// Each fault is held to its guarantee over its own window of the run (from
// the end of the one before to its next fault): acknowledged writes lost,
// two masters, exactly the failovers it needs, and the group settling again
// within two minutes. Outages are reported, not asserted. No single fault
// test replaces it: faults here meet a group that the last one left, with
// the sentinels' memory of it, and a client that has lived through them all.
func TestSoak(t *testing.T) {
	if os.Getenv(SoakEnv) != "1" {
		t.Skip("soak: set " + SoakEnv + "=1 to run it (make soak does)")
	}
	t.Setenv(box.EnableEnv, "1")
	box.Require(t)
	deb := os.Getenv("RHA_DEB")
	if deb == "" {
		t.Fatal("RHA_DEB is not set: run the soak with make soak, which builds the package")
	}
	duration, err := envDuration(soakDurationEnv, 20*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	count, err := envInt(soakCountEnv, 0)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := envInt(soakSeedEnv, int(time.Now().UnixNano()%1e9))
	if err != nil {
		t.Fatal(err)
	}
	faults, err := pickFaults(os.Getenv(soakFaultsEnv))
	if err != nil {
		t.Fatal(err)
	}
	benchRan = true
	budget := duration + 30*time.Minute
	if count > 0 {
		budget = time.Duration(count)*5*time.Minute + 10*time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()

	b := newBench(t, deb)
	boxes := addBoxes(t, b, "n", 11, 3)
	if err := box.BootAll(ctx, boxes...); err != nil {
		t.Fatal(err)
	}
	g := newGroup(t, ours, b, boxes)
	if err := g.install(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := g.settled(ctx, "", 3*time.Minute); err != nil {
		t.Fatalf("the story's group did not settle: %v", err)
	}
	defer saveLogs(t, context.WithoutCancel(ctx), "soak", boxes)

	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	sw := faultcheck.WatchSwitches(ctx, g.target)
	w := faultcheck.Start(ctx, g.target, writeRate)
	started := time.Now()
	sleep(ctx, warmUp)
	var steps []*soakStep
	var bag []soakFault // every fault once per turn, in a random order: the whole list gets its share
	for n := 1; ; n++ {
		if count > 0 && n > count || count == 0 && time.Since(started) > duration || ctx.Err() != nil {
			break
		}
		if len(bag) == 0 {
			bag = slices.Clone(faults)
			rng.Shuffle(len(bag), func(i, j int) { bag[i], bag[j] = bag[j], bag[i] })
		}
		f := bag[0]
		bag = bag[1:]
		st := g.soakStep(t, ctx, n, f, rng)
		steps = append(steps, st)
		if st.settleErr != "" || st.injectErr != "" {
			break // the group is in a state no further fault would measure
		}
	}
	l := w.Stop()
	switches := sw.Stop()
	failovers := faultcheck.Failovers(switches)

	whole, err := faultcheck.Check(ctx, g.target, l, checkLimit)
	if err != nil {
		t.Fatalf("checking the whole run: %v", err)
	}
	from := l.Started
	for i, st := range steps {
		to := st.end
		if i == len(steps)-1 {
			to = l.Stopped.Add(time.Second)
		}
		st.judge(t, ctx, g, l.Window(st.f.what, st.at, from, to), failovers, from, to)
		from = to
	}
	rep := soakReport(steps, whole, seed, time.Since(started), faults, deb)
	if !whole.Converged {
		t.Errorf("the group did not converge at the end: %s", whole.ConvergeDetail)
	}
	if err := os.MkdirAll("out", 0o755); err == nil {
		os.WriteFile(filepath.Join("out", "soak.md"), []byte(rep), 0o644)
	}
	fmt.Printf("\n%s\n(also in test/bench/out/soak.md; every box's logs in test/bench/out/logs/soak)\n", rep)
	for _, st := range steps {
		for _, v := range st.violations {
			t.Errorf("fault %d (%s): %s", st.n, st.f.name, v)
		}
	}
}

// soakStep injects one fault on the settled group and waits out its turn.
func (g *group) soakStep(t *testing.T, ctx context.Context, n int, f soakFault, rng *rand.Rand) *soakStep {
	st := &soakStep{n: n, f: f}
	master, err := g.settled(ctx, "", settleLimit)
	if err != nil {
		st.settleErr = "not settled before the fault: " + err.Error()
		st.at, st.back, st.end = time.Now(), time.Now(), time.Now()
		return st
	}
	m, others, err := g.box(master)
	if err != nil {
		st.injectErr = err.Error()
		return st
	}
	st.from = master
	// A tuned client for the server's view of this fault, told the
	// sentinels of the boxes other than this master's.
	tw := faultcheck.StartTuned(ctx, g.target.WithoutSentinelOn(m.Addr), writeRate)
	sleep(ctx, 2*time.Second)
	next := time.Now().Add(soakGapMin + time.Duration(rng.Int64N(int64(soakGapMax-soakGapMin))))
	err = f.in(ctx, g, m, others, func() { st.at = time.Now(); tw.MarkFault(f.what) })
	st.back = time.Now()
	if st.at.IsZero() {
		st.at = st.back
	}
	if err != nil {
		st.injectErr = err.Error()
	}
	sleep(ctx, watch)
	not := ""
	if f.failovers > 0 {
		not = master
	}
	st.to, err = g.settled(ctx, not, settleLimit)
	if err != nil {
		st.settleErr = err.Error()
	}
	sleep(ctx, time.Until(later(next, st.back.Add(afterBack))))
	st.tuned, st.end = tw.Stop(), time.Now()
	t.Logf("fault %d: %s on %s → %s, back %+.1fs after it, turn over %+.1fs after it",
		n, f.name, st.from, st.to, st.back.Sub(st.at).Seconds(), st.end.Sub(st.at).Seconds())
	return st
}

// judge checks one fault's window against its guarantee. failovers are the
// whole run's (faultcheck.Failovers), of which those in [from, to) are this
// fault's.
func (st *soakStep) judge(t *testing.T, ctx context.Context, g *group, win *faultcheck.WriteLog, failovers []faultcheck.Switch, from, to time.Time) {
	var err error
	if st.client, err = faultcheck.Check(ctx, g.target, win, checkLimit); err != nil {
		st.violations = append(st.violations, "default client: "+err.Error())
	}
	if st.tuned != nil {
		if st.server, err = faultcheck.Check(ctx, g.target, st.tuned, checkLimit); err != nil {
			st.violations = append(st.violations, "tuned client: "+err.Error())
		}
	}
	for _, s := range failovers {
		if !s.At.Before(from) && s.At.Before(to) {
			st.failovers = append(st.failovers, s)
		}
	}
	v := func(format string, args ...any) { st.violations = append(st.violations, fmt.Sprintf(format, args...)) }
	if st.injectErr != "" {
		v("the fault could not be run: %s", st.injectErr)
	}
	if st.settleErr != "" {
		v("the group did not settle within %s: %s", settleLimit, st.settleErr)
	}
	if st.client.Lost > st.f.lost {
		v("the default client lost %d acknowledged writes, the bound is %d", st.client.Lost, st.f.lost)
	}
	if st.server.Lost > st.f.lost {
		v("the tuned client lost %d acknowledged writes, the bound is %d", st.server.Lost, st.f.lost)
	}
	if !st.f.oldMasterWrites && (st.client.DoubleMaster || st.server.DoubleMaster) {
		v("two masters acknowledged writes (for %s)", max(st.client.DoubleMasterWindow, st.server.DoubleMasterWindow).Round(time.Millisecond))
	}
	if len(st.failovers) != st.f.failovers {
		var b strings.Builder
		for _, s := range st.failovers {
			fmt.Fprintf(&b, "; %+.2fs %s → %s (sentinel %s)", s.At.Sub(st.at).Seconds(), s.From, s.To, s.Sentinel)
		}
		v("%d failovers, the fault needs %d%s", len(st.failovers), st.f.failovers, b.String())
	}
	st.clientOutageOver = st.f.outage > 0 && st.client.LongestOutage > st.f.outage
	if len(st.violations) > 0 {
		t.Logf("fault %d (%s): %s%s", st.n, st.f.name, strings.Join(st.violations, "; "), spans(win))
	}
}

// soakReport renders the run: every fault, then per kind, then what broke.
func soakReport(steps []*soakStep, whole faultcheck.Report, seed int, took time.Duration, faults []soakFault, deb string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# make soak — %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	names := make([]string, len(faults))
	for i, f := range faults {
		names[i] = f.name
	}
	fmt.Fprintf(&b, "- %d faults in %s, each of the list once per turn in a random order (seed %d): %s\n", len(steps), took.Round(time.Second), seed, strings.Join(names, ", "))
	fmt.Fprintf(&b, "- package: %s; three boxes set up by the user's story; down_after 5 s\n", filepath.Base(deb))
	b.WriteString("- the default client (go-redis, every sentinel listed, library defaults, 1 s per write) wrote 200 keys/s " +
		"throughout; a tuned client (the server's view) wrote 200 keys/s through each fault\n")
	fmt.Fprintf(&b, "- whole run: %d writes acknowledged, %d lost; converged at the end: %v\n\n", whole.Acked, whole.Lost, whole.Converged)

	rows := [][]string{{"#", "at", "fault", "master", "client outage", "server outage", "lost", "failovers", "verdict"}}
	var start time.Time
	if len(steps) > 0 {
		start = steps[0].at
	}
	for _, st := range steps {
		verdict := "ok"
		if len(st.violations) > 0 {
			verdict = "**violation**"
		} else if st.clientOutageOver {
			verdict = "ok (outage over " + secs(st.f.outage) + ")"
		}
		rows = append(rows, []string{strconv.Itoa(st.n), fmt.Sprintf("+%s", st.at.Sub(start).Round(time.Second)), st.f.what,
			shortAddr(st.from) + " → " + shortAddr(st.to), secs(st.client.LongestOutage), secs(st.server.LongestOutage),
			fmt.Sprintf("%d / %d", st.client.Lost, st.server.Lost), fmt.Sprintf("%d (needs %d)", len(st.failovers), st.f.failovers), verdict})
	}
	b.WriteString(table(rows))

	b.WriteString("\nPer fault (client outage and server outage: lowest, median, highest):\n\n")
	rows = [][]string{{"fault", "runs", "client outage", "server outage", "bound", "lost", "failovers as needed", "violations"}}
	for _, f := range faults {
		var co, so []time.Duration
		lost, asNeeded, viol := 0, 0, 0
		for _, st := range steps {
			if st.f.name != f.name {
				continue
			}
			co, so = append(co, st.client.LongestOutage), append(so, st.server.LongestOutage)
			lost += st.client.Lost + st.server.Lost
			if len(st.failovers) == f.failovers {
				asNeeded++
			}
			if len(st.violations) > 0 {
				viol++
			}
		}
		if len(co) == 0 {
			continue
		}
		bound := "waits for heal"
		if f.outage > 0 {
			bound = "≤ " + secs(f.outage)
		}
		rows = append(rows, []string{f.what, strconv.Itoa(len(co)), spread(co), spread(so), bound, strconv.Itoa(lost),
			fmt.Sprintf("%d of %d", asNeeded, len(co)), strconv.Itoa(viol)})
	}
	b.WriteString(table(rows))

	var viol []string
	for _, st := range steps {
		for _, v := range st.violations {
			viol = append(viol, fmt.Sprintf("- fault %d (%s): %s", st.n, st.f.what, v))
		}
	}
	if !whole.Converged {
		viol = append(viol, "- at the end: not converged: "+whole.ConvergeDetail)
	}
	fmt.Fprintf(&b, "\nViolations: %d\n", len(viol))
	for _, v := range viol {
		b.WriteString(v + "\n")
	}
	return b.String()
}

// spread is "lowest / median / highest".
func spread(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%s / %s / %s", secs(s[0]), secs(s[len(s)/2]), secs(s[len(s)-1]))
}

func shortAddr(a string) string {
	if a == "" {
		return "?"
	}
	return strings.TrimSuffix(a, ":6379")
}

func pickFaults(names string) ([]soakFault, error) {
	all := soakFaults()
	if strings.TrimSpace(names) == "" {
		return all, nil
	}
	var out []soakFault
	for _, n := range strings.Split(names, ",") {
		n = strings.TrimSpace(n)
		i := slices.IndexFunc(all, func(f soakFault) bool { return f.name == n })
		if i < 0 {
			var known []string
			for _, f := range all {
				known = append(known, f.name)
			}
			return nil, fmt.Errorf("%s: unknown fault %q (known: %s)", soakFaultsEnv, n, strings.Join(known, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 20m", name, v)
	}
	return d, nil
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a number ≥ 0", name, v)
	}
	return n, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
