package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/internal/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Maintenance pause. The group's pause is a record on the master
// (sentinel.PauseKey): replicated to every box and persisted with the data,
// so every agent reads it from its own redis each second, a powered-off
// master's box included, and an agent restarted while paused stays paused.
// While it holds, every agent keeps its redis at replica-priority 0
// (ha.Priority says why that, and not a sentinel setting), and the agents
// cause no failover, fence no master and move no VIP. The last record an
// agent saw is also kept in its state directory, for a redis that is not up
// yet: it starts with priority 0 too.

// pauseSettle bounds how long `pause` waits for every sentinel to see every
// replica at priority 0 (Sentinel reads it from INFO, once a second).
const pauseSettle = 15 * time.Second

func pausePath(cfg *config.Config) string { return filepath.Join(cfg.Node.DataDir, "pause.json") }

// isPaused: the last pause record seen holds now.
func (n *node) isPaused() bool {
	p := n.pause.Load()
	return p != nil && (p.Until.IsZero() || time.Now().Before(p.Until))
}

// priority is the replica-priority this box's redis must have now.
func (n *node) priority(cfg *config.Config) int {
	return ha.Priority(cfg.Node.Priority, n.isPaused(), n.drained.Load(), n.unsynced.Load())
}

// loadPause reads the record the previous agent kept.
func (n *node) loadPause(cfg *config.Config) {
	b, err := os.ReadFile(pausePath(cfg))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var p sentinel.Pause
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	if err != nil {
		// Unreadable: paused, until this box's redis says otherwise.
		n.log.Warn("read pause record; assuming paused until redis answers", "err", err)
	}
	n.pause.Store(&p)
}

// observePause reads the group's pause from the local redis into s, and
// keeps the state directory's copy when it changed.
func (n *node) observePause(ctx context.Context, cfg *config.Config, s *ha.Snapshot) {
	if s.RedisUp {
		p, ok, err := n.local.Redis().ReadPause(ctx)
		if err == nil {
			n.notePause(cfg, p, ok)
		}
	}
	if n.isPaused() {
		s.Paused, s.PausedUntil = true, n.pause.Load().Until
	}
}

func (n *node) notePause(cfg *config.Config, p sentinel.Pause, ok bool) {
	was := n.pause.Load()
	switch {
	case !ok && was == nil:
		return
	case !ok:
		n.pause.Store(nil)
		if err := os.Remove(pausePath(cfg)); err != nil && !errors.Is(err, os.ErrNotExist) {
			n.log.Warn("remove pause record", "err", err)
		}
		n.log.Info("group resumed: automatic failover, fencing and the VIP are back")
		return
	case was != nil && *was == p:
		return
	}
	n.pause.Store(&p)
	b, _ := json.Marshal(p)
	if err := atomicfile.WriteFile(pausePath(cfg), b, 0o644, -1, -1); err != nil {
		n.log.Warn("keep pause record", "err", err)
	}
	n.log.Warn("group paused: no automatic failover, fencing or VIP move until resumed", "by", p.By, "until", p.Until)
}

// keepPriority puts this box's replica-priority where ha.Priority says, when
// that changed (a pause, a resume, a drain) or is not known to be applied:
// set on the change, not every round, so that a switchover's own holds on
// other replicas are not undone under it.
func (n *node) keepPriority(ctx context.Context, cfg *config.Config) {
	want := n.priority(cfg)
	if want == n.st.prioApplied || n.redis.Current() == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := n.local.Redis().Set(cctx, "replica-priority", fmt.Sprint(want)); err != nil {
		n.log.Warn("replica-priority", "want", want, "err", err)
		return
	}
	if n.st.prioApplied >= 0 || want != cfg.Node.Priority {
		n.log.Info("replica-priority set", "priority", want, "paused", n.isPaused(), "drained", n.drained.Load(),
			"empty and never synced", n.unsynced.Load())
	}
	n.st.prioApplied = want
}

// errPaused refuses what a paused group must not do.
var errPaused = fmt.Errorf("%w: the group is paused for maintenance (redis-ha-agent resume ends it)", errRefused)

// pauseCmd is `redis-ha-agent pause [--for D]`: it writes the pause on the
// master and waits until every sentinel sees every replica at priority 0,
// from when on no failover can promote one.
func pauseCmd(ctx context.Context, path string, d time.Duration, out io.Writer) error {
	cfg, err := config.Load(path, config.DefaultEnv())
	if err != nil {
		return err
	}
	if d < 0 {
		return errors.New("pause: --for must be positive")
	}
	master, err := namedMaster(ctx, cfg)
	if err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	p := sentinel.Pause{By: cfg.Self.String(), At: time.Now().UTC()}
	if d > 0 {
		p.Until = p.At.Add(d)
	}
	mc := sentinel.NewRedis(master, cfg.Creds())
	defer mc.Close()
	wctx, cancel := context.WithTimeout(ctx, probeTimeout)
	err = mc.WritePause(wctx, p)
	cancel()
	if err != nil {
		return fmt.Errorf("pause: on the master %s: %w", master, err)
	}
	if err := waitPriorities(ctx, cfg, func(prio int) bool { return prio == 0 }); err != nil {
		fmt.Fprintf(out, "paused, but %v\n", err)
		return errUnhealthy
	}
	until := "until resumed (redis-ha-agent resume)"
	if d > 0 {
		until = "until " + p.Until.Format(time.RFC3339) + " or resumed"
	}
	fmt.Fprintf(out, "paused: no automatic failover, fencing or VIP move %s; every sentinel sees every replica at priority 0\n", until)
	return nil
}

// resumeCmd is `redis-ha-agent resume`: it removes the pause from the
// master. With no master answering (it went down while paused, and nothing
// could replace it) it removes it from each replica instead, so that the
// sentinels can fail over again.
func resumeCmd(ctx context.Context, path string, out io.Writer) error {
	cfg, err := config.Load(path, config.DefaultEnv())
	if err != nil {
		return err
	}
	master, err := namedMaster(ctx, cfg)
	if err == nil {
		mc := sentinel.NewRedis(master, cfg.Creds())
		defer mc.Close()
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err = mc.ClearPause(cctx)
		cancel()
		if err == nil {
			fmt.Fprintf(out, "resumed on the master %s: automatic failover, fencing and the VIP are back\n", master)
			return nil
		}
	}
	fmt.Fprintf(out, "no master to resume on (%v): resuming on every replica that answers\n", err)
	cleared := 0
	for _, a := range cfg.Members() {
		c := sentinel.NewRedis(a, cfg.Creds())
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		if r, rerr := c.Role(cctx); rerr == nil && r.Kind == "slave" {
			if cerr := c.ClearPauseOnReplica(cctx); cerr != nil {
				fmt.Fprintf(out, "  %s: %v\n", a, cerr)
			} else {
				fmt.Fprintf(out, "  %s: resumed\n", a)
				cleared++
			}
		}
		cancel()
		c.Close()
	}
	if cleared == 0 {
		return errors.New("resume: no box answered")
	}
	return nil
}

// namedMaster is the master a quorum of sentinels names, or why there is none.
func namedMaster(ctx context.Context, cfg *config.Config) (wire.Addr, error) {
	if cfg.Single() {
		return cfg.Self, nil
	}
	actx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	m, ok := ha.Agreed(cfg.Group().AskAll(actx), cfg.SentinelQuorum())
	if !ok {
		return wire.Addr{}, fmt.Errorf("no master named by a quorum of %d sentinels", cfg.SentinelQuorum())
	}
	return m, nil
}

// waitPriorities waits until every sentinel that answers sees every replica
// it knows with a priority ok accepts.
func waitPriorities(ctx context.Context, cfg *config.Config, ok func(int) bool) error {
	if cfg.Single() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, pauseSettle)
	defer cancel()
	g := cfg.Group()
	for {
		pending := ""
		for _, s := range g.Sentinels {
			sc := g.Sentinel(s)
			cctx, ccancel := context.WithTimeout(ctx, probeTimeout)
			reps, err := sc.Replicas(cctx, g.Name)
			ccancel()
			sc.Close()
			if err != nil {
				continue // a sentinel that is down sees nothing to fail over with
			}
			for _, r := range reps {
				if !ok(r.Priority) {
					pending = fmt.Sprintf("sentinel %s sees %s at priority %d", s, r.Addr, r.Priority)
				}
			}
		}
		if pending == "" {
			return nil
		}
		if sleepCtx(ctx, 200*time.Millisecond) != nil {
			return fmt.Errorf("after %v %s", pauseSettle, pending)
		}
	}
}
