package box

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Box is one Debian machine booting systemd under systemd-nspawn: an overlay
// on the bench's image (kept across its reboots, like a disk), in a network
// namespace of its own with eth0 at Addr.
type Box struct {
	Name    string // hostname inside, member name on the switch ("n1")
	Addr    string // eth0's address in Subnet
	Machine string // nspawn's machine name, unique on the host

	dir   string // upper, work, merged and console.log
	image string
	binds []Bind
	ns    string
	// net is the switch the box is plugged into (nil for a box of no
	// bench): a power-off unplugs it.
	net *Net

	mu     sync.Mutex
	nspawn *exec.Cmd
	exited chan struct{} // closed when the running nspawn has exited
	pid    int           // the box's systemd, as the host sees it; 0 when off
	boots  int
}

// Bind makes a host directory (or file) visible read-only in every box.
type Bind struct{ Host, Box string }

// execEnv is the environment commands run with in a box: the host's own
// must not leak in.
var execEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root", "LANG=C.UTF-8", "TERM=dumb",
	"DEBIAN_FRONTEND=noninteractive", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0",
}

// create makes the box's disk: an overlay on the image with its own hostname
// and machine-id.
func (b *Box) create() error {
	for _, d := range []string{"upper", "work", "merged"} {
		if err := os.MkdirAll(filepath.Join(b.dir, d), 0o755); err != nil {
			return fmt.Errorf("box %s: %w", b.Name, err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", b.image, filepath.Join(b.dir, "upper"), filepath.Join(b.dir, "work"))
	if err := syscall.Mount("overlay", b.root(), "overlay", 0, opts); err != nil {
		return fmt.Errorf("box %s: mount overlay: %w", b.Name, err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	files := map[string]string{
		"etc/hostname":   b.Name + "\n",
		"etc/machine-id": hex.EncodeToString(id) + "\n",
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(b.root(), f), []byte(content), 0o644); err != nil {
			return fmt.Errorf("box %s: %w", b.Name, err)
		}
	}
	return nil
}

func (b *Box) root() string { return filepath.Join(b.dir, "merged") }

// Path is where a file of the box's disk is on the host, for writing large
// fixtures without a shell in between. Only the disk: /run and /tmp inside a
// running box are not there.
func (b *Box) Path(p string) string { return filepath.Join(b.root(), p) }

// Boot starts the box (on the disk it had, after a power-off) and returns
// once its systemd runs; WaitRunning waits for the boot to finish.
func (b *Box) Boot(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pid != 0 {
		return fmt.Errorf("box %s: already running", b.Name)
	}
	if b.net != nil {
		if err := b.net.Plug(ctx, b.Name); err != nil {
			return fmt.Errorf("box %s: boot: %w", b.Name, err)
		}
	}
	// A box gets a cgroup of its own in every hierarchy (see
	// cgroupHierarchies); the shell moves itself there before nspawn.
	var moves []string
	for _, h := range cgroupHierarchies() {
		cg := filepath.Join(h, b.Machine)
		removeCgroupTree(cg) // an earlier boot's empty tree
		if err := os.Mkdir(cg, 0o755); err != nil {
			return fmt.Errorf("box %s: cgroup: %w", b.Name, err)
		}
		moves = append(moves, fmt.Sprintf("echo $$ > %s/cgroup.procs || exit 1", cg))
	}
	args := []string{
		"-c", strings.Join(append(moves, `exec "$@"`), "\n"), "sh",
		"systemd-nspawn",
		"--directory=" + b.root(),
		"--machine=" + b.Machine,
		"--boot",
		"--register=no",
		"--keep-unit",
		"--network-namespace-path=" + filepath.Join(netnsDir, b.ns),
		// nspawn keeps CAP_NET_ADMIN only with --private-network, which a
		// namespace of our own cannot be combined with; the box's root needs
		// it as on a real machine (a VIP is an address added with netlink),
		// and it reaches no further than the box's own namespace.
		"--capability=CAP_NET_ADMIN",
		"--console=read-only",
		"--link-journal=no",
		"--resolv-conf=off",
		"--timezone=off",
	}
	for _, bd := range b.binds {
		args = append(args, "--bind-ro="+bd.Host+":"+bd.Box)
	}
	console, err := os.OpenFile(filepath.Join(b.dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("box %s: %w", b.Name, err)
	}
	defer console.Close()
	b.boots++
	fmt.Fprintf(console, "\n===== boot %d of %s at %s =====\n", b.boots, b.Machine, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("/bin/sh", args...)
	cmd.Stdout, cmd.Stderr = console, console
	// Its own session: a ^C at the test's terminal is the bench's to handle.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("box %s: start nspawn: %w", b.Name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	b.nspawn, b.exited = cmd, exited

	// The box's systemd is the child of nspawn that has exec'd into systemd.
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		for _, c := range childPids(cmd.Process.Pid) {
			if _, comm := procParent(c); comm == "systemd" {
				b.pid = c
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("box %s: nspawn exited during boot: %s\n%s", b.Name, cmd.ProcessState, b.ConsoleTail(15))
		case <-deadline.C:
			b.killLocked()
			return fmt.Errorf("box %s: no systemd after 30s\n%s", b.Name, b.ConsoleTail(15))
		case <-ctx.Done():
			b.killLocked()
			return fmt.Errorf("box %s: boot: %w", b.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitRunning waits until the box's systemd says the boot is over: running,
// or degraded (some unit failed; the test decides whether that matters).
func (b *Box) WaitRunning(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		out, _, err := b.Exec(ctx, "systemctl", "is-system-running")
		last = strings.TrimSpace(out)
		if last == "running" || last == "degraded" {
			return nil
		}
		if last == "" && err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			failed, _, _ := b.Exec(context.Background(), "systemctl", "--failed", "--no-legend")
			return fmt.Errorf("box %s: not booted after %s (is-system-running: %s; failed units: %s)\n%s",
				b.Name, timeout, last, strings.TrimSpace(failed), b.ConsoleTail(15))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Running reports whether the box is on.
func (b *Box) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pid != 0
}

// Exec runs a command in the box (all its namespaces, its root) as root,
// with a clean environment, and returns its output. A non-zero exit is an
// error carrying the code (ExitCode).
func (b *Box) Exec(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	return b.ExecInput(ctx, nil, nil, args...)
}

// Sh runs a shell script in the box.
func (b *Box) Sh(ctx context.Context, script string) (stdout, stderr string, err error) {
	return b.Exec(ctx, "sh", "-c", script)
}

// ExecInput is Exec with stdin and extra environment (NAME=value).
func (b *Box) ExecInput(ctx context.Context, stdin []byte, env []string, args ...string) (stdout, stderr string, err error) {
	b.mu.Lock()
	pid := b.pid
	b.mu.Unlock()
	if pid == 0 {
		return "", "", fmt.Errorf("box %s: %s: box is off", b.Name, strings.Join(args, " "))
	}
	nsenter := append([]string{"-t", strconv.Itoa(pid), "-a", "-r", "-w", "--"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", nsenter...)
	cmd.Env = append(append([]string{}, execEnv...), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return o.String(), e.String(), &ExecError{Box: b.Name, Args: args, Stderr: e.String(), Err: err}
	}
	return o.String(), e.String(), nil
}

// ExecError is a command that failed in a box (or in the client namespace).
type ExecError struct {
	Box    string
	Args   []string
	Stderr string
	Err    error
}

func (e *ExecError) Error() string {
	s := fmt.Sprintf("%s: %s: %v", e.Box, strings.Join(e.Args, " "), e.Err)
	if t := strings.TrimSpace(e.Stderr); t != "" {
		s += ": " + tail(t, 5)
	}
	return s
}

func (e *ExecError) Unwrap() error { return e.Err }

// ExitCode is the exit status of a failed command, 0 for no error and -1
// when it did not exit on its own (killed, not started).
func ExitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		return -1
	}
}

// PowerOff pulls the plug: SIGKILL to the box's systemd (PID 1 of its pid
// namespace: everything inside dies at once), then to nspawn. The disk is
// kept; Boot starts the box again on it. What the box's processes wrote is in
// the host's page cache and survives, as on a disk with a write cache that
// honours fsync: a power-off here loses processes, not files.
//
// Its port on the switch goes down first, so that its address falls silent
// as a dead machine's does: the namespace outlives the box, and would
// otherwise answer every connection with a reset, which tells clients at
// once what real hardware makes them wait out a timeout for. Boot plugs it
// in again.
func (b *Box) PowerOff() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pid == 0 {
		return fmt.Errorf("box %s: already off", b.Name)
	}
	if b.net != nil {
		if err := b.net.Unplug(context.Background(), b.Name); err != nil {
			return fmt.Errorf("box %s: power off: %w", b.Name, err)
		}
	}
	syscall.Kill(b.pid, syscall.SIGKILL)
	select {
	case <-b.exited:
	case <-time.After(5 * time.Second):
	}
	return b.killLocked()
}

// Stop shuts the box down cleanly (systemd stops every unit), and pulls the
// plug if that takes longer than timeout.
func (b *Box) Stop(timeout time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pid == 0 {
		return nil
	}
	// nspawn turns SIGTERM into a clean poweroff of a booted box.
	b.nspawn.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
		return b.killLocked()
	case <-time.After(timeout):
		b.killLocked()
		return fmt.Errorf("box %s: no clean shutdown within %s; powered off", b.Name, timeout)
	}
}

// killLocked makes sure nothing of the box runs any more: nspawn killed and
// reaped, the box's cgroups empty and removed.
func (b *Box) killLocked() error {
	var errs []error
	if b.nspawn != nil {
		b.nspawn.Process.Kill()
		<-b.exited
	}
	for _, h := range cgroupHierarchies() {
		cg := filepath.Join(h, b.Machine)
		if _, err := os.Stat(cg); err != nil {
			continue
		}
		errs = append(errs, killCgroup(cg), removeCgroupTree(cg))
	}
	b.pid, b.nspawn = 0, nil
	return errors.Join(errs...)
}

// ConsoleTail is the end of what the box printed on its console (all boots).
func (b *Box) ConsoleTail(n int) string {
	data, _ := os.ReadFile(filepath.Join(b.dir, "console.log"))
	return tail(string(data), n)
}
