package supervisor

import (
	"context"
	"errors"
	"io/fs"
	"sync"
	"testing"
	"time"
)

// sleepRecorder stands in for the clock: it records each backoff and returns at once.
type sleepRecorder struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleepRecorder) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleepRecorder) durations() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

var errEnough = errors.New("enough")

func TestBackoffDelay(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		b       Backoff
		n       int
		lo, hi  time.Duration
		resetAt time.Duration
	}{
		{"defaults first", Backoff{}, 0, 200 * ms, 200 * ms, 30 * time.Second},
		{"defaults second", Backoff{}, 1, 200 * ms, 400 * ms, 30 * time.Second},
		{"defaults capped", Backoff{}, 10, 5 * time.Second, 10 * time.Second, 30 * time.Second},
		{"no overflow", Backoff{}, 200, 5 * time.Second, 10 * time.Second, 30 * time.Second},
		{"doubling", Backoff{Min: 100 * ms, Max: time.Second}, 3, 400 * ms, 800 * ms, 30 * time.Second},
		{"cap not a power of two", Backoff{Min: 100 * ms, Max: 300 * ms}, 2, 150 * ms, 300 * ms, 30 * time.Second},
		{"max below min", Backoff{Min: time.Second, Max: 10 * ms}, 3, time.Second, time.Second, 30 * time.Second},
		{"reset after given", Backoff{ResetAfter: time.Minute}, 0, 200 * ms, 200 * ms, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b.withDefaults()
			if b.ResetAfter != tt.resetAt {
				t.Errorf("ResetAfter = %v, want %v", b.ResetAfter, tt.resetAt)
			}
			var seen []time.Duration
			for range 1000 {
				d := b.delay(tt.n)
				if d < tt.lo || d > tt.hi {
					t.Fatalf("delay(%d) = %v, want within [%v, %v]", tt.n, d, tt.lo, tt.hi)
				}
				seen = append(seen, d)
			}
			if tt.lo != tt.hi && allEqual(seen) {
				t.Errorf("delay(%d) never varies: %v", tt.n, seen[0])
			}
		})
	}
}

func allEqual(ds []time.Duration) bool {
	for _, d := range ds {
		if d != ds[0] {
			return false
		}
	}
	return true
}

// runChild runs c in the background; the returned channel yields Run's result.
func runChild(t *testing.T, ctx context.Context, c *Child) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	returned := make(chan struct{})
	go func() {
		errc <- c.Run(ctx)
		close(returned)
	}()
	t.Cleanup(func() {
		cancel()
		<-returned
	})
	return errc
}

func TestChildBackoffGrows(t *testing.T) {
	const starts = 7
	var clock sleepRecorder
	minD, maxD := 100*time.Millisecond, 800*time.Millisecond
	n := 0
	c := &Child{
		Name:    "crash",
		Backoff: Backoff{Min: minD, Max: maxD, ResetAfter: time.Hour},
		Sleep:   clock.Sleep,
		Next: func(ctx context.Context, last *Exit) (Spec, error) {
			if (last == nil) != (n == 0) {
				t.Errorf("start %d: last = %+v", n, last)
			}
			if last != nil && (last.Err == nil || last.Requested || len(last.Tail) != 1 || last.Tail[0] != "boom") {
				t.Errorf("start %d: last = %+v, want a crash with tail [boom]", n, *last)
			}
			if n == starts {
				return Spec{}, errEnough
			}
			n++
			return sh(`echo boom; exit 1`), nil
		},
	}
	err := c.Run(context.Background())
	if !errors.Is(err, errEnough) {
		t.Fatalf("Run() = %v, want %v", err, errEnough)
	}
	got := clock.durations()
	if len(got) != starts {
		t.Fatalf("slept %d times (%v), want %d", len(got), got, starts)
	}
	for i, d := range got {
		base := minD << i
		if base > maxD {
			base = maxD
		}
		if d < base/2 || d < minD || d > base {
			t.Errorf("backoff %d = %v, want within [max(%v, %v), %v]", i, d, minD, base/2, base)
		}
		// Delays only grow until the previous one was drawn at the cap.
		if i > 0 && minD<<(i-1) < maxD && d < got[i-1] {
			t.Errorf("backoff %d = %v shrank from %v", i, d, got[i-1])
		}
	}
	if c.Current() != nil {
		t.Error("Current() != nil after Run returned")
	}
}

func TestChildBackoffResets(t *testing.T) {
	var clock sleepRecorder
	minD := 100 * time.Millisecond
	scripts := []string{`exit 1`, `exit 1`, `exit 1`, `sleep 0.5; exit 1`, `exit 1`}
	n := 0
	c := &Child{
		Name:    "flaky",
		Backoff: Backoff{Min: minD, Max: 10 * time.Second, ResetAfter: 400 * time.Millisecond},
		Sleep:   clock.Sleep,
		Next: func(ctx context.Context, last *Exit) (Spec, error) {
			if n == len(scripts) {
				return Spec{}, errEnough
			}
			n++
			return sh(scripts[n-1]), nil
		},
	}
	if err := c.Run(context.Background()); !errors.Is(err, errEnough) {
		t.Fatalf("Run() = %v, want %v", err, errEnough)
	}
	got := clock.durations()
	if len(got) != len(scripts) {
		t.Fatalf("slept %v, want %d backoffs", got, len(scripts))
	}
	// Three quick crashes grow the delay; the long run resets it to Min.
	if got[2] < 2*minD {
		t.Errorf("third backoff %v did not grow (all: %v)", got[2], got)
	}
	if got[3] != minD {
		t.Errorf("backoff after a stable run = %v, want %v (all: %v)", got[3], minD, got)
	}
	if got[4] > 2*minD {
		t.Errorf("backoff after reset = %v, want at most %v (all: %v)", got[4], 2*minD, got)
	}
}

func TestChildRestartSkipsBackoff(t *testing.T) {
	var clock sleepRecorder
	started := make(chan *Process, 4)
	exits := make(chan Exit, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &Child{
		Name:    "steady",
		Sleep:   clock.Sleep,
		OnStart: func(p *Process) { started <- p },
		OnExit:  func(e Exit) { exits <- e },
		Next: func(ctx context.Context, last *Exit) (Spec, error) {
			return sh(`echo up; exec sleep 100`), nil
		},
	}
	errc := runChild(t, ctx, c)

	p1 := recv(t, "first start", started)
	if c.Current() != p1 {
		t.Errorf("Current() = %v, want the first process", c.Current())
	}
	c.Restart()
	e := recv(t, "first exit", exits)
	if !e.Requested || e.Err == nil {
		t.Errorf("exit after Restart = %+v, want Requested with the SIGTERM error", e)
	}
	p2 := recv(t, "second start", started)
	select {
	case <-p1.Done():
	default:
		t.Error("second process started before the first was reaped")
	}
	if p2 == p1 || c.Current() != p2 {
		t.Errorf("Current() = %v after restart, want the new process %v", c.Current(), p2)
	}
	if got := clock.durations(); len(got) != 0 {
		t.Errorf("slept %v on a requested restart", got)
	}

	cancel()
	if err := recv(t, "Run to return", errc); err != nil {
		t.Errorf("Run() = %v after cancel, want nil", err)
	}
	if e := recv(t, "last exit", exits); !e.Requested {
		t.Errorf("exit on cancel = %+v, want Requested", e)
	}
	select {
	case <-p2.Done():
	default:
		t.Error("Run returned with its process still running")
	}
	if c.Current() != nil {
		t.Error("Current() != nil after Run returned")
	}
	c.Restart() // nothing runs: a no-op
}

func TestChildNextBlocks(t *testing.T) {
	entered := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &Child{
		Name: "gated",
		Next: func(ctx context.Context, last *Exit) (Spec, error) {
			close(entered)
			<-ctx.Done()
			return Spec{}, ctx.Err()
		},
	}
	errc := runChild(t, ctx, c)
	recv(t, "Next to be called", entered)

	restarted := make(chan struct{})
	go func() {
		c.Restart()
		close(restarted)
	}()
	recv(t, "Restart to return while Next blocks", restarted)
	if c.Current() != nil {
		t.Error("Current() != nil while Next blocks")
	}
	cancel()
	if err := recv(t, "Run to return", errc); err != nil {
		t.Errorf("Run() = %v after cancel, want nil", err)
	}
}

// TestChildDone: Done closes once Run has returned and the process is
// reaped, whether Done was asked for before Run started or after.
func TestChildDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *Process, 1)
	c := &Child{
		Name:    "done",
		Next:    func(context.Context, *Exit) (Spec, error) { return sh(`sleep 60`), nil },
		OnStart: func(p *Process) { started <- p },
	}
	done := c.Done()
	errc := runChild(t, ctx, c)
	p := recv(t, "the start", started)
	select {
	case <-done:
		t.Fatal("Done closed while the child runs")
	default:
	}
	cancel()
	recv(t, "Done", done)
	select {
	case <-p.Done():
	default:
		t.Error("Done closed before the process was reaped")
	}
	if err := recv(t, "Run to return", errc); err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
	recv(t, "Done asked for after Run returned", c.Done())
}

func TestChildCancelDuringBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &Child{
		Name:    "slow",
		Backoff: Backoff{Min: time.Hour},
		Next: func(ctx context.Context, last *Exit) (Spec, error) {
			if last != nil {
				t.Error("Next called again before the hour-long backoff ended")
			}
			return sh(`exit 1`), nil
		},
		OnExit: func(Exit) { cancel() },
	}
	if err := recv(t, "Run to return", runChild(t, ctx, c)); err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
}

func TestChildStartFailure(t *testing.T) {
	var clock sleepRecorder
	var exits []Exit
	c := &Child{
		Name:   "missing",
		Sleep:  clock.Sleep,
		OnExit: func(e Exit) { exits = append(exits, e) },
		Next: func(ctx context.Context, last *Exit) (Spec, error) {
			if last == nil {
				return Spec{Path: "/nonexistent/prog"}, nil
			}
			return Spec{}, errEnough
		},
	}
	if err := c.Run(context.Background()); !errors.Is(err, errEnough) {
		t.Fatalf("Run() = %v, want %v", err, errEnough)
	}
	if len(exits) != 1 || !errors.Is(exits[0].Err, fs.ErrNotExist) || exits[0].Requested {
		t.Errorf("exits = %+v, want one start failure", exits)
	}
	if got := clock.durations(); len(got) != 1 {
		t.Errorf("slept %v, want one backoff after the failed start", got)
	}
}

func TestChildNextError(t *testing.T) {
	c := &Child{
		Name: "broken",
		Next: func(ctx context.Context, last *Exit) (Spec, error) { return Spec{}, errEnough },
	}
	err := c.Run(context.Background())
	if !errors.Is(err, errEnough) || err.Error() != "child broken: next: enough" {
		t.Errorf("Run() = %v, want %q wrapping errEnough", err, "child broken: next: enough")
	}
	if err := (&Child{Name: "nil"}).Run(context.Background()); err == nil {
		t.Error("Run() without Next succeeded")
	}
}

func TestChildLogsAsName(t *testing.T) {
	logger, logs := newLogger()
	c := &Child{
		Name:   "named",
		Logger: logger,
		Next: func(ctx context.Context, last *Exit) (Spec, error) {
			if last != nil {
				return Spec{}, errEnough
			}
			return Spec{Path: "/bin/sh", Args: []string{"-c", "echo hello"}}, nil
		},
		Sleep: (&sleepRecorder{}).Sleep,
	}
	c.Run(context.Background())
	found := false
	for _, r := range logs.records(t) {
		if r["component"] != "named" {
			t.Errorf("record %v: want component=named", r)
		}
		found = found || r["msg"] == "hello"
	}
	if !found {
		t.Error("child output not logged")
	}
}
