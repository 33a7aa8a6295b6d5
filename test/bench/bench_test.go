package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9/logging"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
)

// EnableEnv must be "1" for TestBench to run: make bench sets it.
const EnableEnv = "RHA_BENCH"

// benchRan tells TestMain to look for leftovers: only a run that booted
// boxes may blame itself for boxes still there.
var benchRan bool

func TestMain(m *testing.M) {
	logging.Disable() // go-redis's reconnect noise, during deliberate faults
	code := m.Run()
	if benchRan {
		if left := box.Leftovers(box.Prefix); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "bench: the box bench left behind: %s\n", strings.Join(left, "; "))
			code = 1
		}
	}
	os.Exit(code)
}

// The terms of PRODUCT.md's guarantees table, which both setups share.
const (
	password  = "s3cret-pass"
	writeRate = 200
	downAfter = 5 * time.Second
	masterSet = "main"
)

// TestBench is `make bench`: the fault table of both setups, the footprint
// and start times beside redis-sentinel's and redis-server's, and the agent
// on five and seven boxes. Each part runs on a bench of its own, one after
// the other, so that no measurement shares the two cores with another; a
// part that fails leaves its rows marked and the others still run.
func TestBench(t *testing.T) {
	if os.Getenv(EnableEnv) != "1" {
		t.Skip("bench: set " + EnableEnv + "=1 to run it (make bench does)")
	}
	t.Setenv(box.EnableEnv, "1") // the box bench's own opt-in
	box.Require(t)
	deb := os.Getenv("RHA_DEB")
	if deb == "" {
		t.Fatal("RHA_DEB is not set: run the bench with make bench, which builds the package")
	}
	benchRan = true
	os.RemoveAll(filepath.Join("out", "logs")) // an earlier run's
	start := time.Now()
	rep := &Report{Date: start}
	rep.Machine = machine(deb)

	t.Run("3 boxes", func(t *testing.T) { threeBoxes(t, deb, rep) })
	for _, n := range []int{5, 7} {
		t.Run(fmt.Sprintf("%d boxes", n), func(t *testing.T) { rep.Scale = append(rep.Scale, scale(t, deb, n)) })
	}

	rep.Runtime = time.Since(start)
	md := rep.Markdown()
	if err := os.MkdirAll("out", 0o755); err != nil {
		t.Error(err)
	} else if err := os.WriteFile(filepath.Join("out", "report.md"), []byte(md), 0o644); err != nil {
		t.Error(err)
	}
	fmt.Printf("\n%s\n(also in test/bench/out/report.md)\n", md)
}

// note adds a line to the report's notes and to the test log.
func (r *Report) note(t *testing.T, format string, args ...any) {
	t.Helper()
	s := fmt.Sprintf(format, args...)
	r.Notes = append(r.Notes, s)
	t.Log(s)
}

// newBench starts a bench whose boxes see the package under test in
// /dist/new, and which logs both setups' side of the story if it fails.
func newBench(t *testing.T, deb string) *box.Bench {
	t.Helper()
	b := box.New(t, box.Options{Diagnose: []string{
		"systemctl --failed --no-pager",
		"journalctl -b -u redis-ha-agent -u redis-server -u redis-sentinel --no-pager -n 60 -o short-monotonic",
	}})
	stage := filepath.Join(b.Dir(), ".dist", "new") // goes with the bench
	if err := os.MkdirAll(stage, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(deb)
	if err != nil {
		t.Fatalf("RHA_DEB: %v (make bench builds it)", err)
	}
	if err := os.WriteFile(filepath.Join(stage, filepath.Base(deb)), data, 0o644); err != nil {
		t.Fatal(err)
	}
	b.AddBind(box.Bind{Host: filepath.Dir(stage), Box: "/dist"})
	return b
}

// addBoxes creates boxes prefix1… at consecutive addresses from first (the
// last octet), without booting them.
func addBoxes(t *testing.T, b *box.Bench, prefix string, first, n int) []*box.Box {
	t.Helper()
	var boxes []*box.Box
	for i := range n {
		bx, err := b.AddBox(fmt.Sprintf("%s%d", prefix, i+1), fmt.Sprintf("10.88.0.%d", first+i))
		if err != nil {
			t.Fatal(err)
		}
		boxes = append(boxes, bx)
	}
	return boxes
}

// sh runs a script in a box and returns its trimmed output; a failure
// carries the script's stderr.
func sh(ctx context.Context, bx *box.Box, script string) (string, error) {
	out, _, err := bx.Sh(ctx, script)
	return strings.TrimSpace(out), err
}

// eventually retries check every 250 ms until it returns nil or timeout
// passes (box.Eventually).
func eventually(ctx context.Context, timeout time.Duration, check func(context.Context) error) error {
	return box.Eventually(ctx, timeout, 250*time.Millisecond, check)
}

// inParallel runs f for every item at once and joins the errors.
func inParallel[T any](items []T, f func(T) error) error {
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Go(func() { errs[i] = f(it) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// machine describes the host the numbers were measured on.
func machine(deb string) []string {
	var facts []string
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	host := "Debian " + strings.TrimSpace(read("/etc/debian_version"))
	if rel := strings.TrimSpace(read("/proc/sys/kernel/osrelease")); rel != "" {
		host += ", Linux " + rel
	}
	model, cores := "", 0
	for _, l := range strings.Split(read("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			model = strings.TrimSpace(v)
			cores++
		}
	}
	mem := ""
	for _, l := range strings.Split(read("/proc/meminfo"), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			if n, err := kB(strings.TrimSpace(v)); err == nil {
				mem = fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
			}
		}
	}
	facts = append(facts, fmt.Sprintf("host: %s; %d × %s; %s RAM", host, cores, model, mem))
	facts = append(facts, "boxes: Debian 12 (bookworm) booting systemd under systemd-nspawn, one overlay each on one image, "+
		"one bridge in a network namespace (test/box); the client in a namespace of its own on the same bridge")
	facts = append(facts, fmt.Sprintf("package under test: %s; bench built with %s", filepath.Base(deb), runtime.Version()))
	return facts
}
