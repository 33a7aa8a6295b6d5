package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sysctl"
)

// watchConfig watches the configuration directory and its conf.d and sends
// on the returned channel once a burst of changes has settled. Directories,
// not files, are watched: editors and package managers replace files by
// rename, which drops a watch on the file itself.
func watchConfig(ctx context.Context, path string, log *slog.Logger) (<-chan struct{}, func(), error) {
	out := make(chan struct{}, 1)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return out, func() {}, fmt.Errorf("watch config: %w", err)
	}
	dir := filepath.Dir(path)
	confd := filepath.Join(dir, "conf.d")
	if err := w.Add(dir); err != nil {
		w.Close()
		return out, func() {}, fmt.Errorf("watch config: %s: %w", dir, err)
	}
	// conf.d may be created later; its creation shows up as an event in dir.
	_ = w.Add(confd)

	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var settle <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op == fsnotify.Chmod || !configRelevant(path, ev.Name) {
					continue
				}
				if ev.Name == confd && ev.Has(fsnotify.Create) {
					_ = w.Add(confd)
				}
				settle = time.After(reloadDelay)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				// On overflow we missed events: a full re-read covers it.
				log.Warn("config watch", "err", err)
				settle = time.After(reloadDelay)
			case <-settle:
				settle = nil
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	stop := func() {
		cancel()
		w.Close()
		<-done
	}
	return out, stop, nil
}

// configRelevant reports whether a change to name can change the
// configuration: the base file, conf.d and what is in it, and the default
// password file's place. Anything else sharing the directory (a log, a
// state directory in a test layout) must not trigger reloads.
func configRelevant(path, name string) bool {
	dir := filepath.Dir(path)
	confd := filepath.Join(dir, "conf.d")
	switch {
	case name == path, name == confd, filepath.Dir(name) == confd:
		return true
	case filepath.Base(name) == "password":
		return true
	}
	return false
}

// reload re-reads the whole configuration set. An invalid set is refused and
// the last good configuration stays in force; an unchanged set is a no-op.
//
// A change of cluster.mode cannot be applied to running children: when the
// new mode may start here, reload returns errModeSwitch, and the agent stops
// redis and sentinel and starts again in the new mode, in the same process
// (systemd sees one reload); the agent in the new mode sends READY=1.
func (n *node) reload(ctx context.Context) error {
	n.notify.reloading()
	switching := false
	// READY=1 ends every other reload, refused or not: systemd waits for it.
	defer func() {
		if !switching {
			s, _ := n.observe(ctx)
			n.notify.ready(ha.StatusLine(s))
		}
	}()
	next, err := config.Load(n.path, n.env)
	if err != nil {
		n.log.Error("reload refused; keeping the last good configuration", "err", err)
		n.st.reloadErr = firstProblem(err)
		return nil
	}
	cur := n.config()
	if next.ClusterMode() != cur.ClusterMode() {
		if err := n.canSwitchMode(ctx, next); err != nil {
			n.log.Error("reload refused; keeping the last good configuration", "err", err)
			n.st.reloadErr = err.Error()
			return nil
		}
		n.log.Info("reload: cluster.mode changed; the agent stops redis and sentinel and starts again in the new mode", "mode", next.Cluster.Mode)
		switching = true
		return errModeSwitch
	}
	if next.Redis.Binary != cur.Redis.Binary {
		if err := n.checkSwitch(ctx, next); err != nil {
			n.log.Error("reload refused; keeping the last good configuration", "err", err)
			n.st.reloadErr = err.Error()
			return nil
		}
	}
	n.st.reloadErr = ""
	if next.Sum == cur.Sum {
		n.log.Info("reload: configuration unchanged")
		return nil
	}
	if next.Certs.Same(cur.Certs) {
		// The same material read again: keep the client configuration, so
		// that the connections made with it are kept too.
		next.Certs = cur.Certs
	}
	next.Rotation = rolling(cur, next)
	if next.Rotation != nil && next.Password != cur.Password {
		n.log.Info("password rotation: accepting the new password's secrets beside the old ones until every box does")
	}
	n.setConfig(next)
	n.level.Set(next.LogLevel())
	n.apply(ctx, cur, next)
	if next.Auth.ACL && (next.Rotation != nil || !cur.Auth.ACL) {
		// The rotation goes on retrying (rotations); a sentinel restarted
		// by this reload may not be up yet.
		if err := n.applyACL(ctx, next, ""); err != nil {
			n.log.Warn("reload: acl users not applied yet", "err", err)
		}
	}
	return nil
}

// errModeSwitch ends the agent's run in one mode for a run in the other
// (Main starts it again).
var errModeSwitch = errors.New("cluster.mode changed")

// canSwitchMode says why this box cannot move to next's cluster.mode now:
// cluster mode starts only over no data, and the data redis holds now would
// be left behind in sentinel mode's files.
func (n *node) canSwitchMode(ctx context.Context, next *config.Config) error {
	if !next.ClusterMode() {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	keys, err := n.local.Redis().Keys(cctx)
	if err != nil {
		return fmt.Errorf("cluster.mode: cannot tell whether redis holds data: %w", err)
	}
	if keys > 0 {
		return fmt.Errorf("cluster.mode: this box's redis holds %d keys; a cluster is created only over empty instances: "+
			"move the data out (or into the cluster once it exists) before switching modes", keys)
	}
	return noSentinelData(next)
}

// checkSwitch refuses a new redis.binary that cannot load this box's data, or
// that runs as another user than the server running now: the children's user
// is decided once, at start, so such a switch takes a restart of the agent.
func (n *node) checkSwitch(ctx context.Context, next *config.Config) error {
	srv, err := serverFor(ctx, next)
	if err != nil || n.cred == nil {
		return err
	}
	cred, user, err := lookupServiceUser(srv)
	if err != nil {
		return fmt.Errorf("redis.binary: %w", err)
	}
	if cred.Uid != n.cred.Uid {
		return fmt.Errorf("redis.binary: %s runs as user %s, not as the running server's user: restart the agent to switch (systemctl restart redis-ha-agent)", srv, user)
	}
	return nil
}

// firstProblem is the first line of a configuration error, short enough for
// STATUS= ("conf.d/50-typo.conf:2: redis.prot: unknown key").
func firstProblem(err error) string {
	var cerr *config.Error
	if errors.As(err, &cerr) && len(cerr.Problems) > 0 {
		return cerr.Problems[0].String()
	}
	return err.Error()
}

// apply moves the running children from cur to next: at runtime where Redis
// allows it (CONFIG SET, SENTINEL SET), by restarting a child only where it
// must. What changed, and how it may change, is read off the directives the
// files are rendered from (sentinel.Diff).
func (n *node) apply(ctx context.Context, cur, next *config.Config) {
	if cur.Tuning != next.Tuning {
		n.tune(next)
	}
	// Renewed certificates go where redis and sentinel read them before
	// either is told to read them again.
	if err := n.writeTLS(next); err != nil {
		n.log.Error("reload: tls files", "err", err)
	}
	set, restart := sentinel.Diff(redisConf(cur, nil).Directives(), redisConf(next, nil).Directives())
	// A changed node.priority reaches redis through keepPriority, which
	// knows whether a pause or a drain holds it at 0.
	set = slices.DeleteFunc(set, func(kv [2]string) bool { return kv[0] == "replica-priority" })
	if cur.Node.Priority != next.Node.Priority {
		n.st.prioApplied = -1
	}
	if cur.Redis.Binary != next.Redis.Binary {
		restart = "redis.binary changed"
	}
	if restart != "" {
		n.log.Info("reload: redis must restart", "why", restart)
		n.redis.Restart()
	} else if err := n.applyRedis(ctx, cur, set); err != nil {
		n.log.Warn("reload: runtime change refused by redis; restarting it", "err", err)
		n.redis.Restart()
	} else if len(cur.Peers) != len(next.Peers) {
		n.resizeFence(ctx, next)
	}
	switch {
	case cur.Single() != next.Single():
		n.log.Info("reload: single-box mode changed; restarting sentinel")
		n.sentinel.Restart()
	case next.Single(): // no sentinel in single-box mode
	default:
		set, restart := sentinel.Diff(sentinelConf(cur).Directives(), sentinelConf(next).Directives())
		if cur.Redis.Binary != next.Redis.Binary {
			restart = "redis.binary changed"
		}
		if restart != "" {
			n.log.Info("reload: sentinel must restart", "why", restart)
			n.sentinel.Restart()
		} else if err := n.applySentinel(ctx, next, set); err != nil {
			n.log.Warn("reload: SENTINEL SET failed; restarting sentinel", "err", err)
			n.sentinel.Restart()
		}
	}
	n.log.Info("reload applied", "mode", next.Describe())
}

// applyRedis makes the runtime changes (CONFIG SET).
func (n *node) applyRedis(ctx context.Context, cur *config.Config, set [][2]string) error {
	if len(set) == 0 {
		return nil
	}
	// The old password still authenticates the connection we have.
	c := sentinel.NewRedis(cur.Self, cur.Creds())
	defer c.Close()
	for _, kv := range set {
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := c.Set(cctx, kv[0], kv[1])
		cancel()
		if err != nil {
			return err
		}
		n.log.Info("reload: redis setting applied", "key", kv[0])
	}
	return nil
}

// resizeFence puts min-replicas-to-write where a group of next's size wants
// it, on every box (a replica keeps it when promoted): the healthy value, or
// the fence on a fenced master. redis.conf has it only from the next start.
// Kept from three boxes in a group grown to five, a master cut off with one
// replica would go on acknowledging writes while its agent is dead; kept
// from five in a group shrunk to three, a master would refuse every write
// as soon as one of its two replicas went.
func (n *node) resizeFence(ctx context.Context, next *config.Config) {
	put, what := n.local.Redis().Unfence, "min-replicas-to-write"
	if n.st.fenced {
		put, what = n.local.Redis().Fence, "fence"
	}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := put(cctx, len(next.Peers)); err != nil {
		// FenceDrift puts a fence right at the next rounds; the healthy
		// value is rendered again at redis's next start.
		n.log.Warn("reload: "+what+" for the new number of peers not set", "peers", len(next.Peers), "err", err)
		return
	}
	n.log.Info("reload: "+what+" follows the number of peers", "peers", len(next.Peers), "fenced", n.st.fenced)
}

// applySentinel pushes the per-group settings to the local sentinel; every
// agent does the same on its own box, so all sentinels converge.
func (n *node) applySentinel(ctx context.Context, next *config.Config, set [][2]string) error {
	if len(set) == 0 {
		return nil
	}
	var kv []string
	for _, s := range set {
		kv = append(kv, s[0], s[1])
	}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	return n.local.Sentinel().Set(cctx, next.Cluster.Name, kv...)
}

// tune applies the kernel settings: plan, apply, verify. Without root it
// only warns; redis runs (and warns itself) either way.
func (n *node) tune(cfg *config.Config) {
	if !cfg.Tuning.Enabled {
		return
	}
	d := desiredKernel(cfg)
	roots := sysctl.Roots{Proc: "/proc", Sys: "/sys"}
	if os.Geteuid() != 0 {
		drift, err := sysctl.Verify(roots, d)
		if err == nil && len(drift) == 0 {
			return
		}
		n.log.Warn("kernel tuning skipped: not root", "drift", describeDrift(drift), "err", err)
		return
	}
	plan, err := sysctl.Plan(roots, d)
	if err != nil {
		n.log.Warn("kernel tuning: plan", "err", err)
		return
	}
	changed, err := sysctl.Apply(roots, plan)
	for _, it := range changed {
		n.log.Info("kernel setting applied", "key", it.Name, "from", it.Current, "to", it.Want)
	}
	if err != nil {
		n.log.Warn("kernel tuning: apply", "err", err)
	}
	if drift, err := sysctl.Verify(roots, d); err != nil || len(drift) > 0 {
		n.log.Warn("kernel tuning: not in effect", "drift", describeDrift(drift), "err", err)
	}
}

func desiredKernel(cfg *config.Config) sysctl.Desired {
	return sysctl.Desired{
		Somaxconn:            cfg.Tuning.Somaxconn,
		OvercommitMemory:     cfg.Tuning.OvercommitMemory,
		TransparentHugepages: cfg.Tuning.TransparentHugepages,
	}
}

func describeDrift(items []sysctl.Item) string {
	s := ""
	for i, it := range items {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s=%s (want %s)", it.Name, it.Current, it.Want)
	}
	return s
}
