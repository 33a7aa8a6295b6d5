package bench

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseSample(t *testing.T) {
	for _, c := range []struct {
		file string
		want Sample
	}{
		{"proc/agent-t0.txt", Sample{Uptime: 4012.51, Ticks: 153 + 61, RSS: 9668 << 10, HWM: 11544 << 10, Threads: 8, FDs: 14}},
		// A command name with spaces, a colon and brackets.
		{"proc/sentinel.txt", Sample{Uptime: 4012.50, Ticks: 21 + 37, RSS: 11572 << 10, HWM: 11636 << 10, Threads: 5, FDs: 12}},
	} {
		t.Run(c.file, func(t *testing.T) {
			got, err := ParseSample(readTestdata(t, c.file))
			if err != nil || got != c.want {
				t.Errorf("ParseSample = %+v, %v\nwant %+v", got, err, c.want)
			}
		})
	}
	// A process that exited between the lines leaves some out.
	partial := strings.Join(strings.Split(readTestdata(t, "proc/agent-t0.txt"), "\n")[:3], "\n")
	if s, err := ParseSample(partial); err == nil {
		t.Errorf("ParseSample of a partial sample = %+v, want an error", s)
	}
}

func TestCPUPercent(t *testing.T) {
	a, err := ParseSample(readTestdata(t, "proc/agent-t0.txt"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseSample(readTestdata(t, "proc/agent-t1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// 6 ticks (0.06 s of CPU) over 60.02 s.
	if got, want := CPUPercent(a, b), 0.06/60.02*100; math.Abs(got-want) > 1e-9 {
		t.Errorf("CPUPercent = %v, want %v", got, want)
	}
	if got := CPUPercent(b, a); got != 0 {
		t.Errorf("CPUPercent backwards = %v, want 0", got)
	}
}

func TestGoroutines(t *testing.T) {
	m := readTestdata(t, "proc/metrics.txt")
	if got := Goroutines(m); got != 23 {
		t.Errorf("Goroutines = %d, want 23", got)
	}
	without := strings.ReplaceAll(m, "redis_ha_goroutines 23", "")
	if got := Goroutines(without); got != -1 {
		t.Errorf("Goroutines without the metric = %d, want -1", got)
	}
}

func TestLoadTime(t *testing.T) {
	log := readTestdata(t, "proc/redis-server.log")
	aof := "level=INFO msg=redis line=\"* DB loaded from append only file: 0.250 seconds\""
	for _, c := range []struct {
		name, log string
		want      time.Duration
	}{
		{"rdb", log, 3673 * time.Millisecond},
		{"aof, the last load wins", log + aof, 250 * time.Millisecond},
		{"none", "", 0},
	} {
		if got := LoadTime(c.log); got != c.want {
			t.Errorf("%s: LoadTime = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestInspectBinary(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := InspectBinary(exe)
	fi, serr := os.Stat(exe)
	if err != nil || serr != nil || b.Size != fi.Size() {
		t.Errorf("InspectBinary(%s) = %+v, %v (stat: %v)", exe, b, err, serr)
	}
	if _, err := InspectBinary("testdata/proc/metrics.txt"); err == nil {
		t.Error("InspectBinary of a text file: no error")
	}
}
