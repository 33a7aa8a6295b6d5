package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/internal/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/internal/safefile"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
	"github.com/redis-ha-agent/redis-ha-agent/supervisor"
)

// chooseMaster asks what ha.ChooseMaster weighs: every sentinel, and our
// own sentinel's state file.
func (n *node) chooseMaster(ctx context.Context, cfg *config.Config) ha.Decision {
	a := ha.Authority{Single: cfg.Single(), Bootstrap: cfg.Bootstrap}
	if !a.Single {
		actx, cancel := context.WithTimeout(ctx, probeTimeout)
		a.Answers = cfg.Group().AskAll(actx)
		cancel()
		if _, _, ok := ha.MostNamed(ha.Named(a.Answers)); !ok {
			st, err := sentinel.ReadSentinelState(sentinelConfPath(cfg))
			if err != nil {
				n.log.Warn("read sentinel state", "err", err)
			}
			if st.Master != nil && st.Name == cfg.Cluster.Name {
				a.Remembered = st.Master
			}
		}
	}
	return ha.ChooseMaster(cfg.Self, a)
}

// redisConf is what the configuration says of redis.conf; replicaOf is the
// start decision's.
func redisConf(cfg *config.Config, replicaOf *wire.Addr) sentinel.RedisConf {
	return sentinel.RedisConf{
		Port:        cfg.Redis.Port,
		Bind:        cfg.Bind(),
		Announce:    cfg.Self,
		Dir:         cfg.Node.DataDir,
		Password:    cfg.Password,
		Persistence: cfg.Redis.Persistence,
		ReplicaOf:   replicaOf,
		Priority:    cfg.Node.Priority,
		Settings:    cfg.Redis.Settings,
		// With the agent alive, fencing (ha/fence.go) bounds what an isolated
		// master acknowledges to fence_after; this bounds it to ~10 s even
		// when the agent is dead or hung.
		MinReplicas:       sentinel.MinReplicas(len(cfg.Peers)),
		MinReplicasMaxLag: 10,
		TLS:               tlsFiles(cfg),
		ACL:               cfg.ACL(),
	}
}

// sentinelConf is what the configuration says of sentinel.conf; the master,
// the id and the state Sentinel keeps are added at each start.
func sentinelConf(cfg *config.Config) sentinel.SentinelConf {
	return sentinel.SentinelConf{
		Name:            cfg.Cluster.Name,
		Port:            cfg.SentinelPort,
		Bind:            cfg.Bind(),
		Announce:        cfg.LocalSentinel(),
		Dir:             cfg.Node.DataDir,
		Quorum:          cfg.SentinelQuorum(),
		DownAfter:       time.Duration(cfg.Sentinel.DownAfter),
		FailoverTimeout: time.Duration(cfg.Sentinel.FailoverTimeout),
		ParallelSyncs:   cfg.ParallelSyncs(),
		Password:        cfg.Password,
		TLS:             tlsFiles(cfg),
		ACL:             cfg.ACL(),
	}
}

// nextRedis is the restart gate (ha.Gate): it returns the spec for the next
// start of redis and blocks while starting it would be unsafe.
func (n *node) nextRedis(ctx context.Context, last *supervisor.Exit) (supervisor.Spec, error) {
	cfg := n.config()
	var marker, stoppedCleanly bool
	if last == nil {
		if pid, ok := n.running(ctx, cfg, redisConfPath(cfg), n.local.Redis().Server); ok {
			return n.adoptRedis(cfg, pid)
		}
		_, err := os.Lstat(runningMarker(cfg))
		marker = err == nil
		// A redis that outlived a killed agent held every acknowledged write;
		// stopped with SIGTERM it persists them all (AOF fsync on shutdown), so
		// it is not a crash and keeps its role.
		found, graceful, err := supervisor.StopStale(redisPidFile(cfg), cfg.Redis.Binary, childStopWait, n.log)
		if err == nil && !found {
			found, graceful = n.shutdownOrphan(ctx, cfg)
		}
		stoppedCleanly = err == nil && found && graceful
		switch {
		case err != nil:
			n.log.Warn("stop the previous agent's redis", "err", err)
		case stoppedCleanly:
			n.log.Info("the previous agent died but its redis lived; it has shut down cleanly and keeps its role")
		case marker:
			n.log.Warn("redis did not stop cleanly last time (crash or power loss)")
		}
	}
	crashed := ha.Crashed(last == nil, last != nil && last.Requested, marker, stoppedCleanly)
	gate := ha.Gate{FailoverEvery: failoverRetry}
	var start ha.Start
	for logged := false; ; {
		cfg = n.config()
		d := n.chooseMaster(ctx, cfg)
		var hold, failover bool
		gate.Paused = n.isPaused()
		start, hold, failover = gate.Step(time.Now(), cfg.Self, d, crashed, cfg.Single())
		if !hold {
			if start.ReplicaOf != nil {
				n.log.Info("starting redis as replica", "master", start.ReplicaOf.String(), "why", d.Why)
			} else {
				n.log.Info("starting redis as master", "why", d.Why)
			}
			break
		}
		n.gated.Store(true)
		if !logged {
			n.log.Warn("restart gate: redis crashed as master; keeping it down until the sentinels name a new master",
				"sentinels say", d.Why)
			logged = true
		}
		if failover {
			n.fastFailover(ctx, cfg)
		}
		if err := sleepCtx(ctx, gateRetry); err != nil {
			return supervisor.Spec{}, errStopping
		}
	}
	n.gated.Store(false)
	n.roles.setCause("started by the agent: " + start.Why)
	replicaOf := start.ReplicaOf

	if err := n.writeTLS(cfg); err != nil {
		return supervisor.Spec{}, err
	}
	rc := redisConf(cfg, replicaOf)
	rc.Priority = n.priority(cfg)
	conf := sentinel.RenderRedis(rc)
	n.noteStarted(cfg, rc)
	uid, gid := n.owner()
	if err := atomicfile.WriteFile(redisConfPath(cfg), conf, 0o600, uid, gid); err != nil {
		return supervisor.Spec{}, fmt.Errorf("render redis.conf: %w", err)
	}
	if err := atomicfile.WriteFile(runningMarker(cfg), []byte("running\n"), 0o644, -1, -1); err != nil {
		return supervisor.Spec{}, fmt.Errorf("mark redis running: %w", err)
	}
	return n.redisSpec(cfg), nil
}

// fastFailover asks a sentinel — ours first, else a peer's — for an immediate
// failover, once CKQUORUM confirms that a majority of sentinels is reachable
// to authorize it. A failover already in progress counts as success.
func (n *node) fastFailover(ctx context.Context, cfg *config.Config) {
	local := cfg.LocalSentinel()
	g := cfg.Group()
	order := []wire.Addr{local}
	for _, s := range g.Sentinels {
		if s != local {
			order = append(order, s)
		}
	}
	for _, s := range order {
		fctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := n.failoverVia(fctx, g, s)
		cancel()
		if err == nil {
			n.log.Info("fast failover requested", "sentinel", s.String())
			return
		}
		n.log.Warn("fast failover not possible through this sentinel", "sentinel", s.String(), "err", err)
	}
}

func (n *node) failoverVia(ctx context.Context, g sentinel.Group, s wire.Addr) error {
	sc := g.Sentinel(s)
	defer sc.Close()
	usable, ok, err := sc.Usable(ctx, g.Name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("only %d usable sentinels: no majority to authorize a failover", usable)
	}
	if err := sc.Failover(ctx, g.Name); err != nil && !errors.Is(err, sentinel.ErrInProgress) {
		return err
	}
	return nil
}

// shutdownOrphan stops a redis of ours that lost its pid file (a runtime
// directory removed while it ran): it answers on our port, to our password,
// with our data directory. SHUTDOWN persists its data like SIGTERM would.
func (n *node) shutdownOrphan(ctx context.Context, cfg *config.Config) (found, clean bool) {
	c := sentinel.NewRedis(cfg.Self, cfg.Creds())
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if dir, err := c.Get(cctx, "dir"); err != nil || dir != cfg.Node.DataDir {
		return false, false
	}
	n.log.Warn("found our redis running without a pid file; shutting it down cleanly")
	c.Shutdown(cctx)
	wctx, wcancel := context.WithTimeout(ctx, childStopWait)
	defer wcancel()
	for {
		pctx, pcancel := context.WithTimeout(wctx, probeTimeout)
		err := c.Ping(pctx)
		pcancel()
		if err != nil && wctx.Err() == nil {
			return true, true
		}
		if sleepCtx(wctx, 100*time.Millisecond) != nil {
			return true, false
		}
	}
}

func (n *node) redisStarted(p *supervisor.Process) {
	n.log.Info("redis started", "pid", p.Pid())
}

// redisExited records how redis ended. Only a clean exit after a requested
// stop clears the running marker; anything else leaves it for the gate.
func (n *node) redisExited(e supervisor.Exit) {
	cfg := n.config()
	if e.Requested && e.Err == nil {
		if err := os.Remove(runningMarker(cfg)); err != nil && !errors.Is(err, os.ErrNotExist) {
			n.log.Warn("clear running marker", "err", err)
		}
		n.log.Info("redis stopped cleanly")
		return
	}
	why := exitReason(e)
	n.log.Error("redis exited", "err", e.Err, "ran", e.Ran.Round(time.Millisecond), "reason", why, "last output", lastLine(e.Tail))
	if e.Requested {
		return // stopped on purpose (restart, shutdown): not a role change
	}
	n.redisErr.Store(&why)
	n.restarts.redis.Add(1)
	c, wasMaster := n.roles.down(time.Now(), e.Err)
	if c == nil {
		return // still down: one record for the whole outage
	}
	n.recordChange(cfg, *c)
	// Now, not after the restart backoff (which grows when a box keeps
	// crashing): the master is certainly dead and the group waits for a new
	// one. Asked of the failover worker, so that the restart loop goes on.
	if wasMaster && len(cfg.Peers) > 1 {
		select {
		case n.failover <- struct{}{}:
		default: // one is pending already
		}
	}
}

// failovers asks for a fast failover each time redisExited says the local
// master died, until ctx ends. It runs beside the supervisor's restart loop
// rather than in it: asking three sentinels can take seconds, and shutdown
// must not wait for it.
func (n *node) failovers(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.failover:
			if n.isPaused() {
				n.log.Warn("the master's redis died while the group is paused: no failover; it restarts as master")
				continue
			}
			n.fastFailover(ctx, n.config())
		}
	}
}

// exitReason is why a child exited, in its own words when it said any at
// warning level (redis: "Can't handle RDB format version 12; Error reading the
// RDB base file ..."), else its exit status.
func exitReason(e supervisor.Exit) string {
	// Killed, it had no last words: earlier warnings are not why.
	var ee *exec.ExitError
	if errors.As(e.Err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return e.Err.Error()
		}
	}
	if len(e.Warnings) > 0 {
		return strings.Join(e.Warnings, "; ")
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	return "exited"
}

// lastRedisErr is why redis last exited unasked, "" when it runs since.
func (n *node) lastRedisErr() string {
	if p := n.redisErr.Load(); p != nil {
		return *p
	}
	return ""
}

func lastLine(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

// waitReady blocks until the first redis has loaded its data: sentinel must
// not start monitoring (and READY must not be sent) before that. While it
// waits it asks systemd for more start-up time, since loading a large
// dataset (or the restart gate) can take longer than any fixed timeout.
func (n *node) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var extended time.Time
	for {
		status := "" // extend only for a known, legitimate wait
		if n.redis.Current() != nil {
			pctx, pcancel := context.WithTimeout(ctx, probeTimeout)
			loading, err := n.local.Redis().Loading(pctx)
			pcancel()
			if err == nil && !loading {
				n.log.Info("redis is loaded and serving")
				return nil
			}
			if loading {
				status = "redis is loading its dataset"
			}
		} else if n.gated.Load() {
			status = ha.StatusLine(ha.Snapshot{Single: true, Gated: true, RedisErr: n.lastRedisErr()})
		} else if why := n.lastRedisErr(); why != "" {
			// Not a wait that more time helps: say why, and let systemd's
			// start timeout stand.
			n.notify.setStatus("redis cannot start: " + why)
		}
		if status != "" && time.Since(extended) > extendEvery {
			n.notify.extendStart(2*extendEvery, status)
			extended = time.Now()
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("wait for redis to load: %w", err)
		}
	}
}

// waitSentinel blocks until the local sentinel monitors the group, the last
// condition for READY=1.
func (n *node) waitSentinel(ctx context.Context) error {
	for {
		cfg := n.config()
		if len(cfg.Peers) == 0 {
			return nil
		}
		if n.sentinel.Current() != nil {
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			_, err := n.local.Sentinel().MasterAddr(pctx, cfg.Cluster.Name)
			cancel()
			if err == nil {
				return nil
			}
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// nextSentinel renders sentinel.conf for each start of the local sentinel,
// keeping its myid (a new id would make it a stranger to its peers) and the
// epochs and known peers it learnt.
func (n *node) nextSentinel(ctx context.Context, last *supervisor.Exit) (supervisor.Spec, error) {
	if last != nil && !last.Requested {
		n.log.Error("sentinel exited", "err", last.Err, "last output", lastLine(last.Tail))
	}
	// A single box has nobody to fail over to: no sentinel until peers are
	// configured (a reload can add them).
	cfg, changed := n.configAndChange()
	for len(cfg.Peers) == 0 {
		select {
		case <-ctx.Done():
			return supervisor.Spec{}, errStopping
		case <-changed:
		}
		cfg, changed = n.configAndChange()
	}
	if last == nil {
		if pid, ok := n.running(ctx, cfg, sentinelConfPath(cfg), n.local.Sentinel().Server); ok {
			n.log.Info("sentinel of the previous agent is running: adopting it", "pid", pid)
			n.adopted.sentinel.Store(true)
			spec := n.sentinelSpec(cfg)
			spec.Adopt = pid
			return spec, nil
		}
	}
	myid, err := n.myID(cfg)
	if err != nil {
		return supervisor.Spec{}, err
	}
	st, err := sentinel.ReadSentinelState(sentinelConfPath(cfg))
	if err != nil {
		n.log.Warn("read sentinel state; starting it afresh", "err", err)
	}
	var keep []string
	if st.Name == cfg.Cluster.Name {
		keep = st.Lines
	}
	master := n.chooseMaster(ctx, cfg).Master
	sc := sentinelConf(cfg)
	sc.Master, sc.MyID, sc.State = master, myid, keep
	sc.KnownReplicas, sc.Sentinels = cfg.Peers, cfg.Group().Sentinels
	if err := n.writeTLS(cfg); err != nil {
		return supervisor.Spec{}, err
	}
	conf := sentinel.RenderSentinel(sc)
	uid, gid := n.owner()
	if err := atomicfile.WriteFile(sentinelConfPath(cfg), conf, 0o600, uid, gid); err != nil {
		return supervisor.Spec{}, fmt.Errorf("render sentinel.conf: %w", err)
	}
	return n.sentinelSpec(cfg), nil
}

// myID returns this node's sentinel id, created once and kept in the state
// directory so that a restarted sentinel is the same sentinel to its peers.
// The directory belongs to the redis user, so the file is read as safefile
// reads state, and only 40 hex digits count as an id: whatever else it holds
// would go into sentinel.conf, where the redis user can read it.
func (n *node) myID(cfg *config.Config) (string, error) {
	b, err := safefile.ReadFile(myIDPath(cfg), 4096)
	if id := strings.TrimSpace(string(b)); err == nil && sentinel.ValidMyID(id) {
		return id, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		n.log.Warn("sentinel id file refused; taking the id from sentinel.conf or a new one", "err", err)
	} else if err == nil {
		n.log.Warn("sentinel id file does not hold 40 hex digits; taking the id from sentinel.conf or a new one")
	}
	// Adopt the id of a sentinel.conf written before the id file existed.
	if st, _ := sentinel.ReadSentinelState(sentinelConfPath(cfg)); sentinel.ValidMyID(st.MyID) {
		return st.MyID, atomicfile.WriteFile(myIDPath(cfg), []byte(st.MyID+"\n"), 0o644, -1, -1)
	}
	// Derived from the group and this sentinel's address: a box re-imaged
	// at the same address is the same sentinel to its peers.
	id := sentinel.DeriveMyID(cfg.Cluster.Name, cfg.LocalSentinel())
	if err := atomicfile.WriteFile(myIDPath(cfg), []byte(id+"\n"), 0o644, -1, -1); err != nil {
		return "", fmt.Errorf("save sentinel id: %w", err)
	}
	return id, nil
}
