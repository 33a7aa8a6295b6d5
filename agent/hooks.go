package agent

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/internal/safefile"
	"github.com/redis-ha-agent/redis-ha-agent/supervisor"
)

// hookTimeout bounds hooks.on_role_change; a hook still running then is
// stopped (SIGTERM, then SIGKILL) so a stuck script cannot pile up.
const hookTimeout = 30 * time.Second

// runHooks runs hooks.on_role_change for each role change it receives, one
// at a time, in order, until ctx ends. The control loop only enqueues: a slow
// or failing hook never delays it.
func (n *node) runHooks(ctx context.Context, changes <-chan Change, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-changes:
			path := n.config().Hooks.OnRoleChange
			if path == "" || (c.To != "master" && c.To != "replica") {
				continue
			}
			host, port, err := net.SplitHostPort(c.Master)
			if err != nil {
				continue
			}
			// Checked at load and again now: the hook runs as root, and the
			// file or a directory above it may have changed hands since.
			if err := safefile.Trusted(path); err != nil {
				log.Error("hook refused: not run", "hook", path, "err", err)
				continue
			}
			runHook(ctx, supervisor.Spec{Name: "hook", Path: path, Args: []string{c.To, host, port}, StopGrace: 5 * time.Second}, log)
		}
	}
}

func runHook(ctx context.Context, spec supervisor.Spec, log *slog.Logger) {
	start := time.Now()
	p, err := supervisor.Start(spec, log)
	if err != nil {
		log.Warn("hook failed to start", "hook", spec.Path, "err", err)
		return
	}
	t := time.NewTimer(hookTimeout)
	defer t.Stop()
	select {
	case <-p.Done():
	case <-t.C:
		log.Warn("hook timed out; stopping it", "hook", spec.Path, "timeout", hookTimeout)
		_ = p.Stop()
	case <-ctx.Done():
		_ = p.Stop()
	}
	if err := p.Err(); err != nil {
		log.Warn("hook failed", "hook", spec.Path, "args", spec.Args, "err", err, "last output", lastLine(p.Tail()))
		return
	}
	log.Info("hook ran", "hook", spec.Path, "args", spec.Args, "took", time.Since(start).Round(time.Millisecond))
}
