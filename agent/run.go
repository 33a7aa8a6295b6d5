package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
	"github.com/redis-ha-agent/redis-ha-agent/supervisor"
)

// Timings of the control loop. Probes are cheap (one ROLE, one
// GET-MASTER-ADDR-BY-NAME on loopback); a second is well inside down_after.
const (
	observeEvery  = time.Second // driven by the fence loop's clock (fence.go)
	gateRetry     = 200 * time.Millisecond
	failoverRetry = time.Second
	probeTimeout  = time.Second
	readyTimeout  = 24 * time.Hour // systemd's start timeout (extended while loading) is the real bound
	extendEvery   = 10 * time.Second
	reloadDelay   = 250 * time.Millisecond
	serviceUser   = "redis"
	childStopWait = 30 * time.Second
)

// node is one running agent: the last good configuration, what it last
// observed of its redis and sentinels, and the two supervised children.
type node struct {
	log  *slog.Logger
	path string
	env  config.Env
	cred *syscall.Credential // nil when the agent itself is not root

	local sentinel.Local // this box's redis and sentinel, and the master it follows

	mu          sync.Mutex
	cfg         *config.Config
	master      wire.Addr // the master the sentinels (or our own start decision) name
	notify      *notifier
	gated       bool          // the restart gate holds redis down
	fenced      bool          // this master refuses writes: it sees no majority
	view        quorumView    // what the sentinels say (fence.go)
	last        snapshot      // the latest observation (observe.go)
	lastAt      time.Time     // when it was taken
	lag         int64         // replica: bytes behind its master at that observation
	counts      counters      // events since start, for /metrics
	hooks       chan Change   // role changes for hooks.on_role_change
	refresh     chan struct{} // asks the fence loop for a quorum round now
	observeTick chan struct{} // the fence loop's clock: time for a periodic observation
	sentStarted chan struct{} // the local sentinel (re)started: tune it
	failover    chan struct{} // the local master's redis died: ask for a failover now
	vipErr      string        // last VIP problem logged
	reloadErr   string        // why the last reload was refused; "" after a good one
	prevOffset  int64         // master offset at the previous observation
	changed     chan struct{} // closed (and replaced) when cfg is replaced
	hist        struct {
		role   string // last recorded role: master, replica, down, "" (none yet)
		offset int64  // last offset seen in that role
		cause  string // why the next change happens, when the agent caused it
	}

	redis, sentinel *supervisor.Child
}

// run is the daemon: it returns nil on a clean shutdown (ctx cancelled) and an
// error when it cannot go on (the unit restarts it).
func run(ctx context.Context, path string, env config.Env, logger *slog.Logger) error {
	cfg, err := config.Load(path, env)
	if err != nil {
		return err
	}
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
	// SIGHUP's default action would kill the agent; catch it from the start
	// and act on it once the group is up.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	n := &node{log: logger, path: path, env: env, cfg: cfg, changed: make(chan struct{}),
		notify: &notifier{log: logger}, hooks: make(chan Change, 16),
		refresh: make(chan struct{}, 1), observeTick: make(chan struct{}, 1), sentStarted: make(chan struct{}, 1),
		failover: make(chan struct{}, 1)}
	n.useLocal(cfg)
	if err := n.prepare(cfg); err != nil {
		return err
	}
	if past, err := readHistory(historyPath(cfg)); err != nil {
		logger.Warn("read role history", "err", err)
	} else if len(past) > 0 {
		last := past[len(past)-1]
		n.hist.role, n.hist.offset = last.To, last.OffsetAfter
	}
	n.tune(cfg)
	logger.Info("starting", "version", Version, "mode", cfg.Describe())

	// The children get their own contexts so that shutdown can stop sentinel
	// before redis: a sentinel that outlives its redis by a moment would count
	// it down and could start a failover of a box that is merely restarting.
	redisCtx, stopRedis := context.WithCancel(context.WithoutCancel(ctx))
	sentCtx, stopSent := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRedis()
	defer stopSent()
	defer n.local.Close()

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
				n.mu.Lock()
				n.counts.sentRestarts++
				n.mu.Unlock()
			}
		}}

	errc := make(chan error, 2)
	var children sync.WaitGroup
	children.Go(func() { n.failovers(ctx) })
	children.Add(1)
	go func() {
		defer children.Done()
		if err := n.redis.Run(redisCtx); err != nil {
			errc <- fmt.Errorf("redis: %w", err)
		}
	}()

	if err := n.waitReady(ctx); err != nil {
		stopRedis()
		children.Wait()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	children.Add(1)
	go func() {
		defer children.Done()
		if err := n.sentinel.Run(sentCtx); err != nil {
			errc <- fmt.Errorf("sentinel: %w", err)
		}
	}()

	children.Add(5)
	go func() {
		defer children.Done()
		n.tuneSentinels(sentCtx)
	}()
	go func() {
		defer children.Done()
		n.runHooks(sentCtx, n.hooks, logger.With("component", "hook"))
	}()
	go func() {
		defer children.Done()
		n.serveControl(sentCtx, cfg, logger)
	}()
	go func() {
		defer children.Done()
		n.serveHTTP(sentCtx, cfg.HTTPListen, logger)
	}()
	go func() {
		defer children.Done()
		n.fenceLoop(sentCtx)
	}()

	var loopErr error
	if err := n.waitSentinel(ctx); err == nil {
		n.notify.ready(statusLine(n.observe(ctx)))
		logger.Info("ready")
		loopErr = n.loop(ctx, errc, hup)
	}

	n.notify.stopping()
	logger.Info("stopping: sentinel first, then redis")
	stopSent()
	select {
	case <-n.sentinel.Done():
	case <-time.After(childStopWait):
	}
	stopRedis()
	children.Wait()
	logger.Info("stopped")
	if ctx.Err() != nil && loopErr == nil {
		return nil
	}
	return loopErr
}

// loop follows the group until ctx ends: periodic probes, sentinel events,
// and reloads from SIGHUP or changes in the configuration directory.
func (n *node) loop(ctx context.Context, errc <-chan error, hup <-chan os.Signal) error {
	changes, stopWatch, err := watchConfig(ctx, n.path, n.log)
	if err != nil {
		// Reload through SIGHUP still works; say why the watch is missing.
		n.log.Warn("config watch unavailable; reload with SIGHUP", "err", err)
	}
	defer stopWatch()

	events := n.sentinelEvents(ctx)
	// WATCHDOG=1 comes from this loop only: if the loop hangs, systemd
	// notices and restarts the agent.
	var dog <-chan time.Time
	if every := watchdogEvery(); every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		dog = t.C
		n.notify.watchdog()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-dog:
			n.notify.watchdog()
		case err := <-errc:
			return err
		case <-n.observeTick:
			n.observe(ctx)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Type == "+switch-master" || ev.Type == "resubscribed" || ev.Type == "+convert-to-slave" || ev.Type == "+promoted-slave" {
				n.log.Info("sentinel event", "type", ev.Type, "payload", ev.Payload)
				n.observe(ctx)
				select {
				case n.refresh <- struct{}{}:
				default:
				}
			}
		case <-hup:
			n.log.Info("SIGHUP: reloading configuration")
			n.reload(ctx)
		case <-changes:
			n.log.Info("configuration directory changed: reloading")
			n.reload(ctx)
		}
	}
}

// config returns the current good configuration.
func (n *node) config() *config.Config {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cfg
}

// configAndChange returns the current configuration and a channel closed
// when it is replaced.
func (n *node) configAndChange() (*config.Config, <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cfg, n.changed
}

// setConfig makes next the configuration in force.
func (n *node) setConfig(next *config.Config) {
	n.useLocal(next)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cfg = next
	close(n.changed)
	n.changed = make(chan struct{})
}

// useLocal points the local clients at cfg's redis and sentinel.
func (n *node) useLocal(cfg *config.Config) {
	n.local.Use(cfg.Self, cfg.LocalSentinel(), cfg.Password)
}

// prepare creates the state and runtime directories and decides which user
// the children run as: redis and sentinel never run as root.
func (n *node) prepare(cfg *config.Config) error {
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		cred, err := supervisor.LookupCredential(serviceUser)
		if err != nil {
			return fmt.Errorf("prepare: children must not run as root: %w", err)
		}
		n.cred = cred
		uid, gid = int(cred.Uid), int(cred.Gid)
	}
	for _, dir := range []string{cfg.Node.DataDir, cfg.Node.RunDir} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	// Redis writes its data and sentinel rewrites its config in the state
	// directory, so it belongs to their user; the agent (root) still reads it.
	if uid >= 0 {
		if err := os.Chown(cfg.Node.DataDir, uid, gid); err != nil {
			return fmt.Errorf("prepare: chown %s: %w", cfg.Node.DataDir, err)
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
