package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Exit describes how one run of a Child ended.
type Exit struct {
	Err       error         // exit or start error; nil = exit status 0
	Tail      []string      // last output lines
	Warnings  []string      // last output lines at warning level or above (Spec.ParseLine)
	Ran       time.Duration // from start to exit; 0 when the start failed
	Requested bool          // stopped by Restart() or by Run's context
}

// Backoff is a jittered exponential delay between restarts. Zero fields take their defaults:
// Min 200ms, Max 10s, ResetAfter 30s.
type Backoff struct {
	Min, Max   time.Duration
	ResetAfter time.Duration // a run at least this long forgets earlier failures
}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = 200 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 10 * time.Second
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	if b.ResetAfter <= 0 {
		b.ResetAfter = 30 * time.Second
	}
	return b
}

// delay returns the pause after n earlier consecutive failures: equal jitter over
// base = min(Max, Min·2ⁿ), i.e. in [base/2, base], never below Min. Equal rather than full
// jitter keeps the delays non-decreasing until the cap, so a crash loop only ever slows down
// (and stays at least Max/2 apart once there).
func (b Backoff) delay(n int) time.Duration {
	base := b.Min
	for i := 0; i < n && base < b.Max; i++ {
		base *= 2
	}
	base = min(base, b.Max)
	half := base / 2
	return max(b.Min, half+rand.N(base-half+1))
}

// Child keeps one process running: it asks Next for a Spec, starts it, waits for it to exit,
// reports the exit and starts again after a backoff. Set the exported fields, then call Run
// once; Restart, Current and Done may be called from any goroutine.
type Child struct {
	Name string
	// Next returns the spec for the next start; last is nil on the first. It may block (the
	// caller's restart gate) and must return when ctx is done. An error ends Run.
	Next    func(ctx context.Context, last *Exit) (Spec, error)
	OnStart func(p *Process) // optional
	OnExit  func(e Exit)     // optional, called before Next
	Backoff Backoff
	Logger  *slog.Logger
	Sleep   func(ctx context.Context, d time.Duration) error // nil = a real timer

	mu      sync.Mutex
	keep    bool // Keep was called
	cur     *Process
	restart chan struct{} // closed by Restart; nil when nothing runs or already closed
	done    chan struct{} // closed when Run returns; made by whichever of Done and Run comes first
}

// Run supervises until ctx is done, which stops the running process and returns nil, or until
// Next fails, which returns its error.
func (c *Child) Run(ctx context.Context) error {
	defer close(c.doneChan())
	if c.Next == nil {
		return fmt.Errorf("child %s: no Next", c.Name)
	}
	logger := c.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	log := logger.With("component", c.Name)
	b := c.Backoff.withDefaults()
	sleep := c.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}

	var last *Exit
	failures := 0
	for {
		spec, err := c.Next(ctx, last)
		if ctx.Err() != nil {
			return nil // cancellation is how Run ends, not a failure
		}
		if err != nil {
			return fmt.Errorf("child %s: next: %w", c.Name, err)
		}
		if spec.Name == "" {
			spec.Name = c.Name
		}
		e, kept := c.runOnce(ctx, spec, logger, log)
		if kept {
			return nil // left running, not exited: no OnExit
		}
		if c.OnExit != nil {
			c.OnExit(e)
		}
		if ctx.Err() != nil {
			return nil
		}
		last = &e
		if e.Ran >= b.ResetAfter {
			failures = 0
		}
		if e.Requested {
			log.Info("restarting on request", "err", e.Err)
			continue
		}
		d := b.delay(failures)
		failures++
		log.Warn("exited, restarting after backoff", "err", e.Err, "ran", e.Ran.Round(time.Millisecond), "backoff", d)
		if err := sleep(ctx, d); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("child %s: backoff: %w", c.Name, err)
		}
	}
}

// runOnce starts spec and waits for it to exit, for Restart, or for ctx; kept says that ctx
// ended it after Keep, with the process left running.
func (c *Child) runOnce(ctx context.Context, spec Spec, logger, log *slog.Logger) (e Exit, kept bool) {
	p, err := Start(spec, logger)
	if err != nil {
		return Exit{Err: err}, false
	}
	started := time.Now()
	restart := make(chan struct{})
	c.mu.Lock()
	c.cur, c.restart = p, restart
	c.mu.Unlock()
	if spec.Adopt != 0 {
		log.Info("adopted: it outlived the agent that started it", "pid", p.Pid())
	} else {
		log.Info("started", "pid", p.Pid())
	}
	if c.OnStart != nil {
		c.OnStart(p)
	}

	requested := false
	select {
	case <-p.Done():
	case <-restart:
		requested = true
	case <-ctx.Done():
		requested = true
		c.mu.Lock()
		kept = c.keep
		c.mu.Unlock()
	}
	if kept {
		log.Info("left running for the next agent to adopt", "pid", p.Pid())
		return Exit{}, true
	}
	if requested {
		if err := p.Stop(); err != nil {
			log.Error("stop failed", "pid", p.Pid(), "err", err)
		}
	}
	c.mu.Lock()
	c.cur, c.restart = nil, nil
	c.mu.Unlock()
	// A Restart that raced with the exit still asked for an immediate start.
	select {
	case <-restart:
		requested = true
	default:
	}
	return Exit{Err: p.Err(), Tail: p.Tail(), Warnings: p.Warnings(), Ran: time.Since(started), Requested: requested}, false
}

// Keep makes Run, when its context ends, leave the running process running instead of
// stopping it, and return without OnExit: the agent is being restarted, and the next one
// adopts the process (Runs, Spec.Adopt). Call it before cancelling Run's context.
func (c *Child) Keep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keep = true
}

// Restart stops the current process; Run then skips the backoff and goes straight to Next.
// It does not wait for the stop, and does nothing when no process runs.
func (c *Child) Restart() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.restart != nil {
		close(c.restart)
		c.restart = nil
	}
}

// Done is closed when Run has returned: the last process is stopped and
// reaped, and no other will start. A caller that stopped Run's context
// waits on it instead of polling Current.
func (c *Child) Done() <-chan struct{} { return c.doneChan() }

func (c *Child) doneChan() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}

// Current returns the running process, or nil.
func (c *Child) Current() *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
