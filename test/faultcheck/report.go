package faultcheck

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxLostKeys bounds Report.LostKeys; Lost has the full count.
const maxLostKeys = 20

// Report is what one faulted run did to a client.
type Report struct {
	Fault  string
	Acked  int // writes the group acknowledged
	Failed int // attempts that errored or timed out (their outcome is unknown)
	Lost   int // acknowledged keys missing from the final master
	// LostKeys is the first few lost keys.
	LostKeys []string
	// LongestOutage is the longest stretch with no acknowledged write among
	// those ending after the fault mark (the whole run without a mark). A
	// stretch runs from one ack to the next, so the one containing the fault
	// starts at the last ack before it.
	LongestOutage time.Duration
	OutageStart   time.Time
	// DoubleMaster: two servers acknowledged writes in overlapping spans of
	// time. A run that fails over and back (A→B→A) reads the same: the bench
	// injects one fault per run.
	DoubleMaster       bool
	DoubleMasterWindow time.Duration
	Converged          bool
	ConvergeDetail     string
	Master             string // the master Check read back from
	Duration           time.Duration
	// Server is the tuned client's report of the same run (StartTuned), if
	// one wrote beside the default client: its outage is the server's,
	// the first write the new master accepted.
	Server *Report
	// Failovers is how many failovers the sentinels announced during the
	// run (a SwitchWatch's Failovers); -1 when nobody counted.
	Failovers int
}

// Analyze fills the fields that follow from the log alone; Check adds
// convergence and loss.
func Analyze(l *WriteLog) Report {
	r := Report{Fault: l.Fault, Duration: l.Stopped.Sub(l.Started), Failovers: -1}
	for _, rec := range l.Records {
		if rec.Acked {
			r.Acked++
		} else {
			r.Failed++
		}
	}
	r.OutageStart, r.LongestOutage = outage(l)
	r.DoubleMasterWindow = doubleMaster(l.Records)
	r.DoubleMaster = r.DoubleMasterWindow > 0
	return r
}

// outage returns the longest gap between consecutive acks (the start and the
// stop of the writer count as acks) that ends after the fault mark.
func outage(l *WriteLog) (start time.Time, longest time.Duration) {
	prev := l.Started
	consider := func(end time.Time) {
		if d := end.Sub(prev); end.After(l.FaultAt) && d > longest {
			start, longest = prev, d
		}
		prev = end
	}
	for _, rec := range l.Records {
		if rec.Acked {
			consider(rec.End)
		}
	}
	consider(l.Stopped)
	return start, longest
}

// doubleMaster returns how long two servers were both acknowledging writes:
// the longest overlap of any two servers' [first ack, last ack] spans. With
// one writer, acks are sequential, so an overlap means an ack from the old
// master came after the first ack from the new one.
func doubleMaster(recs []Record) time.Duration {
	type span struct{ first, last time.Time }
	spans := map[string]*span{}
	var servers []string
	for _, r := range recs {
		if !r.Acked || r.Server == "" {
			continue
		}
		s, ok := spans[r.Server]
		if !ok {
			s = &span{first: r.End}
			spans[r.Server] = s
			servers = append(servers, r.Server)
		}
		s.last = r.End
	}
	var longest time.Duration
	for i, a := range servers {
		for _, b := range servers[i+1:] {
			sa, sb := spans[a], spans[b]
			from, to := later(sa.first, sb.first), earlier(sa.last, sb.last)
			if d := to.Sub(from); d > longest {
				longest = d
			}
		}
	}
	return longest
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// jsonReport is Report on the wire: snake_case, durations in milliseconds.
type jsonReport struct {
	Fault              string    `json:"fault"`
	Acked              int       `json:"acked"`
	Failed             int       `json:"failed"`
	Lost               int       `json:"lost"`
	LostKeys           []string  `json:"lost_keys"`
	LongestOutageMS    float64   `json:"longest_outage_ms"`
	OutageStart        time.Time `json:"outage_start,omitzero"`
	DoubleMaster       bool      `json:"double_master"`
	DoubleMasterWindow float64   `json:"double_master_window_ms"`
	Converged          bool      `json:"converged"`
	ConvergeDetail     string    `json:"converge_detail"`
	Master             string    `json:"master"`
	DurationMS         float64   `json:"duration_ms"`
	Failovers          int       `json:"failovers"`
	Server             *Report   `json:"server,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// MarshalJSON writes the snake_case form with durations in milliseconds.
func (r Report) MarshalJSON() ([]byte, error) {
	keys := r.LostKeys
	if keys == nil {
		keys = []string{}
	}
	return json.Marshal(jsonReport{
		Fault: r.Fault, Acked: r.Acked, Failed: r.Failed, Lost: r.Lost, LostKeys: keys,
		LongestOutageMS: ms(r.LongestOutage), OutageStart: r.OutageStart,
		DoubleMaster: r.DoubleMaster, DoubleMasterWindow: ms(r.DoubleMasterWindow),
		Converged: r.Converged, ConvergeDetail: r.ConvergeDetail, Master: r.Master,
		DurationMS: ms(r.Duration), Failovers: r.Failovers, Server: r.Server,
	})
}

// JSON is the report, indented.
func (r Report) JSON() []byte {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		panic(err) // only strings, numbers and times: cannot happen
	}
	return b
}

var tableHeader = []string{"fault", "client outage", "server outage", "acked", "lost", "failovers", "double master", "converged"}

func (r Report) cells() []string {
	fault := r.Fault
	if fault == "" {
		fault = "-"
	}
	dm := "no"
	if r.DoubleMaster {
		dm = "yes " + secs(r.DoubleMasterWindow)
	}
	conv := "yes"
	if !r.Converged {
		conv = "no"
	}
	server, lost := "-", strconv.Itoa(r.Lost)
	if r.Server != nil {
		server = secs(r.Server.LongestOutage)
		lost += " / " + strconv.Itoa(r.Server.Lost)
	}
	failovers := "-"
	if r.Failovers >= 0 {
		failovers = strconv.Itoa(r.Failovers)
	}
	return []string{fault, secs(r.LongestOutage), server, strconv.Itoa(r.Acked), lost, failovers, dm, conv}
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// Row is the report as one Markdown table row.
func (r Report) Row() string { return row(r.cells(), nil) }

// Table renders reports under a header, columns aligned, as Markdown.
func Table(reports []Report) string {
	rows := [][]string{tableHeader}
	for _, r := range reports {
		rows = append(rows, r.cells())
	}
	width := make([]int, len(tableHeader))
	for _, cells := range rows {
		for i, c := range cells {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	b.WriteString(row(rows[0], width) + "\n")
	sep := make([]string, len(width))
	for i, w := range width {
		sep[i] = strings.Repeat("-", w)
	}
	b.WriteString(row(sep, width) + "\n")
	for _, cells := range rows[1:] {
		b.WriteString(row(cells, width) + "\n")
	}
	return b.String()
}

// row joins cells as "| a | b |", padding each to width when given.
func row(cells []string, width []int) string {
	var b strings.Builder
	b.WriteString("|")
	for i, c := range cells {
		if width != nil {
			c += strings.Repeat(" ", width[i]-len([]rune(c)))
		}
		b.WriteString(" " + c + " |")
	}
	return b.String()
}

// sortedKeys is used for deterministic detail strings.
func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
