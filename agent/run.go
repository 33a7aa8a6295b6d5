package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/supervisor"
)

// Timings of the agent. Probes are cheap (one ROLE, one
// GET-MASTER-ADDR-BY-NAME on loopback); a second is well inside down_after.
const (
	observeEvery  = time.Second
	gateRetry     = 200 * time.Millisecond
	failoverRetry = time.Second
	probeTimeout  = time.Second
	readyTimeout  = 24 * time.Hour // systemd's start timeout (extended while loading) is the real bound
	extendEvery   = 10 * time.Second
	reloadDelay   = 250 * time.Millisecond
	childStopWait = 30 * time.Second
)

// node is one running agent. Its state has owners: the loop (loop.go) owns
// what it observes and decides, and publishes a copy for the HTTP API; the
// restart gate owns gated; the role log keeps its own lock because the
// redis child's exits write to it too. Everything else is set once by run.
type node struct {
	log    *slog.Logger
	level  *slog.LevelVar // log.level, set by each good configuration
	path   string
	env    config.Env
	cred   *syscall.Credential // nil when the agent itself is not root
	notify *notifier
	local  sentinel.Local // this box's redis and sentinel, and the master it follows
	cfg    configBox
	roles  roleLog

	redis, sentinel *supervisor.Child

	gated    atomic.Bool                           // the restart gate holds redis down
	redisErr atomic.Pointer[string]                // why redis last exited unasked (ha.Snapshot.RedisErr)
	adopted  struct{ redis, sentinel atomic.Bool } // taken over from the previous agent, to configure
	pause    atomic.Pointer[sentinel.Pause]        // the group's pause last seen; nil: not paused
	drained  atomic.Bool                           // this box is never promoted (drain)
	unsynced atomic.Bool                           // an empty replica that never synced: never promoted (ha.Priority)
	started  atomic.Pointer[[]string]              // what only a restart changes of the running redis (sentinel.RestartOnly)
	pub      atomic.Pointer[published]             // what the loop last saw, for the HTTP API
	restarts struct{ redis, sentinel atomic.Int64 }
	server   atomic.Pointer[sentinel.Server] // what redis.binary says it is (build_info)
	switches atomic.Int64                    // masters the sentinels named after another, since start

	hooks       chan Change   // role changes for hooks.on_role_change
	sentStarted chan struct{} // the local sentinel (re)started: tune it
	failover    chan struct{} // the local master's redis died: ask for a failover now
	ops         chan opCall   // switchover, restart, drain: from the control socket and other boxes into the loop

	st loopState // the loop's own; no other goroutine touches it

	api apiProbe // /primary's probes of the local redis, apart from the loop's

	handler http.Handler // the HTTP API's; nil: sentinel mode's (httpHandler)
}

// run is the daemon: it returns nil on a clean shutdown (ctx cancelled) and an
// error when it cannot go on (the unit restarts it).
func run(ctx context.Context, path string, env config.Env, logger *slog.Logger, level *slog.LevelVar) error {
	cfg, err := config.Load(path, env)
	if err != nil {
		return err
	}
	level.Set(cfg.LogLevel())
	// The daemon's work is a few small requests a second, so on an idle box
	// its CPU is wake-ups, and a second P adds a spinning thread to each of
	// them. One P also stops the runtime re-reading the cgroup CPU limit
	// every second. GOMAXPROCS in the environment still wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	// The live heap stays under 1 MB while the agent allocates ~14 KB a
	// second (probes, logs), so with Go's default the heap first grows to
	// its 4 MB minimum before any GC: RSS swung between 11.5 and 15 MB on an
	// idle master. At GOGC=10 a GC runs every half minute or so (about 2 ms
	// of CPU each) and RSS settles near 12.5 MB. GOGC in the environment
	// still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(10)
	}
	// Files redis and sentinel rewrite themselves (CONFIG REWRITE, a
	// sentinel's flush) hold the password, and they create them with 0644
	// less the umask they inherit from here: nobody else may read them.
	syscall.Umask(0o077)
	// SIGHUP's default action would kill the agent; catch it from the start
	// and act on it once the group is up.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	n := &node{log: logger, level: level, path: path, env: env, notify: &notifier{log: logger},
		hooks: make(chan Change, 16), sentStarted: make(chan struct{}, 1), failover: make(chan struct{}, 1),
		ops: make(chan opCall)}
	n.setConfig(cfg)
	if err := n.prepare(ctx, cfg); err != nil {
		return err
	}
	n.st.prioApplied = -1 // not known: set at the first observation
	n.loadPause(cfg)
	n.loadDrained(cfg)
	if past, err := readHistory(historyPath(cfg)); err != nil {
		logger.Warn("read role history", "err", err)
	} else {
		n.roles.restore(past)
	}
	n.tune(cfg)
	if cfg.ClusterMode() {
		return n.runCluster(ctx, hup)
	}
	logger.Info("starting", "version", Version, "mode", cfg.Describe())

	// The children get their own contexts so that shutdown can stop sentinel
	// before redis: a sentinel that outlives its redis by a moment would count
	// it down and could start a failover of a box that is merely restarting.
	redisCtx, stopRedis := context.WithCancel(context.WithoutCancel(ctx))
	sentCtx, stopSent := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRedis()
	defer stopSent()
	defer n.local.Close()
	defer n.api.redis.Close()

	n.redis = &supervisor.Child{
		Name:    "redis",
		Next:    n.nextRedis,
		OnStart: n.redisStarted,
		OnExit:  n.redisExited,
		Logger:  logger,
	}
	n.sentinel = &supervisor.Child{Name: "sentinel", Next: n.nextSentinel, Logger: logger,
		OnStart: n.sentinelStarted,
		OnExit: func(e supervisor.Exit) {
			if !e.Requested {
				n.restarts.sentinel.Add(1)
			}
		}}

	// Every goroutine run starts ends with its context and is waited for.
	errc := make(chan error, 2)
	var workers sync.WaitGroup
	defer workers.Wait()
	workers.Go(func() { n.failovers(redisCtx) })
	workers.Go(func() {
		if err := n.redis.Run(redisCtx); err != nil {
			errc <- fmt.Errorf("redis: %w", err)
		}
	})

	var loopErr error
	sentRunning := false
	if err := n.waitReady(ctx); err != nil {
		if ctx.Err() == nil {
			loopErr = err
		}
	} else {
		if n.adopted.redis.Load() {
			n.configureAdopted(ctx, n.config())
		}
		sentRunning = true
		workers.Go(func() {
			if err := n.sentinel.Run(sentCtx); err != nil {
				errc <- fmt.Errorf("sentinel: %w", err)
			}
		})
		workers.Go(func() { n.tuneSentinels(sentCtx) })
		workers.Go(func() { n.runHooks(sentCtx, n.hooks, logger.With("component", "hook")) })
		workers.Go(func() { n.rotations(sentCtx) })
		workers.Go(func() { n.serveControl(sentCtx, cfg, logger) })
		workers.Go(func() { n.serveRequests(sentCtx) })
		workers.Go(func() { n.serveHTTP(sentCtx, cfg.HTTPListen, logger) })
		if err := n.waitSentinel(ctx); err == nil {
			s, _ := n.observe(ctx)
			n.notify.ready(ha.StatusLine(s))
			logger.Info("ready")
			loopErr = n.loop(ctx, errc, hup)
		}
	}

	if !errors.Is(loopErr, errModeSwitch) { // the same process goes on in the other mode
		n.notify.stopping()
	}
	// A restart of the unit (systemctl restart, a package upgrade) leaves
	// redis and sentinel serving for the next agent to adopt; a stop takes
	// them down, the master handing its role over first.
	if ctx.Err() != nil && loopErr == nil && n.restarting(context.WithoutCancel(ctx)) {
		logger.Info("systemd restarts the agent: redis and sentinel keep serving, for the next agent to adopt")
		n.redis.Keep()
		n.sentinel.Keep()
		stopSent()
		stopRedis()
		workers.Wait()
		logger.Info("stopped; redis and sentinel left running")
		return nil
	}
	if sentRunning {
		n.handOff(n.config())
		n.releaseVIP(n.config())
	}
	logger.Info("stopping: sentinel first, then redis")
	stopSent()
	if sentRunning {
		select {
		case <-n.sentinel.Done():
		case <-time.After(childStopWait):
		}
	}
	stopRedis()
	workers.Wait()
	logger.Info("stopped")
	if ctx.Err() != nil && loopErr == nil {
		return nil
	}
	return loopErr
}

// configBox holds the configuration in force: the loop replaces it on a
// good reload; the children's Next, the hook runner and the HTTP server
// read it, and wait on changed for the next one.
type configBox struct {
	mu      sync.Mutex
	cfg     *config.Config
	changed chan struct{} // closed (and replaced) when cfg is replaced
}

// config returns the current good configuration.
func (n *node) config() *config.Config {
	cfg, _ := n.configAndChange()
	return cfg
}

// configAndChange returns the current configuration and a channel closed
// when it is replaced.
func (n *node) configAndChange() (*config.Config, <-chan struct{}) {
	n.cfg.mu.Lock()
	defer n.cfg.mu.Unlock()
	if n.cfg.changed == nil {
		n.cfg.changed = make(chan struct{})
	}
	return n.cfg.cfg, n.cfg.changed
}

// setConfig makes next the configuration in force.
func (n *node) setConfig(next *config.Config) { n.swapConfig(nil, next) }

// swapConfig makes next the configuration in force if expect is (nil: in
// any case), and reports whether it did.
func (n *node) swapConfig(expect, next *config.Config) bool {
	n.cfg.mu.Lock()
	defer n.cfg.mu.Unlock()
	if expect != nil && n.cfg.cfg != expect {
		return false
	}
	n.local.Use(next.Self, next.LocalSentinel(), next.Creds())
	n.api.redis.Use(next.Self, next.LocalSentinel(), next.Creds())
	n.cfg.cfg = next
	if n.cfg.changed != nil {
		close(n.cfg.changed)
	}
	n.cfg.changed = make(chan struct{})
	return true
}

// prepare creates the state and runtime directories and decides which user
// the children run as: redis and sentinel never run as root; Valkey runs as
// valkey where that user exists.
func (n *node) prepare(ctx context.Context, cfg *config.Config) error {
	srv, err := serverFor(ctx, cfg)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	uid, gid, user := -1, -1, ""
	if os.Geteuid() == 0 {
		cred, u, err := lookupServiceUser(srv)
		if err != nil {
			return fmt.Errorf("prepare: children must not run as root: %w", err)
		}
		n.cred, user = cred, u
		uid, gid = int(cred.Uid), int(cred.Gid)
	}
	for _, dir := range []string{cfg.Node.DataDir, cfg.Node.RunDir} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	n.log.Info("redis.binary", "path", cfg.Redis.Binary, "server", srv.String(), "user", user)
	n.server.Store(&srv)
	// Redis writes its data and sentinel rewrites its config in the state
	// directory, so it belongs to their user; the agent (root) still reads it.
	if uid >= 0 {
		changed, err := handOver(cfg.Node.DataDir, uid, gid)
		if err != nil {
			return fmt.Errorf("prepare: chown %s: %w", cfg.Node.DataDir, err)
		}
		if changed {
			n.log.Info("state directory handed over to the server's user", "dir", cfg.Node.DataDir, "user", user)
		}
	}
	return nil
}

func (n *node) owner() (int, int) {
	if n.cred == nil {
		return -1, -1
	}
	return int(n.cred.Uid), int(n.cred.Gid)
}

// Paths inside the state directory.
func redisConfPath(cfg *config.Config) string { return filepath.Join(cfg.Node.DataDir, "redis.conf") }
func sentinelConfPath(cfg *config.Config) string {
	return filepath.Join(cfg.Node.DataDir, "sentinel.conf")
}
func myIDPath(cfg *config.Config) string { return filepath.Join(cfg.Node.DataDir, "sentinel.myid") }

// runningMarker exists while redis runs and is removed only after a clean,
// requested stop: finding it at start means the last redis crashed (or the
// box lost power), which is what the restart gate needs to know.
func runningMarker(cfg *config.Config) string {
	return filepath.Join(cfg.Node.DataDir, "redis.running")
}
func redisPidFile(cfg *config.Config) string { return filepath.Join(cfg.Node.RunDir, "redis.pid") }
func sentPidFile(cfg *config.Config) string  { return filepath.Join(cfg.Node.RunDir, "sentinel.pid") }

// errStopping is returned by Next when the agent is shutting down.
var errStopping = errors.New("stopping")

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
