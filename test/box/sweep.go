package box

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Prefix starts the name of everything a bench creates: namespaces, cgroups,
// machines, work directories. Nothing else on the host may use it.
const Prefix = "rha-"

// WorkRoot holds the boxes' overlays (upper, work, merged) while a bench runs.
const WorkRoot = "/var/tmp/rha-bench"

const netnsDir = "/run/netns"

// Sweep removes everything named with prefix that a bench left behind: it
// kills the boxes (their whole cgroups), unmounts their overlays, deletes the
// namespaces and removes the work directories. It is what every Bench's
// cleanup runs for its own prefix, and what a new run does for a killed one.
// The caller holds the bench lock or owns prefix alone.
func Sweep(prefix string) error {
	var errs []error
	for _, cg := range boxCgroups(prefix) {
		errs = append(errs, killCgroup(cg))
	}
	for _, pid := range nspawnPids(prefix) {
		killTree(pid)
	}
	for _, dir := range workDirs(prefix) {
		for _, m := range mountsUnder(dir) {
			errs = append(errs, unmount(m))
		}
	}
	// Deepest first: a box's sub-cgroups before the box's own.
	for _, cg := range boxCgroups(prefix) {
		errs = append(errs, removeCgroupTree(cg))
	}
	for _, ns := range netnsNames(prefix) {
		if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("sweep: ip netns delete %s: %v: %s", ns, err, strings.TrimSpace(string(out))))
		}
	}
	for _, dir := range workDirs(prefix) {
		if len(mountsUnder(dir)) == 0 {
			errs = append(errs, os.RemoveAll(dir))
		}
	}
	// nspawn's own per-machine bookkeeping, normally removed by nspawn itself.
	for _, pat := range []string{"/run/systemd/nspawn/propagate/" + prefix + "*", "/run/systemd/nspawn/unix-export/" + prefix + "*"} {
		matches, _ := filepath.Glob(pat)
		for _, m := range matches {
			os.RemoveAll(m)
		}
	}
	if left := Leftovers(prefix); len(left) > 0 {
		errs = append(errs, fmt.Errorf("sweep: still there: %s", strings.Join(left, "; ")))
	}
	if prefix == Prefix {
		os.Remove(WorkRoot) // only if empty
	}
	return errors.Join(errs...)
}

// Leftovers describes what is still there under prefix: processes, mounts,
// namespaces, cgroups and work directories. Empty after a clean run.
func Leftovers(prefix string) []string {
	var out []string
	for _, pid := range nspawnPids(prefix) {
		out = append(out, fmt.Sprintf("process %d (systemd-nspawn)", pid))
	}
	for _, cg := range boxCgroups(prefix) {
		out = append(out, "cgroup "+cg)
	}
	for _, dir := range workDirs(prefix) {
		for _, m := range mountsUnder(dir) {
			out = append(out, "mount "+m)
		}
		out = append(out, "dir "+dir)
	}
	for _, ns := range netnsNames(prefix) {
		out = append(out, "netns "+ns)
	}
	return out
}

// cgroupHierarchies are the mounted hierarchies a box gets its own cgroup in:
// the unified one (at the root on a pure cgroup2 host, under unified/ on a
// hybrid one) and the named systemd one of a hybrid host. A box needs its own
// cgroup because nspawn --keep-unit builds the box's tree ("payload",
// "supervisor") inside the cgroup it is started from: two boxes started from
// the same one would share it.
func cgroupHierarchies() []string {
	var out []string
	for _, d := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if _, err := os.Stat(filepath.Join(d, "cgroup.controllers")); err == nil {
			out = append(out, d)
			break
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/systemd/tasks"); err == nil {
		out = append(out, "/sys/fs/cgroup/systemd")
	}
	return out
}

func boxCgroups(prefix string) []string {
	var out []string
	for _, h := range cgroupHierarchies() {
		m, _ := filepath.Glob(filepath.Join(h, prefix+"*"))
		out = append(out, m...)
	}
	return out
}

// killCgroup kills every process of a cgroup tree and waits until it is
// empty.
func killCgroup(cg string) error {
	if err := os.WriteFile(filepath.Join(cg, "cgroup.kill"), []byte("1"), 0); err != nil {
		for _, pid := range cgroupPids(cg) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(cgroupPids(cg)) > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("sweep: cgroup %s: processes survive SIGKILL: %v", cg, cgroupPids(cg))
		}
		for _, pid := range cgroupPids(cg) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// cgroupPids lists the processes of a cgroup and all its descendants.
func cgroupPids(cg string) []int {
	var pids []int
	filepath.WalkDir(cg, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

func removeCgroupTree(cg string) error {
	var dirs []string
	filepath.WalkDir(cg, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var err error
	for i := len(dirs) - 1; i >= 0; i-- {
		if e := os.Remove(dirs[i]); e != nil && !errors.Is(e, os.ErrNotExist) {
			err = fmt.Errorf("sweep: remove cgroup: %w", e)
		}
	}
	return err
}

// nspawnPids finds systemd-nspawn processes running a machine named with
// prefix, wherever they are: a box whose cgroup could not be set up is still
// found.
func nspawnPids(prefix string) []int {
	var out []int
	for _, pid := range allPids() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "systemd-nspawn" {
			continue
		}
		for _, a := range args {
			if strings.HasPrefix(a, "--machine="+prefix) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// killTree SIGKILLs a process's children, then the process: the order
// BENCH-FACTS asks for a box (its systemd, then nspawn).
func killTree(pid int) {
	for _, c := range childPids(pid) {
		syscall.Kill(c, syscall.SIGKILL)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

func allPids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// childPids lists the direct children of pid, from /proc/*/stat.
func childPids(pid int) []int {
	var out []int
	for _, p := range allPids() {
		if ppid, _ := procParent(p); ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// procParent returns a process's parent pid and command name.
func procParent(pid int) (int, string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, ""
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return 0, ""
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 2 {
		return 0, ""
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid, s[open+1 : end]
}

func workDirs(prefix string) []string {
	m, _ := filepath.Glob(filepath.Join(WorkRoot, prefix+"*"))
	return m
}

func netnsNames(prefix string) []string {
	m, _ := filepath.Glob(filepath.Join(netnsDir, prefix+"*"))
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmount unmounts m, lazily when something still holds it.
func unmount(m string) error {
	err := syscall.Unmount(m, 0)
	if errors.Is(err, syscall.EBUSY) {
		err = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("sweep: unmount %s: %w", m, err)
	}
	return nil
}

// SweepAll takes the bench lock (waiting for a running bench to finish) and
// sweeps everything any bench left, returning what it found.
func SweepAll(wait time.Duration) ([]string, error) {
	lock, err := lockBench(wait)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	left := Leftovers(Prefix)
	return left, Sweep(Prefix)
}
