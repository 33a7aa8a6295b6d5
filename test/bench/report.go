package bench

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/test/faultcheck"
)

// Report is everything one `make bench` run measured, in the order it is
// printed.
type Report struct {
	Date    time.Time
	Runtime time.Duration // of the measuring test, package build excluded
	Machine []string      // one fact a line: host, kernel, CPU, versions

	Faults    []FaultRow
	Footprint Footprint
	Start     []StartRow
	Scale     []ScaleRow
	// Notes are facts a reader needs to read a table right, and every
	// measurement that failed.
	Notes []string
}

// Run is one fault run of one setup, as the fault checker saw it.
type Run struct {
	faultcheck.Report
	Err string // not measured; the cells say "error" and a note says why
	// Unsettled says how the group fell short of settling after the fault
	// within the bench's limit ("" when it settled); the checker's own
	// convergence (Converged) is the weaker test, of redis and sentinels only.
	Unsettled string
	// FailoversNeeded is how many failovers the fault needs; Failovers
	// (counted from the sentinels' +switch-master) must equal it.
	FailoversNeeded int
}

// Goal is PRODUCT.md's bound for one fault.
type Goal struct {
	Outage time.Duration // 0: none (the client waits for the heal)
	Lost   int
	Text   string // as the guarantees table words it
}

// FaultRow is one fault, both setups.
type FaultRow struct {
	Fault    string
	Goal     Goal
	Ours     *Run
	Tutorial *Run // nil: the fault does not exist there
}

// Met says whether ours kept the goal, and if not, what it missed. A run
// that did not converge misses it whatever its numbers: PRODUCT.md promises
// one master and its replicas after every fault.
func (f FaultRow) Met() string {
	r := f.Ours
	if r == nil || r.Err != "" {
		return "not measured"
	}
	var miss []string
	if f.Goal.Outage > 0 && r.LongestOutage > f.Goal.Outage {
		miss = append(miss, "outage")
	}
	if r.Lost > f.Goal.Lost || r.Server != nil && r.Server.Lost > f.Goal.Lost {
		miss = append(miss, "lost")
	}
	if r.Failovers >= 0 && r.Failovers != r.FailoversNeeded {
		miss = append(miss, fmt.Sprintf("%d failovers", r.Failovers))
	}
	if !r.Converged {
		miss = append(miss, "not converged")
	} else if r.Unsettled != "" {
		miss = append(miss, "not settled")
	}
	if len(miss) > 0 {
		return "**no**: " + strings.Join(miss, ", ")
	}
	return "yes"
}

// Proc is one process's footprint.
type Proc struct {
	Label      string // column header
	RSS, HWM   int64  // bytes: VmRSS, VmHWM
	CPU        float64
	Threads    int
	FDs        int
	Goroutines int // -1: the process does not say
	Err        string
}

// Binary is an executable as shipped.
type Binary struct {
	Path     string
	Size     int64
	Static   bool
	Stripped bool
	Libs     int // shared libraries it loads (dynamic only)
}

func (b Binary) String() string {
	if b.Size == 0 {
		return "n/a"
	}
	kind := "static"
	if !b.Static {
		kind = fmt.Sprintf("dynamic, %d shared libraries", b.Libs)
	}
	if b.Stripped {
		kind += ", stripped"
	}
	return fmt.Sprintf("%s (%s)", mib(b.Size), kind)
}

// Footprint is the agent against redis-sentinel, both idle.
type Footprint struct {
	Window time.Duration // of the CPU measurement
	Agent  []Proc        // on the master's box, on a replica's
	// Sentinel is Debian's redis-sentinel of the tutorial setup, same order.
	Sentinel []Proc
	// AgentSentinel is the sentinel the agent runs: ours costs agent plus it.
	AgentSentinel  []Proc
	AgentBinary    Binary
	SentinelBinary Binary
}

// The footprint goals of the issue.
const (
	GoalRSS      = 12 << 20
	GoalCPU      = 0.2 // percent of one core
	GoalBinary   = 12 << 20
	GoalReadyMax = time.Second // start → READY, beyond the data load
)

// StartRow is one start → READY case (systemctl start until is-active).
type StartRow struct {
	Case                   string
	Agent, Redis, Sentinel Timing
	// Overhead: the row's goal is READY minus the data load ≤ GoalReadyMax.
	Overhead bool
}

// Timing is one start → READY measurement.
type Timing struct {
	D    time.Duration // 0 with Err "": not applicable
	Load time.Duration // redis's own "DB loaded" time; 0 = not logged
	Err  string
}

func (t Timing) cell() string {
	switch {
	case t.Err != "":
		return "error"
	case t.D == 0:
		return "n/a"
	case t.Load > 0:
		return fmt.Sprintf("%s (load %s)", secs(t.D), secs(t.Load))
	}
	return secs(t.D)
}

// ScaleRow is the agent on a group of Boxes boxes.
type ScaleRow struct {
	Boxes    int
	Kill     *Run // master's redis killed (-9)
	PowerOff *Run // master box powered off
	// AgentRSS: on the master's box, and the highest of the replicas'.
	AgentRSSMaster, AgentRSSReplica int64
	Err                             string
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# make bench — %s\n\n", r.Date.UTC().Format("2006-01-02 15:04 MST"))
	for _, m := range r.Machine {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	fmt.Fprintf(&b, "- bench runtime: %s (package build excluded)\n", r.Runtime.Round(time.Second))

	b.WriteString("\n## Faults: redis-ha-agent against the tutorial setup\n\n")
	b.WriteString("Three boxes, down_after 5 s, two Sentinel-aware clients in the client namespace writing 200 keys/s each, " +
		"from 5 s before the fault until 30 s after the faulty box is back. " +
		"The **default client** is configured as users configure one: a go-redis FailoverClient told every sentinel, " +
		"the master's too, with go-redis's defaults for everything else and a 1 s deadline per write. " +
		"Its outage is the **client outage**, which PRODUCT.md's bounds are about. " +
		"The **tuned client** (short timeouts, no retries, told only the other boxes' sentinels) sees the servers: " +
		"its outage is the **server outage**, up to the first write the new master accepted. " +
		"Outage: the longest stretch without an acknowledged write over the whole run, from the last ack before the fault. " +
		"Lost: acknowledged keys missing from the final master (default client / tuned client). " +
		"Failovers: distinct +switch-master events on any sentinel; each fault must cause exactly the failovers it needs. " +
		"The ratio is ours/tutorial. Each cell is one run.\n\n")
	b.WriteString(r.faultTable())
	b.WriteString("\nEvery run, as the fault checker reports it:\n\n")
	b.WriteString(r.detailTable())

	b.WriteString("\n## Footprint: the agent against redis-sentinel, idle\n\n")
	b.WriteString(r.footprintTable())

	b.WriteString("\n## Start → READY (`systemctl start` until `systemctl is-active` says active)\n\n")
	b.WriteString(r.startTable())

	b.WriteString("\n## Scale: the agent on 3, 5 and 7 boxes\n\n")
	b.WriteString(r.scaleTable())

	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

func (r *Report) faultTable() string {
	rows := [][]string{{"fault", "ours: client outage", "server outage", "lost", "failovers",
		"tutorial: client outage", "server outage", "lost", "failovers", "client outage ratio", "goal (PRODUCT.md)", "goal met"}}
	for _, f := range r.Faults {
		o, t := runCells(f.Ours), runCells(f.Tutorial)
		or := "n/a"
		if measured(f.Ours) && measured(f.Tutorial) {
			or = ratio(f.Ours.LongestOutage.Seconds(), f.Tutorial.LongestOutage.Seconds())
		}
		rows = append(rows, append(append(append([]string{f.Fault}, o...), t...), or, f.Goal.Text, f.Met()))
	}
	return table(rows) + "\n" + faultLegend
}

const faultLegend = "¹ the group had not converged when the checker gave up (one master, every other box " +
	"its replica in sync, every sentinel agreeing); loss is counted on the master most sentinels name. " +
	"² two servers acknowledged writes in overlapping spans of time (a double master). " +
	"³ converged, but not settled within 2 minutes: an agent's unit not active, or a sentinel not knowing every replica " +
	"and sentinel (the notes say which).\n"

func measured(r *Run) bool { return r != nil && r.Err == "" }

// runCells are a run's client outage, server outage, lost (the default
// client's, then the tuned one's) and failovers.
func runCells(r *Run) []string {
	switch {
	case r == nil:
		return []string{"n/a", "n/a", "n/a", "n/a"}
	case r.Err != "":
		return []string{"error", "error", "error", "error"}
	}
	server, lost := "-", strconv.Itoa(r.Lost)
	if r.Server != nil {
		server = secs(r.Server.LongestOutage)
		lost += " / " + strconv.Itoa(r.Server.Lost)
	}
	if !r.Converged {
		lost += " ¹"
	}
	if r.DoubleMaster {
		lost += " ²"
	}
	if r.Unsettled != "" && r.Converged {
		lost += " ³"
	}
	failovers := "-"
	if r.Failovers >= 0 {
		failovers = strconv.Itoa(r.Failovers)
	}
	return []string{secs(r.LongestOutage), server, lost, failovers}
}

// ratio is a/b for the table: "—" for 0/0, "∞" for x/0.
func ratio(a, b float64) string {
	switch {
	case a == 0 && b == 0:
		return "—"
	case b == 0:
		return "∞"
	case a == 0:
		return "0"
	}
	q := a / b
	if q >= 10 {
		return strconv.FormatFloat(math.Round(q), 'f', -1, 64)
	}
	return strconv.FormatFloat(q, 'g', 2, 64)
}

func (r *Report) detailTable() string {
	var reps []faultcheck.Report
	for _, f := range r.Faults {
		for _, s := range []struct {
			name string
			run  *Run
		}{{"ours", f.Ours}, {"tutorial", f.Tutorial}} {
			if !measured(s.run) {
				continue
			}
			rep := s.run.Report
			rep.Fault = s.name + ": " + f.Fault
			reps = append(reps, rep)
		}
	}
	seen := map[*Run]bool{}
	for _, f := range r.Faults {
		seen[f.Ours] = true
	}
	for _, s := range r.Scale {
		for _, run := range []*Run{s.Kill, s.PowerOff} {
			if measured(run) && !seen[run] { // the 3-box row repeats the fault table's runs
				rep := run.Report
				rep.Fault = fmt.Sprintf("ours, %d boxes: %s", s.Boxes, rep.Fault)
				reps = append(reps, rep)
			}
		}
	}
	if len(reps) == 0 {
		return "(none)\n"
	}
	return faultcheck.Table(reps)
}

func (r *Report) footprintTable() string {
	fp := r.Footprint
	procs := append(append([]Proc(nil), fp.Agent...), fp.Sentinel...)
	header := []string{""}
	for _, p := range procs {
		header = append(header, p.Label)
	}
	header = append(header, "goal (agent)", "met")
	rows := [][]string{header}
	nA := len(fp.Agent)
	add := func(name, goal string, cell func(Proc) string, ok func(Proc) bool) {
		row := []string{name}
		for _, p := range procs {
			if p.Err != "" {
				row = append(row, "error")
				continue
			}
			row = append(row, cell(p))
		}
		met := ""
		if ok != nil {
			met = "yes"
			for _, p := range fp.Agent {
				if p.Err != "" {
					met = "not measured"
				} else if !ok(p) {
					met = "**no**"
					break
				}
			}
		}
		rows = append(rows, append(row, goal, met))
	}
	add("RSS", "≤ 12 MiB", func(p Proc) string { return mib(p.RSS) }, func(p Proc) bool { return p.RSS <= GoalRSS })
	add("peak RSS (VmHWM)", "", func(p Proc) string { return mib(p.HWM) }, nil)
	add(fmt.Sprintf("CPU over %.0f s idle (%% of a core)", fp.Window.Seconds()), "≤ 0.2 %",
		func(p Proc) string { return fmt.Sprintf("%.3f %%", p.CPU) }, func(p Proc) bool { return p.CPU <= GoalCPU })
	add("threads", "", func(p Proc) string { return strconv.Itoa(p.Threads) }, nil)
	add("open fds", "", func(p Proc) string { return strconv.Itoa(p.FDs) }, nil)
	add("goroutines", "", func(p Proc) string {
		if p.Goroutines < 0 {
			return "n/a"
		}
		return strconv.Itoa(p.Goroutines)
	}, nil)
	bin := []string{"binary"}
	for i := range procs {
		if i < nA {
			bin = append(bin, fp.AgentBinary.String())
		} else {
			bin = append(bin, fp.SentinelBinary.String())
		}
	}
	binMet := "yes"
	switch {
	case fp.AgentBinary.Size == 0:
		binMet = "not measured"
	case fp.AgentBinary.Size > GoalBinary || !fp.AgentBinary.Static || !fp.AgentBinary.Stripped:
		binMet = "**no**"
	}
	rows = append(rows, append(bin, "≤ 12 MiB, static, stripped", binMet))
	out := table(rows)
	if len(fp.AgentSentinel) > 0 {
		var parts []string
		for _, p := range fp.AgentSentinel {
			if p.Err == "" {
				parts = append(parts, fmt.Sprintf("%s: RSS %s, CPU %.3f %%", p.Label, mib(p.RSS), p.CPU))
			}
		}
		if len(parts) > 0 {
			out += "\nThe agent runs a sentinel of its own besides (the same redis-server binary in sentinel mode), " +
				"measured in the same window: " + strings.Join(parts, "; ") + ".\n"
		}
	}
	return out
}

func (r *Report) startTable() string {
	rows := [][]string{{"case", "redis-ha-agent", "Debian redis-server unit", "Debian redis-sentinel unit", "goal (agent)", "met"}}
	for _, s := range r.Start {
		goal, met := "", ""
		a := s.Agent
		switch {
		case s.Overhead:
			goal = "≤ 1 s plus the data load"
			switch {
			case a.Err != "" || a.D == 0:
				met = "not measured"
			case a.Load == 0:
				met = "load not logged"
			case a.D-a.Load <= GoalReadyMax:
				met = fmt.Sprintf("yes (%s beyond the load)", secs(a.D-a.Load))
			default:
				met = fmt.Sprintf("**no** (%s beyond the load)", secs(a.D-a.Load))
			}
		case a.D > 0 || a.Err != "":
			goal = "≤ 1 s"
			switch {
			case a.Err != "":
				met = "not measured"
			case a.D <= GoalReadyMax:
				met = "yes"
			default:
				met = "**no**"
			}
		}
		rows = append(rows, []string{s.Case, a.cell(), s.Redis.cell(), s.Sentinel.cell(), goal, met})
	}
	return table(rows)
}

func (r *Report) scaleTable() string {
	rows := [][]string{{"boxes", "redis kill -9: client outage", "server outage", "lost", "failovers",
		"power-off: client outage", "server outage", "lost", "failovers", "agent RSS, master", "agent RSS, replicas (highest)"}}
	for _, s := range r.Scale {
		if s.Err != "" && !measured(s.Kill) && !measured(s.PowerOff) && s.AgentRSSMaster == 0 {
			rows = append(rows, append([]string{strconv.Itoa(s.Boxes)}, slices.Repeat([]string{"error"}, 10)...))
			continue
		}
		row := append(append([]string{strconv.Itoa(s.Boxes)}, runCells(s.Kill)...), runCells(s.PowerOff)...)
		rows = append(rows, append(row, mibOrNA(s.AgentRSSMaster), mibOrNA(s.AgentRSSReplica)))
	}
	return table(rows)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func mib(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func mibOrNA(n int64) string {
	if n <= 0 {
		return "n/a"
	}
	return mib(n)
}

// table renders rows (the first is the header) as a Markdown table with
// aligned columns.
func table(rows [][]string) string {
	width := make([]int, len(rows[0]))
	for i := range width {
		width[i] = 3 // a separator needs three dashes
	}
	for _, cells := range rows {
		for i, c := range cells {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-len([]rune(c))) + " |")
		}
		b.WriteString("\n")
	}
	line(rows[0])
	sep := make([]string, len(width))
	for i, w := range width {
		sep[i] = strings.Repeat("-", w)
	}
	line(sep)
	for _, cells := range rows[1:] {
		line(cells)
	}
	return b.String()
}
