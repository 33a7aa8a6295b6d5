package box

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// EnableEnv must be "1" for a Bench to start: `go test ./...` (make
// integration) then skips the boxes, and `make e2e` runs them once.
const EnableEnv = "RHA_E2E"

// ClientAddr is the client namespace's address.
const ClientAddr = "10.88.0.100"

// Options shape a Bench; the zero value is DefaultImage (on the suite
// SuiteEnv names) in DefaultCache.
type Options struct {
	Image ImageSpec
	Cache string
	Binds []Bind // read-only in every box
	// Diagnose lists shell commands run in every running box when the test
	// has failed, before the boxes are removed; their output goes to the
	// test log.
	Diagnose []string
}

// Bench is a switch, a client namespace and the boxes on them, all removed
// by the test's cleanup.
type Bench struct {
	Net *Net

	t      testing.TB
	prefix string // "rha-<n>-": every name of this bench starts with it
	dir    string
	image  string
	opts   Options

	mu    sync.Mutex
	boxes []*Box
}

// Require skips t unless the bench can run here: opted in (EnableEnv), not
// -short, root, and the host tools present.
func Require(t testing.TB) {
	t.Helper()
	switch {
	case testing.Short():
		t.Skip("box bench: skipped in -short")
	case os.Getenv(EnableEnv) != "1":
		t.Skip("box bench: set " + EnableEnv + "=1 to boot boxes (make e2e does)")
	case os.Geteuid() != 0:
		t.Skip("box bench: needs root")
	}
	for _, tool := range []string{"systemd-nspawn", "debootstrap", "nft", "ip", "nsenter", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("box bench: %s not installed (make deps installs it)", tool)
		}
	}
}

// processState is what all Benches of one test process share: the lock that
// keeps other bench processes out, and the sweep of a killed run's leftovers
// done once under it.
var processState struct {
	once  sync.Once
	err   error
	lock  *os.File
	count atomic.Int64
	image sync.Map // ImageSpec key → image dir
	// build serializes image builds: EnsureImage clears what it takes for
	// an interrupted build, which a parallel test building another image
	// would otherwise be.
	build sync.Mutex
}

func setupProcess(t testing.TB) error {
	processState.once.Do(func() {
		processState.lock, processState.err = lockBench(lockWait())
		if processState.err != nil {
			return
		}
		if left := Leftovers(Prefix); len(left) > 0 {
			t.Logf("box: sweeping what an earlier run left: %s", strings.Join(left, "; "))
		}
		if processState.err = Sweep(Prefix); processState.err != nil {
			return
		}
		// A ^C or kill of the test process must not leave boxes running.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		go func() {
			s := <-sig
			fmt.Fprintf(os.Stderr, "box: %v: removing every box\n", s)
			if err := Sweep(Prefix); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
			os.Exit(1)
		}()
	})
	return processState.err
}

// LockWaitEnv bounds how long a run waits for another to release the bench
// (a Go duration; default 2 minutes). make bench waits longer: it is run by
// hand, often while a make e2e is under way.
const LockWaitEnv = "RHA_LOCK_WAIT"

func lockWait() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(LockWaitEnv)); err == nil && d > 0 {
		return d
	}
	return 2 * time.Minute
}

// Locked reports whether this process holds the bench lock, which it takes
// with its first bench and keeps until it exits. Only such a process can
// have left boxes behind: without the lock, the boxes seen are another
// run's, in use.
func Locked() bool { return processState.lock != nil }

// lockPath is the host-wide bench lock, beside the images it also guards.
var lockPath = filepath.Join(DefaultCache, "bench.lock")

// lockBench takes the host-wide bench lock: one bench process at a time, so
// that a sweep never removes another run's boxes. The kernel drops it when
// the process dies.
func lockBench(wait time.Duration) (*os.File, error) {
	if err := os.MkdirAll(DefaultCache, 0o755); err != nil {
		return nil, fmt.Errorf("box: lock: %w", err)
	}
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("box: lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("box: another bench holds %s: %w", lockPath, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// New starts a bench for t: the image (built on first use), a switch and a
// client namespace at ClientAddr. It skips t when the bench cannot run here
// (Require). Its cleanup removes everything it and its boxes created.
func New(t testing.TB, opts Options) *Bench {
	t.Helper()
	Require(t)
	if opts.Image.Suite == "" {
		opts.Image = ImageFor(Suite())
	}
	if opts.Cache == "" {
		opts.Cache = DefaultCache
	}
	if err := setupProcess(t); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	image, err := imageFor(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	b := &Bench{
		t:      t,
		prefix: fmt.Sprintf("%s%d-", Prefix, processState.count.Add(1)),
		image:  image,
		opts:   opts,
	}
	b.dir = filepath.Join(WorkRoot, b.prefix+"work")
	t.Cleanup(b.cleanup) // before anything exists, so half a bench goes too
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if b.Net, err = newNet(ctx, b.prefix); err != nil {
		t.Fatal(err)
	}
	if err := b.Net.attach(ctx, "client", ClientAddr); err != nil {
		t.Fatal(err)
	}
	return b
}

func imageFor(ctx context.Context, t testing.TB, opts Options) (string, error) {
	key := opts.Cache + "\x00" + opts.Image.key()
	if dir, ok := processState.image.Load(key); ok {
		return dir.(string), nil
	}
	processState.build.Lock()
	defer processState.build.Unlock()
	if dir, ok := processState.image.Load(key); ok {
		return dir.(string), nil
	}
	dir, err := EnsureImage(ctx, opts.Cache, opts.Image, t.Logf)
	if err == nil {
		processState.image.Store(key, dir)
	}
	return dir, err
}

// Dir is a scratch directory of the bench, removed with it.
func (b *Bench) Dir() string { return b.dir }

// AddBind makes a host directory visible read-only in the boxes added from
// now on.
func (b *Bench) AddBind(bd Bind) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opts.Binds = append(b.opts.Binds, bd)
}

// AddBox creates a box (its disk and its place on the switch) without
// booting it.
func (b *Bench) AddBox(name, addr string) (*Box, error) {
	ctx := context.Background()
	b.mu.Lock()
	bx := &Box{
		Name:    name,
		Addr:    addr,
		Machine: b.prefix + name,
		dir:     filepath.Join(b.dir, name),
		image:   b.image,
		binds:   append([]Bind(nil), b.opts.Binds...),
		ns:      b.Net.Namespace(name),
		net:     b.Net,
	}
	b.boxes = append(b.boxes, bx)
	b.mu.Unlock()
	if err := bx.create(); err != nil {
		return nil, err
	}
	if err := b.Net.attach(ctx, name, addr); err != nil {
		return nil, err
	}
	return bx, nil
}

// Boxes creates and boots boxes named names at 10.88.0.11, .12, … in order,
// all at once, and returns when every one is up. It fails t otherwise.
func (b *Bench) Boxes(names ...string) []*Box {
	b.t.Helper()
	var boxes []*Box
	for i, name := range names {
		bx, err := b.AddBox(name, fmt.Sprintf("10.88.0.%d", 11+i))
		if err != nil {
			b.t.Fatal(err)
		}
		boxes = append(boxes, bx)
	}
	start := time.Now()
	if err := BootAll(context.Background(), boxes...); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("box: %d box(es) booted in %s", len(boxes), time.Since(start).Round(100*time.Millisecond))
	return boxes
}

// BootTimeout bounds a box's boot, generous for a loaded 2-core host.
const BootTimeout = 90 * time.Second

// BootAll boots boxes in parallel and waits until each is running.
func BootAll(ctx context.Context, boxes ...*Box) error {
	errs := make([]error, len(boxes))
	var wg sync.WaitGroup
	for i, bx := range boxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := bx.Boot(ctx); err != nil {
				errs[i] = err
				return
			}
			errs[i] = bx.WaitRunning(ctx, BootTimeout)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Client runs a host command in the client namespace, with env (NAME=value)
// added to a minimal environment. Secrets go in env (REDISCLI_AUTH), never
// in args.
func (b *Bench) Client(ctx context.Context, env []string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", b.Net.Namespace("client")}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return o.String(), e.String(), &ExecError{Box: "client", Args: args, Stderr: e.String(), Err: err}
	}
	return o.String(), e.String(), nil
}

// Cut and Heal partition the switch by member name (box names, "client").
func (b *Bench) Cut(a, c []string) error { return b.Net.Cut(context.Background(), a, c) }
func (b *Bench) Heal() error             { return b.Net.Heal(context.Background()) }

// Throttle and Unthrottle slow the switch's frames to a member (Net.Throttle).
func (b *Bench) Throttle(member, rate string) error {
	return b.Net.Throttle(context.Background(), member, rate)
}
func (b *Bench) Unthrottle(member string) error {
	return b.Net.Unthrottle(context.Background(), member)
}

func (b *Bench) cleanup() {
	if b.t.Failed() {
		b.diagnose()
		b.hold()
	}
	start := time.Now()
	if err := Sweep(b.prefix); err != nil {
		b.t.Errorf("box: cleanup: %v", err)
	}
	b.t.Logf("box: bench %s removed in %s", strings.TrimSuffix(b.prefix, "-"), time.Since(start).Round(100*time.Millisecond))
}

// HoldEnv, set to a duration ("10m"), keeps a failed test's boxes up that
// long before they are removed, for a human to look inside with
// nsenter -t PID -a (machinectl needs a host systemd).
const HoldEnv = "RHA_BENCH_HOLD"

func (b *Bench) hold() {
	d, err := time.ParseDuration(os.Getenv(HoldEnv))
	if err != nil || d <= 0 {
		return
	}
	b.mu.Lock()
	for _, bx := range b.boxes {
		bx.mu.Lock()
		fmt.Fprintf(os.Stderr, "box %s: nsenter -t %d -a   (ip netns exec %s for its network)\n", bx.Name, bx.pid, bx.ns)
		bx.mu.Unlock()
	}
	b.mu.Unlock()
	fmt.Fprintf(os.Stderr, "box: %s failed; holding its boxes for %s (%s)\n", b.t.Name(), d, HoldEnv)
	time.Sleep(d)
}

// diagnose logs what Options.Diagnose asks for, from every running box.
func (b *Bench) diagnose() {
	b.mu.Lock()
	boxes := append([]*Box(nil), b.boxes...)
	b.mu.Unlock()
	for _, bx := range boxes {
		if !bx.Running() {
			b.t.Logf("box %s: off; console:\n%s", bx.Name, bx.ConsoleTail(20))
			continue
		}
		for _, c := range b.opts.Diagnose {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			out, errOut, _ := bx.Sh(ctx, c)
			cancel()
			b.t.Logf("box %s: $ %s\n%s%s", bx.Name, c, out, errOut)
		}
	}
	if b.Net == nil {
		return
	}
	if rules := b.Net.Rules(context.Background()); strings.Contains(rules, "drop") {
		b.t.Logf("switch cuts:\n%s", rules)
	}
}
