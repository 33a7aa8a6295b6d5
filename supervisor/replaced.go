package supervisor

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A package upgrade replaces a program on disk (a new file renamed over the
// old one) while the process started from it keeps running the old one:
// Replaced tells, so that the caller can say a restart is pending.

// fileID is what identifies a file's content on disk: a rename over it
// changes the inode, an in-place rewrite the change time.
type fileID struct {
	dev, ino uint64
	ctime    time.Time
}

func statID(path string) (fileID, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: st.Dev, ino: st.Ino, ctime: time.Unix(st.Ctim.Sec, st.Ctim.Nsec)}, nil
}

// clockSlack covers the start time's precision: /proc/stat's boot time is
// whole seconds.
const clockSlack = 2 * time.Second

// Replaced reports whether the executable the process runs has been
// replaced on disk since it started, and how that shows. A child started by
// this agent is compared with the file as it was at its start; an adopted
// one through /proc/<pid>/exe ("(deleted)", another inode) or, where that
// link is closed to the agent (another user's process, no CAP_SYS_PTRACE),
// by the file's change time against the process's start time.
func (p *Process) Replaced() (bool, string) {
	now, err := statID(p.exe)
	if err != nil {
		return false, ""
	}
	if p.exeAtStart != nil {
		if now != *p.exeAtStart {
			return true, p.exe + " replaced on disk since the process started"
		}
		return false, ""
	}
	procExe := fmt.Sprintf("/proc/%d/exe", p.pid)
	if link, err := os.Readlink(procExe); err == nil {
		if strings.HasSuffix(link, " (deleted)") {
			return true, "runs " + link
		}
		if run, err := statID(procExe); err == nil && (run.dev != now.dev || run.ino != now.ino) {
			return true, p.exe + " replaced on disk since it started"
		}
		return false, ""
	}
	started, err := startTime(p.pid)
	if err == nil && now.ctime.After(started.Add(clockSlack)) {
		return true, fmt.Sprintf("%s changed at %s, after it started", p.exe, now.ctime.UTC().Format(time.RFC3339))
	}
	return false, ""
}

// startTime is when pid started: its start in clock ticks after boot
// (/proc/<pid>/stat field 22; USER_HZ is 100 on Linux) plus the boot time.
func startTime(pid int) (time.Time, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return time.Time{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// After the name: state is field 3, starttime field 22.
	if len(f) < 20 {
		return time.Time{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("/proc/%d/stat: starttime: %w", pid, err)
	}
	boot, err := bootTime()
	if err != nil {
		return time.Time{}, err
	}
	return boot.Add(time.Duration(ticks) * time.Second / 100), nil
}

func bootTime() (time.Time, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("/proc/stat: btime: %w", err)
			}
			return time.Unix(s, 0), nil
		}
	}
	return time.Time{}, fmt.Errorf("/proc/stat: no btime")
}
