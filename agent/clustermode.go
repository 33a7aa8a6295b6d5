package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/internal/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/internal/safefile"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
	"github.com/redis-ha-agent/redis-ha-agent/supervisor"
)

// Cluster mode (cluster.mode = "cluster"): each box runs 1 + cluster.replicas
// redis instances of one Redis Cluster, no Sentinel. The agents create the
// cluster once, by plan (ha.Plan: shard i's master on box i, its replicas on
// the boxes after it), and keep it so: a crashed master is held down until
// its replica took its slots over, a new or re-imaged instance is met and
// made its shard's replica, a returning planned master takes its shard back
// by CLUSTER FAILOVER, ghosts of replaced boxes are forgotten, and a master
// cut off from the majority fences itself. Redis Cluster does the rest:
// failure detection, elections, redirecting clients.
//
// What it shares with sentinel mode is the node: the configuration and its
// reload, the state and runtime directories, tuning, the TLS files,
// sd_notify, history, the HTTP API's listener and the control socket.

// Cluster mode's timings.
const (
	clusterObserveEvery = time.Second
	liveIDsEvery        = 5 * time.Second        // how often every configured instance is asked its node id
	followAfter         = 2 * time.Second        // a replica following the wrong master is re-pointed after this
	failbackSettle      = 2 * time.Second        // caught up this long before failback
	remeetEvery         = 10 * time.Second       // one MEET per moved instance per this
	clusterPingTimeout  = 200 * time.Millisecond // the fence's reachability probe
	askTimeout          = 500 * time.Millisecond // one instance's answer
)

// clusterAgent is the daemon in cluster mode.
type clusterAgent struct {
	n     *node
	log   *slog.Logger
	pool  sentinel.Pool
	plan  ha.Plan
	box   int // this box's index in the plan
	insts []*instance
	ops   chan opCall // switchover from the control socket
	pub   atomic.Pointer[clusterPub]
	st    clusterLoop // the loop's own
}

// instance is one local redis instance and what the agent keeps of it.
type instance struct {
	j     int
	addr  wire.Addr
	place ha.Place
	child *supervisor.Child
	roles roleLog

	gated    atomic.Bool // the restart gate holds it down
	adopted  atomic.Bool // taken over from the previous agent
	fresh    atomic.Bool // started by this agent and not observed since: failback may be due
	restarts atomic.Int64

	// The loop's own.
	obs      instObs
	fence    ha.Fence
	fenced   bool
	failback ha.Failback
	wasMast  bool      // master at the last observation
	mfstart  string    // cluster_stats_messages_mfstart_received when last seen master, before any manual failover began
	mfNewAt  time.Time // when a master was first seen with another count than mfstart (zero: none)
	follow   string    // the master id this instance should follow, since followAt
	followAt time.Time
	lastTry  time.Time // the gate's last CLUSTER FAILOVER FORCE
}

// clusterNodeTimeout is cluster-node-timeout for sentinel.down_after: half
// of it. A node pings a peer whose last answer is half a node-timeout old
// and marks it failing once that ping is a node-timeout old; the cluster
// marks it failed once a majority of masters' reports have been gossiped:
// 1.35 to 1.9 node-timeouts after the peer fell silent on the box bench. At
// half of down_after, the whole detection stays within down_after, as
// Sentinel's does, and the replica's election (0.5–1 s) fits in the second
// the guarantees allow beyond it.
func clusterNodeTimeout(cfg *config.Config) time.Duration {
	return time.Duration(cfg.Sentinel.DownAfter) / 2
}

// Paths of an instance: its own directory in the state directory (data,
// redis.conf, nodes.conf, the gate's marker), its pid file and output
// pipe in the runtime directory.
func instDir(cfg *config.Config, a wire.Addr) string {
	return filepath.Join(cfg.Node.DataDir, strconv.Itoa(a.Port))
}
func instConf(cfg *config.Config, a wire.Addr) string {
	return filepath.Join(instDir(cfg, a), "redis.conf")
}
func nodesConf(cfg *config.Config, a wire.Addr) string {
	return filepath.Join(instDir(cfg, a), "nodes.conf")
}
func instMarker(cfg *config.Config, a wire.Addr) string {
	return filepath.Join(instDir(cfg, a), "redis.running")
}
func instPid(cfg *config.Config, a wire.Addr) string {
	return filepath.Join(cfg.Node.RunDir, fmt.Sprintf("redis-%d.pid", a.Port))
}

// clusterPlan is the configuration's plan.
func clusterPlan(cfg *config.Config) ha.Plan {
	return ha.Plan{Boxes: cfg.Peers, Replicas: cfg.Cluster.Replicas}
}

// clusterRedisConf is what the configuration says of one instance's
// redis.conf; fenced starts it refusing writes.
func clusterRedisConf(cfg *config.Config, a wire.Addr, fenced bool) sentinel.RedisConf {
	rc := sentinel.RedisConf{
		Port:        a.Port,
		Bind:        cfg.Bind(),
		Announce:    a,
		Dir:         instDir(cfg, a),
		Password:    cfg.Password,
		Persistence: cfg.Redis.Persistence,
		Priority:    cfg.Node.Priority,
		Settings:    cfg.Redis.Settings,
		// The fence (min-replicas-to-write) is the agent's alone in cluster
		// mode: a shard whose replica's box is down must keep its writes.
		MinReplicasMaxLag: 10,
		TLS:               tlsFiles(cfg),
		Cluster: &sentinel.ClusterConf{
			ConfigFile:  nodesConf(cfg, a),
			NodeTimeout: clusterNodeTimeout(cfg),
			BusPort:     config.BusPort(a),
			AnnounceIP:  a.Host,
		},
	}
	if fenced {
		rc.MinReplicas = sentinel.ClusterFenceValue()
	}
	return rc
}

// runCluster is the daemon in cluster mode; run has loaded the
// configuration, prepared the directories and tuned the kernel.
// noSentinelData refuses cluster mode over sentinel mode's data. Sentinel
// mode keeps its dataset in the state directory itself, cluster mode each
// instance's in a directory of its own: a box switched to cluster mode over
// a sentinel group's data would create an empty cluster beside the data,
// which no client would see again. The files an empty redis leaves (a box
// started in single-box mode by the package, then given its drop-in) are
// no data.
func noSentinelData(cfg *config.Config) error {
	file, err := sentinel.DataHeld(cfg.Node.DataDir)
	if err != nil {
		return &refusal{fmt.Errorf("cluster mode: read %s: %w", cfg.Node.DataDir, err)}
	}
	if file != "" {
		return &refusal{fmt.Errorf("cluster mode: %s holds sentinel mode's data (%s); "+
			"a cluster is created only over empty instances: set cluster.mode back to %q, "+
			"or move the data files out of %s to start the cluster empty",
			cfg.Node.DataDir, filepath.Base(file), config.ModeSentinel, cfg.Node.DataDir)}
	}
	return nil
}

func (n *node) runCluster(ctx context.Context, hup <-chan os.Signal) error {
	cfg := n.config()
	if err := noSentinelData(cfg); err != nil {
		return err
	}
	c := &clusterAgent{n: n, log: n.log, plan: clusterPlan(cfg), box: clusterPlan(cfg).BoxOf(cfg.Self), ops: make(chan opCall)}
	c.pool.Use(cfg.Creds())
	defer c.pool.Close()
	past, err := readHistory(historyPath(cfg))
	if err != nil {
		n.log.Warn("read role history", "err", err)
	}
	uid, gid := n.owner()
	for j, a := range cfg.Instances(cfg.Self) {
		if err := os.MkdirAll(instDir(cfg, a), 0o750); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		if uid >= 0 {
			if err := os.Chown(instDir(cfg, a), uid, gid); err != nil {
				return fmt.Errorf("prepare: chown %s: %w", instDir(cfg, a), err)
			}
		}
		inst := &instance{j: j, addr: a, place: c.plan.PlaceOf(c.box, j)}
		inst.roles.other = "changed by Redis Cluster: a failover, or its master's"
		inst.roles.restore(slices.DeleteFunc(slices.Clone(past), func(ch Change) bool { return ch.Instance != a.String() }))
		inst.failback = ha.Failback{Settle: failbackSettle, Retry: 2*time.Duration(cfg.Sentinel.DownAfter) + time.Second}
		inst.child = &supervisor.Child{
			Name: fmt.Sprintf("redis-%d", a.Port),
			Next: func(ctx context.Context, last *supervisor.Exit) (supervisor.Spec, error) {
				return c.next(ctx, inst, last)
			},
			OnStart: func(p *supervisor.Process) {
				c.log.Info("redis instance started", "instance", a.String(), "pid", p.Pid())
			},
			OnExit: func(e supervisor.Exit) { c.exited(inst, e) },
			Logger: n.log,
		}
		c.insts = append(c.insts, inst)
	}
	n.handler = c.httpHandler()
	n.log.Info("starting in cluster mode", "version", Version, "box", cfg.Self.String(), "instances", len(c.insts),
		"plan", c.describePlan())

	// The instances get a context of their own: an agent restarted by
	// systemd leaves them serving (Keep), a stop takes them down.
	instCtx, stopInst := context.WithCancel(context.WithoutCancel(ctx))
	defer stopInst()
	errc := make(chan error, len(c.insts))
	var workers sync.WaitGroup
	defer workers.Wait()
	for _, inst := range c.insts {
		workers.Go(func() {
			if err := inst.child.Run(instCtx); err != nil {
				errc <- fmt.Errorf("redis %s: %w", inst.addr, err)
			}
		})
	}
	svcCtx, stopSvc := context.WithCancel(ctx)
	defer stopSvc()
	workers.Go(func() { n.runHooks(svcCtx, n.hooks, n.log.With("component", "hook")) })

	var loopErr error
	if err := c.waitLoaded(ctx); err != nil {
		if ctx.Err() == nil {
			loopErr = err
		}
	} else {
		c.configureAdopted(ctx)
		workers.Go(func() { c.serveControl(svcCtx) })
		workers.Go(func() { n.serveHTTP(svcCtx, cfg.HTTPListen, n.log) })
		if err := c.waitCluster(ctx); err == nil {
			n.notify.ready(c.statusLine())
			n.log.Info("ready")
			loopErr = c.loop(ctx, errc, hup)
		}
	}
	n.notify.stopping()
	stopSvc()
	if ctx.Err() != nil && loopErr == nil && n.restarting(context.WithoutCancel(ctx)) {
		n.log.Info("systemd restarts the agent: the redis instances keep serving, for the next agent to adopt")
		for _, inst := range c.insts {
			inst.child.Keep()
		}
		stopInst()
		workers.Wait()
		return nil
	}
	n.log.Info("stopping the redis instances")
	stopInst()
	workers.Wait()
	n.log.Info("stopped")
	if ctx.Err() != nil && loopErr == nil {
		return nil
	}
	return loopErr
}

// describePlan is the plan as the log says it: each local instance's place.
func (c *clusterAgent) describePlan() string {
	s := ""
	for i, inst := range c.insts {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d: %s", inst.addr.Port, placeString(inst.place))
	}
	return s
}

func placeString(p ha.Place) string {
	if p.Replica == 0 {
		return fmt.Sprintf("master of shard %d", p.Shard)
	}
	return fmt.Sprintf("replica %d of shard %d", p.Replica, p.Shard)
}

// next is the restart gate of one instance (ha.ClusterGate): it returns
// the spec of the instance's next start and blocks while starting it
// would be unsafe.
func (c *clusterAgent) next(ctx context.Context, inst *instance, last *supervisor.Exit) (supervisor.Spec, error) {
	cfg := c.n.config()
	a := inst.addr
	var marker, stoppedCleanly bool
	if last == nil {
		if pid, ok := c.n.running(ctx, cfg, instConf(cfg, a), c.pool.Get(a).Server); ok {
			c.log.Info("redis instance of the previous agent is running: adopting it as it is", "instance", a.String(), "pid", pid)
			if err := atomicfile.WriteFile(instMarker(cfg, a), []byte("running\n"), 0o644, -1, -1); err != nil {
				return supervisor.Spec{}, fmt.Errorf("mark redis running: %w", err)
			}
			inst.adopted.Store(true)
			spec := c.spec(cfg, a)
			spec.Adopt = pid
			return spec, nil
		}
		_, err := os.Lstat(instMarker(cfg, a))
		marker = err == nil
		found, graceful, err := supervisor.StopStale(instPid(cfg, a), cfg.Redis.Binary, childStopWait, c.log)
		stoppedCleanly = err == nil && found && graceful
		switch {
		case err != nil:
			c.log.Warn("stop the previous agent's redis instance", "instance", a.String(), "err", err)
		case stoppedCleanly:
			c.log.Info("the previous agent died but its redis instance lived; it has shut down cleanly", "instance", a.String())
		case marker:
			c.log.Warn("redis instance did not stop cleanly last time (crash or power loss)", "instance", a.String())
		}
	}
	crashed := ha.Crashed(last == nil, last != nil && last.Requested, marker, stoppedCleanly)
	var why string
	for logged := false; ; {
		cfg = c.n.config()
		in := ha.GateInput{Crashed: crashed}
		if crashed {
			in.Me, in.HaveMe = readMyself(nodesConf(cfg, a))
			if in.HaveMe && in.Me.IsMaster() && len(in.Me.Slots) > 0 {
				in.Peers = c.ask(ctx, c.others(a), false)
			}
		}
		v := ha.ClusterGate(in)
		why = v.Why
		if !v.Hold {
			break
		}
		inst.gated.Store(true)
		if !logged {
			c.log.Warn("restart gate: the instance crashed as master; keeping it down until its replica serves its slots",
				"instance", a.String(), "why", v.Why)
			logged = true
		}
		if time.Since(inst.lastTry) >= failoverRetry {
			inst.lastTry = time.Now()
			fctx, cancel := context.WithTimeout(ctx, probeTimeout)
			err := c.pool.Get(v.FailoverTo).ClusterFailover(fctx, true)
			cancel()
			if err != nil {
				c.log.Warn("fast failover: CLUSTER FAILOVER FORCE refused", "replica", v.FailoverTo.String(), "err", err)
			} else {
				c.log.Info("fast failover: CLUSTER FAILOVER FORCE sent to the dead master's replica", "replica", v.FailoverTo.String())
			}
		}
		if err := sleepCtx(ctx, gateRetry); err != nil {
			return supervisor.Spec{}, errStopping
		}
	}
	inst.gated.Store(false)
	c.log.Info("starting redis instance", "instance", a.String(), "why", why)
	inst.roles.setCause("started by the agent: " + why)
	if err := c.n.writeTLS(cfg); err != nil {
		return supervisor.Spec{}, err
	}
	uid, gid := c.n.owner()
	conf := sentinel.RenderRedis(clusterRedisConf(cfg, a, false))
	if err := atomicfile.WriteFile(instConf(cfg, a), conf, 0o600, uid, gid); err != nil {
		return supervisor.Spec{}, fmt.Errorf("render redis.conf: %w", err)
	}
	if err := atomicfile.WriteFile(instMarker(cfg, a), []byte("running\n"), 0o644, -1, -1); err != nil {
		return supervisor.Spec{}, fmt.Errorf("mark redis running: %w", err)
	}
	inst.fresh.Store(true)
	return c.spec(cfg, a), nil
}

// readMyself reads an instance's own entry from its nodes.conf, which
// redis rewrites on every change: what it was when it stopped.
func readMyself(path string) (wire.Node, bool) {
	b, err := safefile.ReadFile(path, 1<<20)
	if err != nil {
		return wire.Node{}, false
	}
	v, err := wire.ParseNodes(string(b))
	if err != nil {
		return wire.Node{}, false
	}
	return v.Myself()
}

// spec is how an instance runs: from its generated file, as the service user.
func (c *clusterAgent) spec(cfg *config.Config, a wire.Addr) supervisor.Spec {
	return supervisor.Spec{
		Name:       fmt.Sprintf("redis-%d", a.Port),
		Path:       cfg.Redis.Binary,
		Args:       []string{instConf(cfg, a)},
		Dir:        instDir(cfg, a),
		Credential: c.n.cred,
		StopGrace:  childStopWait,
		PidFile:    instPid(cfg, a),
		Output:     filepath.Join(cfg.Node.RunDir, fmt.Sprintf("redis-%d.out", a.Port)),
	}
}

// exited records how an instance ended: only a clean exit after a
// requested stop clears its marker.
func (c *clusterAgent) exited(inst *instance, e supervisor.Exit) {
	cfg := c.n.config()
	if e.Requested && e.Err == nil {
		if err := os.Remove(instMarker(cfg, inst.addr)); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.Warn("clear running marker", "instance", inst.addr.String(), "err", err)
		}
		c.log.Info("redis instance stopped cleanly", "instance", inst.addr.String())
		return
	}
	c.log.Error("redis instance exited", "instance", inst.addr.String(), "err", e.Err, "ran", e.Ran.Round(time.Millisecond),
		"last output", lastLine(e.Tail))
	if e.Requested {
		return
	}
	inst.restarts.Add(1)
	if ch, _ := inst.roles.down(time.Now(), e.Err); ch != nil {
		ch.Instance = inst.addr.String()
		c.n.recordChange(cfg, *ch)
	}
}

// others lists every instance of the plan but a.
func (c *clusterAgent) others(a wire.Addr) []wire.Addr {
	var out []wire.Addr
	for _, x := range c.plan.All() {
		if x != a {
			out = append(out, x)
		}
	}
	return out
}

// ask asks each instance at addrs, in parallel, for its CLUSTER NODES (and
// DBSIZE with keys).
func (c *clusterAgent) ask(ctx context.Context, addrs []wire.Addr, keys bool) []ha.InstanceView {
	out := make([]ha.InstanceView, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			actx, cancel := context.WithTimeout(ctx, askTimeout)
			defer cancel()
			r := c.pool.Get(a)
			iv := ha.InstanceView{Addr: a}
			iv.View, iv.Err = r.ClusterNodes(actx)
			if iv.Err == nil && keys {
				iv.Keys, iv.Err = r.DBSize(actx)
			}
			out[i] = iv
		})
	}
	wg.Wait()
	return out
}

// waitLoaded blocks until every local instance has loaded its data,
// extending systemd's start timeout while one loads or the gate holds one.
func (c *clusterAgent) waitLoaded(ctx context.Context) error {
	var extended time.Time
	for {
		status, done := "", true
		for _, inst := range c.insts {
			if inst.child.Current() == nil {
				done = false
				if inst.gated.Load() {
					status = fmt.Sprintf("redis %s down: the restart gate holds it until its replica serves its slots", inst.addr)
				}
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			loading, err := c.pool.Get(inst.addr).Loading(pctx)
			cancel()
			if err != nil || loading {
				done = false
				if loading {
					status = fmt.Sprintf("redis %s is loading its dataset", inst.addr)
				}
			}
		}
		if done {
			c.log.Info("every redis instance is loaded and serving")
			return nil
		}
		if status != "" && time.Since(extended) > extendEvery {
			c.n.notify.extendStart(2*extendEvery, status)
			extended = time.Now()
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("wait for redis to load: %w", err)
		}
	}
}

// waitCluster blocks until the cluster is ok in every local instance's
// view, or is not created yet (forming, or creation refused: the loop
// says why), the last condition for READY=1.
func (c *clusterAgent) waitCluster(ctx context.Context) error {
	var extended time.Time
	for {
		c.observe(ctx)
		ok, why := c.readyNow()
		if ok {
			return nil
		}
		if time.Since(extended) > extendEvery {
			c.n.notify.extendStart(2*extendEvery, why)
			extended = time.Now()
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

// readyNow says whether the instances are ready to be announced: each ok
// in a cluster, or alone (the cluster is still to be created or joined).
func (c *clusterAgent) readyNow() (bool, string) {
	for _, inst := range c.insts {
		o := inst.obs
		switch {
		case !o.up:
			return false, fmt.Sprintf("redis %s does not answer", inst.addr)
		case len(o.view) > 1 && o.info["cluster_state"] != "ok":
			return false, fmt.Sprintf("redis %s: cluster state %s: waiting for a majority of masters", inst.addr, o.info["cluster_state"])
		}
	}
	return true, ""
}

// configureAdopted puts adopted instances' runtime settings right and
// takes over the fence their agent left.
func (c *clusterAgent) configureAdopted(ctx context.Context) {
	cfg := c.n.config()
	for _, inst := range c.insts {
		if !inst.adopted.Load() {
			continue
		}
		r := c.pool.Get(inst.addr)
		for _, d := range clusterRedisConf(cfg, inst.addr, false).Directives() {
			if d.Live == nil || d.Decided {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, probeTimeout)
			err := r.Set(cctx, d.Live[0], d.Live[1])
			cancel()
			if err != nil {
				c.log.Warn("adopted redis: runtime setting refused", "instance", inst.addr.String(), "key", d.Live[0], "err", err)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		if f, err := r.ClusterFenced(cctx); err == nil && f {
			inst.fenced = true
			c.log.Warn("adopted redis instance is fenced by the previous agent; it stays fenced until a majority is in sight",
				"instance", inst.addr.String())
		}
		cancel()
	}
}
