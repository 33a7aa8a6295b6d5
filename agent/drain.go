package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/internal/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
)

// Drain. A drained box hands the master role to a replica (a switchover)
// and is never promoted again until undrained: its redis runs at
// replica-priority 0 (ha.Priority), which Sentinel honours whoever asks for
// a failover. Unlike a pause it is this box's own state, kept in the state
// directory across agent restarts and redis restarts. It is refused when it
// would leave the group unable to fail over (ha.Drain).

func drainedPath(cfg *config.Config) string { return filepath.Join(cfg.Node.DataDir, "drained") }

// loadDrained reads whether this box was drained before the agent started.
func (n *node) loadDrained(cfg *config.Config) {
	_, err := os.Stat(drainedPath(cfg))
	n.drained.Store(err == nil)
}

// drainHere drains this box: it checks that the group can spare it, keeps
// the drain, sets priority 0, and hands the master role over if it has it.
func (n *node) drainHere(ctx context.Context) (string, error) {
	cfg := n.config()
	if n.drained.Load() {
		return "already drained", nil
	}
	v, err := n.drainView(ctx, cfg)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errRefused, err)
	}
	if err := ha.Drain(v); err != nil {
		return "", fmt.Errorf("refused: %w", err)
	}
	if v.SelfMaster && n.isPaused() {
		return "", fmt.Errorf("%w: this box is the master, and handing the role over is a failover", errPaused)
	}
	if err := atomicfile.WriteFile(drainedPath(cfg), []byte("drained\n"), 0o644, -1, -1); err != nil {
		return "", fmt.Errorf("drain: %w", err)
	}
	n.drained.Store(true)
	// Now rather than at the next observation: the switchover below must
	// not find this box promotable once it is a replica.
	if err := n.setPriority(ctx, cfg); err != nil {
		return "", fmt.Errorf("drain: %w", err)
	}
	if v.SelfMaster {
		if err := n.handOverTo(ctx, cfg, ""); err != nil {
			return "", fmt.Errorf("drain: drained, but the master role is still here: %w", err)
		}
		return "drained: the master role was handed over; this box is never promoted until undrained", nil
	}
	return "drained: this box is never promoted until undrained", nil
}

// undrainHere ends the drain.
func (n *node) undrainHere(ctx context.Context) (string, error) {
	cfg := n.config()
	if !n.drained.Load() {
		return "not drained", nil
	}
	if err := os.Remove(drainedPath(cfg)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("undrain: %w", err)
	}
	n.drained.Store(false)
	if err := n.setPriority(ctx, cfg); err != nil {
		return "", fmt.Errorf("undrain: %w", err)
	}
	return fmt.Sprintf("undrained: replica-priority %d again", n.priority(cfg)), nil
}

// setPriority sets redis's replica-priority to what ha.Priority says now;
// the loop's keepPriority then finds it applied.
func (n *node) setPriority(ctx context.Context, cfg *config.Config) error {
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	return n.local.Redis().Set(cctx, "replica-priority", strconv.Itoa(n.priority(cfg)))
}

// drainView asks the sentinels and every other box what ha.Drain weighs.
func (n *node) drainView(ctx context.Context, cfg *config.Config) (ha.DrainView, error) {
	v := ha.DrainView{Peers: len(cfg.Peers), Quorum: cfg.SentinelQuorum()}
	if cfg.Single() {
		return v, nil
	}
	actx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	answers := cfg.Group().AskAll(actx)
	master, ok := ha.Agreed(answers, cfg.SentinelQuorum())
	if !ok {
		return v, fmt.Errorf("no master named by a quorum of %d sentinels", cfg.SentinelQuorum())
	}
	v.SelfMaster = master == cfg.Self
	for _, a := range answers {
		if a.Sentinel != cfg.LocalSentinel() && a.Reachable() {
			v.OtherSentinels++
		}
	}
	for _, m := range cfg.Members() {
		if m == cfg.Self || m == master {
			continue
		}
		c := sentinel.NewRedis(m, cfg.Creds())
		r, err := c.Role(actx)
		prio, perr := c.Get(actx, "replica-priority")
		c.Close()
		if err == nil && perr == nil && r.Kind == "slave" && r.Master == master && r.Link == "connected" && prio != "0" {
			v.Promotable++
		}
	}
	return v, nil
}

// drainCmd is `redis-ha-agent drain` and `undrain`: the local agent does it.
func drainCmd(ctx context.Context, path string, undrain bool, out io.Writer) error {
	cfg, err := config.Load(path, config.DefaultEnv())
	if err != nil {
		return err
	}
	op := "/drain"
	if undrain {
		op = "/undrain"
	}
	reply, err := controlCall(ctx, cfg, op, time.Minute)
	if err != nil {
		return fmt.Errorf("%s: %w", op[1:], err)
	}
	fmt.Fprintf(out, "%s: %s\n", cfg.Self, reply.Message)
	return nil
}
