package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
	"github.com/redis-ha-agent/redis-ha-agent/test/faultcheck"
)

// What the fault tests ask of a run: PRODUCT.md's client, writing this fast,
// for this long before the fault, and what the group is given to settle.
const (
	writeRate = 200
	warmUp    = 2 * time.Second
	// After the group has settled, the writer keeps going this long so that
	// the report sees it writing to the new master.
	coolDown = 2 * time.Second
	// The writer keeps going this long after the faulty box is back (booted,
	// healed, resumed, restarted): a box that comes back must cause nothing,
	// and what it causes comes seconds after it is back (issue #10: 8 s).
	afterBack   = 30 * time.Second
	settleLimit = 2 * time.Minute
	checkLimit  = time.Minute
)

// faultGroup is a three-box group set up exactly as the user's story, and
// the fault checker's view of it from the client namespace.
type faultGroup struct {
	*group
	target faultcheck.Target
	// sentinels reach each box's sentinel from the client namespace.
	sentinels map[string]*redis.SentinelClient
}

// newFaultGroup boots n1..n3 on a bench of its own, replays the user's story
// on each (as TestThreeBoxStory does) and waits until the group has settled
// with n1 the master.
func newFaultGroup(t *testing.T, ctx context.Context) *faultGroup {
	t.Helper()
	return newFaultGroupWith(t, ctx, "")
}

// newFaultGroupWith is newFaultGroup with extra shell lines run in the story
// just before the agent starts (a drop-in of the user's, say).
func newFaultGroupWith(t *testing.T, ctx context.Context, extra string) *faultGroup {
	t.Helper()
	return newFaultGroupOpts(t, ctx, groupOpts{extra: extra})
}

// newFaultGroupOn is newFaultGroupWith on bench b, whose boxes run the
// distribution's units before the story (Debian's redis or valkey units).
func newFaultGroupOn(t *testing.T, ctx context.Context, b *box.Bench, units []string, extra string) *faultGroup {
	t.Helper()
	return newFaultGroupOpts(t, ctx, groupOpts{bench: b, units: units, extra: extra})
}

// newFaultGroupScript is newFaultGroup with the story replaced by script.
func newFaultGroupScript(t *testing.T, ctx context.Context, script string) *faultGroup {
	t.Helper()
	return newFaultGroupOpts(t, ctx, groupOpts{script: script})
}

// groupOpts are what a test adds to the user's story.
type groupOpts struct {
	extra  string         // shell lines run just before the agent starts
	script string         // replaces the story entirely (extra is then ignored)
	setup  func(*box.Box) // run on each box before the story
	// bench is the bench to boot the boxes on (nil: newBench), units the
	// distribution's units they run before the story (nil: Debian's redis).
	bench *box.Bench
	units []string
	// tls is the clients' side when the story's drop-ins turn tls.enabled
	// on; caFile is the CA on the host, for redis-cli in the client
	// namespace.
	tls    *tls.Config
	caFile string
}

func newFaultGroupOpts(t *testing.T, ctx context.Context, o groupOpts) *faultGroup {
	t.Helper()
	script := o.script
	if script == "" {
		script = strings.Replace(story, "systemctl enable --now", o.extra+"systemctl enable --now", 1)
	}
	b, units := o.bench, o.units
	if b == nil {
		b = newBench(t)
	}
	if units == nil {
		units = debianUnits
	}
	boxes := b.Boxes("n1", "n2", "n3")
	for _, bx := range boxes {
		unitsRunning(t, ctx, bx, units)
		if o.setup != nil {
			o.setup(bx)
		}
	}
	for _, bx := range boxes {
		if out, errOut, err := bx.ExecInput(ctx, []byte(script), nil, "sh", "-ex"); err != nil {
			t.Fatalf("box %s: the story failed: %v\n%s%s", bx.Name, err, out, errOut)
		}
	}
	fg := &faultGroup{
		group:     &group{b: b, boxes: boxes},
		target:    faultcheck.Target{MasterName: "main", Password: password, Dialer: b.ClientDial, TLS: o.tls},
		sentinels: map[string]*redis.SentinelClient{},
	}
	dial := b.ClientDial
	if o.tls != nil {
		fg.group.cliTLS = []string{"--tls", "--cacert", o.caFile}
		dial = faultcheck.TLSDial(b.ClientDial, o.tls)
	}
	for _, bx := range boxes {
		fg.target.Sentinels = append(fg.target.Sentinels, bx.Addr+":26379")
		fg.target.Redis = append(fg.target.Redis, bx.Addr+":6379")
		sc := redis.NewSentinelClient(&redis.Options{
			Addr: bx.Addr + ":26379", Password: password, Dialer: dial,
			MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second,
		})
		t.Cleanup(func() { sc.Close() })
		fg.sentinels[bx.Name] = sc
	}
	start := time.Now()
	if m, err := fg.settled(ctx, "", settleLimit); err != nil || m != "10.88.0.11:6379" {
		t.Fatalf("the story's group: master %q, %v", m, err)
	}
	t.Logf("group settled %s after the story", time.Since(start).Round(100*time.Millisecond))
	return fg
}

// box returns the box whose redis is at addr.
func (fg *faultGroup) box(t *testing.T, addr string) (*box.Box, []*box.Box) {
	t.Helper()
	for i, bx := range fg.boxes {
		if bx.Addr+":6379" == addr {
			others := slices.Concat(fg.boxes[:i], fg.boxes[i+1:])
			return bx, others
		}
	}
	t.Fatalf("no box has redis at %s", addr)
	return nil, nil
}

// settled waits until the group is what PRODUCT.md promises after every
// fault — one master (other than not, when given), every other box its
// replica with the link up, every sentinel up and naming it — and returns
// the master. It asks every box's agent (`status --json`, the user's view),
// every redis for its ROLE and every sentinel what it knows of the group,
// so that the next fault meets sentinels able to fail over.
func (fg *faultGroup) settled(ctx context.Context, not string, timeout time.Duration) (string, error) {
	var master string
	err := eventually(ctx, timeout, func(ctx context.Context) error {
		st, _, err := agentStatus(ctx, fg.boxes[0])
		if err != nil {
			return fmt.Errorf("box %s: %v", fg.boxes[0].Name, err)
		}
		if st.Master == "" || st.Master == not {
			return fmt.Errorf("box %s: status names master %q (%s)", fg.boxes[0].Name, st.Master, strings.Join(st.Problems, "; "))
		}
		master = st.Master
		return fg.healthy(ctx, master)
	})
	return master, err
}

// healthy is one look at the group: nil when it has settled on master.
func (fg *faultGroup) healthy(ctx context.Context, master string) error {
	var errs []error
	n := len(fg.boxes)
	for _, bx := range fg.boxes {
		if a := isActive(ctx, bx, unit); a != "active" {
			errs = append(errs, fmt.Errorf("box %s: unit %s", bx.Name, a))
			continue
		}
		st, code, err := agentStatus(ctx, bx)
		if err == nil {
			err = statusCorrect(st, code, master, n)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("box %s: %v", bx.Name, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if m, err := fg.oneMaster(ctx, fg.boxes); err != nil || m != master {
		return fmt.Errorf("ROLE: master %q, %v; status names %s", m, err, master)
	}
	host, port, _ := strings.Cut(master, ":")
	for _, bx := range fg.boxes {
		if err := fg.sentinelKnows(ctx, bx.Name, host, port, n); err != nil {
			errs = append(errs, fmt.Errorf("sentinel on %s: %v", bx.Name, err))
		}
	}
	return errors.Join(errs...)
}

// sentinelKnows checks that a sentinel names host:port, sees it up, and
// knows every other box as a replica it can reach and every other sentinel.
func (fg *faultGroup) sentinelKnows(ctx context.Context, name, host, port string, n int) error {
	sc := fg.sentinels[name]
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	m, err := sc.Master(ctx, "main").Result()
	if err != nil {
		return err
	}
	if m["ip"] != host || m["port"] != port || m["flags"] != "master" {
		return fmt.Errorf("master %s:%s flags %s", m["ip"], m["port"], m["flags"])
	}
	reps, err := sc.Replicas(ctx, "main").Result()
	if err != nil {
		return err
	}
	var good []string
	for _, r := range reps {
		if r["flags"] == "slave" && r["master-link-status"] == "ok" {
			good = append(good, r["ip"])
		}
	}
	sens, err := sc.Sentinels(ctx, "main").Result()
	if err != nil {
		return err
	}
	if len(good) != n-1 || len(sens) != n-1 {
		return fmt.Errorf("knows %d good replicas %v of %d, %d other sentinels", len(good), good, len(reps), len(sens))
	}
	return nil
}

// fault is one row of PRODUCT.md's guarantees table.
type fault struct {
	name string
	lost int // acknowledged writes lost, at most
	// outage is PRODUCT.md's bound on the client's write outage, 0 where it
	// waits for the heal. It is reported, not asserted: a timing goal is a
	// benchmark that prints a table, not a flaky test.
	outage time.Duration
	// failovers is how many failovers the fault needs: exactly that many
	// must happen, counted over the whole run (1 for a dead, cut or frozen
	// master and a switchover, 0 for an agent kill). With 1, the master
	// changes.
	failovers int
	// oldMasterWrites: the guarantee allows the old master's last writes
	// (≤ 1 s), so two masters may be seen acknowledging; the loss bound
	// is what is asserted.
	oldMasterWrites bool
	// inject applies the fault to the group whose master is m and returns
	// once it is over (healed, restarted) and the group may settle.
	inject func(t *testing.T, ctx context.Context, fg *faultGroup, m *box.Box, others []*box.Box)
}

// run measures one fault on fg: two writers run from before it until
// afterBack after the faulty box is back and the group has settled — the
// default client, as users configure it, whose report is asserted, and the
// tuned one, whose outage is the server's — and every sentinel's
// +switch-master is counted. Then the checker reads every acknowledged key
// back. It asserts the guarantee and returns the report.
func (fg *faultGroup) run(t *testing.T, ctx context.Context, f fault) faultcheck.Report {
	t.Helper()
	old, err := fg.settled(ctx, "", settleLimit)
	if err != nil {
		t.Fatalf("before the fault: %v", err)
	}
	m, others := fg.box(t, old)
	sw := faultcheck.WatchSwitches(ctx, fg.target)
	w := faultcheck.Start(ctx, fg.target, writeRate)
	tw := faultcheck.StartTuned(ctx, fg.target.WithoutSentinelOn(m.Addr), writeRate)
	t.Cleanup(func() { w.Stop(); tw.Stop(); sw.Stop() })
	time.Sleep(warmUp)
	w.MarkFault(f.name)
	tw.MarkFault(f.name)
	defer fg.journalsIfFailed(t, time.Now())
	f.inject(t, ctx, fg, m, others)
	back := time.Now()
	not := ""
	if f.failovers > 0 {
		not = old
	}
	master, err := fg.settled(ctx, not, settleLimit)
	if err != nil {
		w.Stop()
		tw.Stop()
		t.Fatalf("%s: the group did not settle: %v", f.name, err)
	}
	time.Sleep(max(coolDown, time.Until(back.Add(afterBack))))
	l, tl, switches := w.Stop(), tw.Stop(), sw.Stop()
	rep, err := faultcheck.Check(ctx, fg.target, l, checkLimit)
	if err != nil {
		t.Fatalf("%s: %v", f.name, err)
	}
	trep, err := faultcheck.Check(ctx, fg.target, tl, checkLimit)
	if err != nil {
		t.Fatalf("%s, tuned client: %v", f.name, err)
	}
	rep.Server = &trep
	failovers := faultcheck.Failovers(switches)
	rep.Failovers = len(failovers)
	t.Logf("%s (master %s → %s)%s%s\n  tuned client:%s", rep.Row(), old, master, switchStory(l.FaultAt, failovers), spans(l), spans(tl))
	fg.assert(t, f, l, rep, master, master)
	fg.assert(t, f, tl, trep, master, master)
	if rep.Failovers != f.failovers {
		t.Errorf("%s: %d failovers, the fault needs %d:%s", f.name, rep.Failovers, f.failovers, switchStory(l.FaultAt, switches))
	}
	return rep
}

// switchStory lists switches relative to the fault, for a log.
func switchStory(faultAt time.Time, switches []faultcheck.Switch) string {
	var b strings.Builder
	for _, s := range switches {
		fmt.Fprintf(&b, "\n    %+.2fs sentinel %s: +switch-master %s → %s", s.At.Sub(faultAt).Seconds(), s.Sentinel, s.From, s.To)
	}
	return b.String()
}

// assert checks a report against the guarantee of f: master is the one the
// agents now name, to the one that took over from the fault's.
func (fg *faultGroup) assert(t *testing.T, f fault, l *faultcheck.WriteLog, rep faultcheck.Report, master, to string) {
	t.Helper()
	if !rep.Converged || rep.Master != master {
		t.Errorf("%s: checker: converged %v on %s (%s); the agents say %s", f.name, rep.Converged, rep.Master, rep.ConvergeDetail, master)
	}
	if rep.DoubleMaster && !f.oldMasterWrites {
		t.Errorf("%s: two masters acknowledged writes for %v", f.name, rep.DoubleMasterWindow)
	}
	if rep.Lost > f.lost {
		t.Errorf("%s: %d acknowledged writes lost, PRODUCT.md allows %d:%s", f.name, rep.Lost, f.lost, lostDetail(l, rep))
	} else if rep.Lost > 0 {
		t.Logf("%s: %d lost (bound %d):%s", f.name, rep.Lost, f.lost, lostDetail(l, rep))
	}
	before, after := 0, 0
	for _, r := range l.Records {
		switch {
		case !r.Acked:
		case r.End.Before(l.FaultAt):
			before++
		case r.Server == to:
			after++
		}
	}
	// Without writes before the fault and on the final master after it,
	// nothing above means much.
	if before < writeRate/2 || after == 0 {
		t.Errorf("%s: %d writes acknowledged before the fault, %d by %s after it", f.name, before, after, to)
	}
	if f.outage > 0 && rep.LongestOutage > f.outage {
		t.Logf("%s: outage %v is over PRODUCT.md's %v", f.name, rep.LongestOutage.Round(time.Millisecond), f.outage)
		fg.journals(t, l.FaultAt, rep.OutageStart.Add(rep.LongestOutage+time.Second), "what the failover did", failoverLines)
	}
}

// spans says which server acknowledged what, and when, relative to the
// fault, and why attempts failed: the story behind a report row.
func spans(l *faultcheck.WriteLog) string {
	var b strings.Builder
	at := func(tm time.Time) string { return fmt.Sprintf("%+.2fs", tm.Sub(l.FaultAt).Seconds()) }
	for _, sp := range l.AckSpans() {
		fmt.Fprintf(&b, "\n    %s: %d acks %s..%s", sp.Server, sp.Acks, at(sp.From), at(sp.To))
	}
	type failure struct {
		n        int
		from, to time.Time
	}
	failures := map[string]*failure{}
	var errs []string
	for _, r := range l.Records {
		if r.Acked {
			continue
		}
		// Addresses and ports vary; the kind of error is what tells.
		e := r.Err
		if i := strings.LastIndex(e, ": "); i >= 0 && strings.HasPrefix(e, "dial") {
			e = "dial …" + e[i:]
		}
		f, ok := failures[e]
		if !ok {
			f = &failure{from: r.End}
			failures[e] = f
			errs = append(errs, e)
		}
		f.n++
		f.to = r.End
	}
	for _, e := range errs {
		f := failures[e]
		fmt.Fprintf(&b, "\n    failed %d× %s..%s: %.120s", f.n, at(f.from), at(f.to), e)
	}
	b.WriteString("\n    (times relative to the fault)")
	return b.String()
}

// lostDetail places the first lost keys in the log: which server
// acknowledged each, and when relative to the fault.
func lostDetail(l *faultcheck.WriteLog, rep faultcheck.Report) string {
	lost := map[string]bool{}
	for _, k := range rep.LostKeys {
		lost[k] = true
	}
	var b strings.Builder
	for _, r := range l.Records {
		if lost[l.Key(r.Seq)] {
			fmt.Fprintf(&b, "\n    %s acked by %s at %+.3fs", l.Key(r.Seq), r.Server, r.End.Sub(l.FaultAt).Seconds())
		}
	}
	if rep.Lost > len(rep.LostKeys) {
		fmt.Fprintf(&b, "\n    … and %d more", rep.Lost-len(rep.LostKeys))
	}
	return b.String()
}

// results gathers the reports of groups that run in parallel, for one
// table in PRODUCT.md's order.
type results struct {
	mu   sync.Mutex
	rows map[int]faultcheck.Report
}

func (r *results) add(order int, rep faultcheck.Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rows == nil {
		r.rows = map[int]faultcheck.Report{}
	}
	r.rows[order] = rep
}

func (r *results) table() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var order []int
	for o := range r.rows {
		order = append(order, o)
	}
	slices.Sort(order)
	var reps []faultcheck.Report
	for _, o := range order {
		reps = append(reps, r.rows[o])
	}
	return faultcheck.Table(reps)
}

// journalsIfFailed logs, when t has failed, what every box's agent (and
// its redis and sentinel) logged since the fault, less redis' persistence
// chatter: the bench's own diagnostics keep only the last lines.
func (fg *faultGroup) journalsIfFailed(t *testing.T, since time.Time) {
	if t.Failed() {
		fg.journals(t, since, time.Now(), "journal since the fault", "")
	}
}

// failoverLines picks out of a journal what explains a slow failover: the
// sentinels' view and votes, and the agents' decisions.
const failoverLines = `sdown|odown|switch-master|vote|failover|elected|promot|fenc|role change|restart gate|new master|demot|convert-to-slave|reboot`

// journals logs each running box's journal of the unit from since to
// until, filtered by an extended regexp (all but persistence chatter if "").
func (fg *faultGroup) journals(t *testing.T, since, until time.Time, what, filter string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sel := "grep -vE 'AOF|aof|Background|Fork CoW|history file|DB saved|changes in .* seconds'"
	if filter != "" {
		sel = "grep -E '" + filter + "'"
	}
	script := fmt.Sprintf("journalctl -u %s --no-pager -o short-precise --since @%.3f --until @%.3f | %s | tail -n 250",
		unit, float64(since.UnixMilli())/1000-1, float64(until.UnixMilli())/1000+1, sel)
	for _, bx := range fg.boxes {
		if !bx.Running() {
			continue
		}
		out, errOut, _ := bx.Sh(ctx, script)
		t.Logf("box %s: %s:\n%s%s", bx.Name, what, out, errOut)
	}
}

// shIn runs a script in a box and fails the test when it fails, returning
// its trimmed output.
func shIn(t *testing.T, ctx context.Context, bx *box.Box, script string) string {
	t.Helper()
	return strings.TrimSpace(must(t, ctx, bx, script))
}
