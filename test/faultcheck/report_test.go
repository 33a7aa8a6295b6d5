package faultcheck

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// ev is one synthetic attempt: it ends at ms; server "" with ok means an
// ack whose server is unknown.
type ev struct {
	ms     int
	ok     bool
	server string
}

// synth builds a log that starts at 0, stops at stop and has a fault mark
// at fault (no mark if fault < 0).
func synth(stop, fault int, evs ...ev) *WriteLog {
	l := &WriteLog{RunID: "test", Rate: 200, Started: at(0), Stopped: at(stop)}
	if fault >= 0 {
		l.Fault, l.FaultAt = "f", at(fault)
	}
	for i, e := range evs {
		r := Record{Seq: int64(i + 1), Start: at(e.ms - 1), End: at(e.ms), Acked: e.ok, Server: e.server}
		if !e.ok {
			r.Err = "i/o timeout"
		}
		l.Records = append(l.Records, r)
	}
	return l
}

// every returns acks by server every step ms in [from, to].
func every(from, to, step int, server string) []ev {
	var out []ev
	for ms := from; ms <= to; ms += step {
		out = append(out, ev{ms, true, server})
	}
	return out
}

func fails(from, to, step int) []ev {
	var out []ev
	for ms := from; ms <= to; ms += step {
		out = append(out, ev{ms, false, ""})
	}
	return out
}

func cat(parts ...[]ev) []ev {
	var out []ev
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestOutage(t *testing.T) {
	tests := []struct {
		name      string
		log       *WriteLog
		wantStart int
		wantMS    int
	}{
		{
			name:   "steady without a mark: the longest step",
			log:    synth(102, -1, every(5, 100, 5, "a")...),
			wantMS: 5, wantStart: 0,
		},
		{
			name:   "without a mark the startup gap counts",
			log:    synth(1000, -1, every(400, 1000, 5, "a")...),
			wantMS: 400, wantStart: 0,
		},
		{
			name:   "the gap containing the mark starts at the last ack before it",
			log:    synth(1600, 50, cat(every(5, 45, 5, "a"), fails(300, 1300, 500), every(1550, 1600, 5, "b"))...),
			wantMS: 1505, wantStart: 45,
		},
		{
			name:   "a longer gap before the mark is not the fault's",
			log:    synth(600, 400, cat(every(5, 10, 5, "a"), every(310, 350, 5, "a"), every(450, 600, 5, "a"))...),
			wantMS: 100, wantStart: 350,
		},
		{
			name:   "no ack after the fault: the outage runs to the stop",
			log:    synth(5000, 100, cat(every(5, 95, 5, "a"), fails(600, 4600, 1000))...),
			wantMS: 4905, wantStart: 95,
		},
		{
			name:   "no ack at all",
			log:    synth(3000, -1, fails(1000, 3000, 1000)...),
			wantMS: 3000, wantStart: 0,
		},
		{
			name:   "a gap after recovery longer than the fault's",
			log:    synth(3000, 100, cat(every(5, 100, 5, "a"), every(400, 500, 5, "b"), every(1500, 3000, 5, "b"))...),
			wantMS: 1000, wantStart: 500,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, d := outage(tt.log)
			if want := time.Duration(tt.wantMS) * time.Millisecond; d != want || !start.Equal(at(tt.wantStart)) {
				t.Errorf("outage = %v from +%v, want %v from +%dms", d, start.Sub(t0), want, tt.wantStart)
			}
		})
	}
}

func TestDoubleMaster(t *testing.T) {
	tests := []struct {
		name   string
		evs    []ev
		wantMS int // 0 = no double master
	}{
		{"one server", every(0, 1000, 5, "a"), 0},
		{"clean switch", cat(every(0, 500, 5, "a"), fails(600, 900, 100), every(1000, 1500, 5, "b")), 0},
		{"clean switch with no gap", cat(every(0, 500, 5, "a"), every(505, 1000, 5, "b")), 0},
		{
			"old master acks after the new one's first ack",
			cat(every(0, 100, 5, "a"), every(105, 200, 5, "b"), []ev{{210, true, "a"}}, every(220, 300, 5, "b")),
			105, // b's first ack at 105 .. a's last at 210
		},
		{
			"alternating until the old master stops",
			cat(every(0, 100, 10, "a"), every(105, 405, 20, "b"), every(115, 395, 20, "a"), every(500, 600, 10, "b")),
			290, // 105 .. 395
		},
		{
			"unknown servers and failures do not count",
			cat(every(0, 100, 5, "a"), []ev{{150, true, ""}, {160, false, "b"}}, every(200, 300, 5, "a")),
			0,
		},
		{
			"three servers: the widest overlap",
			cat(every(0, 100, 10, "a"), []ev{{110, true, "b"}, {120, true, "a"}, {200, true, "c"}, {300, true, "b"}, {400, true, "c"}}),
			100, // a–b overlap 110..120, b–c 200..300
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := synth(1000, -1, tt.evs...).Records
			sortByEnd(recs)
			got := doubleMaster(recs)
			if want := time.Duration(tt.wantMS) * time.Millisecond; got != want {
				t.Errorf("double-master window = %v, want %v", got, want)
			}
		})
	}
}

// sortByEnd orders synthetic records as a single writer would produce them.
func sortByEnd(recs []Record) {
	for i := 1; i < len(recs); i++ {
		for j := i; j > 0 && recs[j].End.Before(recs[j-1].End); j-- {
			recs[j], recs[j-1] = recs[j-1], recs[j]
		}
	}
}

func TestAnalyze(t *testing.T) {
	l := synth(2000, 100, cat(every(5, 100, 5, "a"), fails(200, 1200, 500), every(1500, 2000, 5, "b"))...)
	r := Analyze(l)
	if r.Acked != 20+101 || r.Failed != 3 {
		t.Errorf("acked/failed = %d/%d, want 121/3", r.Acked, r.Failed)
	}
	if r.Fault != "f" || r.Duration != 2*time.Second || r.LongestOutage != 1400*time.Millisecond || r.DoubleMaster {
		t.Errorf("report = %+v", r)
	}
	if got := l.AckedKeys(); len(got) != 121 || got[0] != "rha:test:1" || got[20] != "rha:test:24" {
		t.Errorf("acked keys = %d, first %q, 21st %q", len(got), got[0], got[20])
	}
}

func TestTable(t *testing.T) {
	reports := []Report{
		{Fault: "kill-9 redis", LongestOutage: 1520 * time.Millisecond, Acked: 6021, Lost: 0, Converged: true,
			Failovers: 1, Server: &Report{LongestOutage: 220 * time.Millisecond, Lost: 2}},
		{Fault: "sentinel failover", LongestOutage: 35 * time.Millisecond, Acked: 1800, Lost: 212,
			DoubleMaster: true, DoubleMasterWindow: 1234 * time.Millisecond, Converged: true, Failovers: 2},
		{LongestOutage: 61 * time.Second, Acked: 3, Lost: 12345, Failovers: -1},
	}
	want := strings.Join([]string{
		"| fault             | client outage | server outage | acked | lost  | failovers | double master | converged |",
		"| ----------------- | ------------- | ------------- | ----- | ----- | --------- | ------------- | --------- |",
		"| kill-9 redis      | 1.52s         | 0.22s         | 6021  | 0 / 2 | 1         | no            | yes       |",
		"| sentinel failover | 0.04s         | -             | 1800  | 212   | 2         | yes 1.23s     | yes       |",
		"| -                 | 61.00s        | -             | 3     | 12345 | -         | no            | no        |",
	}, "\n") + "\n"
	if got := Table(reports); got != want {
		t.Errorf("Table:\n%s\nwant:\n%s", got, want)
	}
	if got, want := reports[0].Row(), "| kill-9 redis | 1.52s | 0.22s | 6021 | 0 / 2 | 1 | no | yes |"; got != want {
		t.Errorf("Row = %q, want %q", got, want)
	}
	if got := Table(nil); !strings.HasPrefix(got, "| fault | client outage |") || strings.Count(got, "\n") != 2 {
		t.Errorf("empty Table = %q", got)
	}
}

func TestFailovers(t *testing.T) {
	a, b, c := "10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"
	sw := func(sec int, sentinel, from, to string) Switch {
		return Switch{At: t0.Add(time.Duration(sec) * time.Second), Sentinel: sentinel, From: from, To: to}
	}
	tests := []struct {
		name string
		in   []Switch
		want int
	}{
		{"none", nil, 0},
		{"one failover, told by every sentinel", []Switch{sw(1, "s2", a, b), sw(1, "s3", a, b), sw(9, "s1", a, b)}, 1},
		// The bug of issue #10: the rebooted box's sentinel demotes the new
		// master, the others fail over back to the rebooted box.
		{"a second failover back", []Switch{sw(1, "s2", a, c), sw(1, "s3", a, c), sw(20, "s2", c, a), sw(20, "s3", c, a)}, 2},
		{"a chain", []Switch{sw(1, "s1", a, b), sw(5, "s2", b, c), sw(6, "s1", b, c)}, 2},
		{"a sentinel catching up from further back", []Switch{sw(1, "s1", a, b), sw(5, "s2", b, c), sw(9, "s3", a, c)}, 2},
		// Seen with issue #10's bug: the new master, demoted to a replica of
		// itself, promoted again by a second failover.
		{"a failover to the same master", []Switch{sw(1, "s2", a, c), sw(1, "s3", a, c), sw(20, "s2", c, c)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Failovers(tt.in); len(got) != tt.want {
				t.Errorf("Failovers = %+v, want %d", got, tt.want)
			}
		})
	}
}

func TestReportJSON(t *testing.T) {
	r := Report{Fault: "x", Acked: 10, Lost: 1, LostKeys: []string{"rha:a:3"},
		LongestOutage: 1500500 * time.Microsecond, Converged: true, Master: "10.0.0.12:6379", Duration: 30 * time.Second}
	var got map[string]any
	if err := json.Unmarshal(r.JSON(), &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"fault": "x", "acked": 10.0, "lost": 1.0, "longest_outage_ms": 1500.5, "double_master": false,
		"converged": true, "master": "10.0.0.12:6379", "duration_ms": 30000.0,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if _, ok := got["outage_start"]; ok {
		t.Errorf("zero outage_start should be omitted: %v", got)
	}
	empty, _ := json.Marshal(Report{})
	if !strings.Contains(string(empty), `"lost_keys":[]`) {
		t.Errorf("lost_keys should be [] not null: %s", empty)
	}
}

func TestWithoutSentinelOn(t *testing.T) {
	tg := Target{Sentinels: []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"}}
	got := tg.WithoutSentinelOn("10.0.0.2").Sentinels
	if want := []string{"10.0.0.1:26379", "10.0.0.3:26379"}; !slices.Equal(got, want) {
		t.Errorf("WithoutSentinelOn = %v, want %v", got, want)
	}
	if len(tg.Sentinels) != 3 {
		t.Errorf("the original target changed: %v", tg.Sentinels)
	}
}

func TestAckSpans(t *testing.T) {
	t0 := time.Unix(100, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	l := &WriteLog{Records: []Record{
		{Acked: true, Server: "a", End: at(1)},
		{Acked: true, Server: "a", End: at(2)},
		{Acked: false, Err: "refused", End: at(3)},
		{Acked: true, Server: "b", End: at(4)},
		{Acked: true, Server: "a", End: at(5)},
	}}
	want := []AckSpan{{"a", 2, at(1), at(2)}, {"b", 1, at(4), at(4)}, {"a", 1, at(5), at(5)}}
	if got := l.AckSpans(); !slices.Equal(got, want) {
		t.Errorf("AckSpans = %+v, want %+v", got, want)
	}
}
