package bench

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture the bench runs on.
const userHZ = 100

// Sample is one look at a process through /proc, taken inside its box.
type Sample struct {
	Uptime   float64 // seconds, /proc/uptime: the clock the CPU share is over
	Ticks    int64   // utime + stime, all threads
	RSS, HWM int64   // bytes
	Threads  int
	FDs      int
}

// SampleScript prints what ParseSample reads, for one pid, in one exec.
func SampleScript(pid int) string {
	return fmt.Sprintf(`p=/proc/%d
read up _ </proc/uptime && echo "uptime $up"
echo "stat $(cat $p/stat)"
grep -E '^(VmRSS|VmHWM|Threads):' $p/status
echo "fds $(ls $p/fd | wc -l)"`, pid)
}

// ParseSample reads SampleScript's output.
func ParseSample(out string) (Sample, error) {
	var s Sample
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), " ")
		if k, v, colon := strings.Cut(sc.Text(), ":"); colon && !strings.Contains(k, " ") {
			key, val, ok = k, strings.TrimSpace(v), true
		}
		if !ok {
			continue
		}
		var err error
		switch key {
		case "uptime":
			s.Uptime, err = strconv.ParseFloat(val, 64)
		case "stat":
			s.Ticks, err = statTicks(val)
		case "VmRSS":
			s.RSS, err = kB(val)
		case "VmHWM":
			s.HWM, err = kB(val)
		case "Threads":
			s.Threads, err = strconv.Atoi(val)
		case "fds":
			s.FDs, err = strconv.Atoi(val)
		default:
			continue
		}
		if err != nil {
			return s, fmt.Errorf("sample: %s: %w", key, err)
		}
		seen[key] = true
	}
	for _, k := range []string{"uptime", "stat", "VmRSS", "VmHWM", "Threads", "fds"} {
		if !seen[k] {
			return s, fmt.Errorf("sample: no %s in %q", k, out)
		}
	}
	return s, nil
}

// statTicks is utime + stime from a /proc/<pid>/stat line. The command name
// (field 2) may hold spaces and parentheses, so fields count from its end.
func statTicks(line string) (int64, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, fmt.Errorf("no command name in %q", line)
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name", len(f))
	}
	u, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, err
	}
	s, err := strconv.ParseInt(f[12], 10, 64)
	return u + s, err
}

func kB(v string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
	return n << 10, err
}

// CPUPercent is the share of one core the process used between a and b.
func CPUPercent(a, b Sample) float64 {
	wall := b.Uptime - a.Uptime
	if wall <= 0 {
		return 0
	}
	return float64(b.Ticks-a.Ticks) / userHZ / wall * 100
}

// Goroutines reads redis_ha_goroutines from the agent's /metrics; -1 when
// the agent does not expose it.
func Goroutines(metrics string) int {
	for _, l := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(l, "redis_ha_goroutines "); ok {
			if n, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return int(n)
			}
		}
	}
	return -1
}

var loadedRe = regexp.MustCompile(`DB loaded from (?:disk|append only file): ([0-9.]+) seconds`)

// LoadTime is the last data load redis logged in log; 0 when none.
func LoadTime(log string) time.Duration {
	m := loadedRe.FindAllStringSubmatch(log, -1)
	if len(m) == 0 {
		return 0
	}
	s, err := strconv.ParseFloat(m[len(m)-1][1], 64)
	if err != nil {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

// InspectBinary reads an executable's size and whether it is static (no
// program interpreter) and stripped (no symbol table).
func InspectBinary(path string) (Binary, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Binary{}, err
	}
	f, err := elf.Open(path)
	if err != nil {
		return Binary{}, fmt.Errorf("inspect %s: %w", path, err)
	}
	defer f.Close()
	b := Binary{Path: path, Size: fi.Size(), Static: true}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b.Static = false
		}
	}
	if _, err := f.Symbols(); errors.Is(err, elf.ErrNoSymbols) {
		b.Stripped = true
	}
	if libs, err := f.ImportedLibraries(); err == nil {
		b.Libs = len(libs)
	}
	return b, nil
}
