package agent

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sysctl"
)

// clusterPub is what the cluster loop last saw, for the HTTP API.
type clusterPub struct {
	box     ClusterStatus
	healthy bool
	at      time.Time
}

// publish hands the HTTP API this box's instances as the loop saw them.
func (c *clusterAgent) publish() {
	cfg := c.n.config()
	cs := ClusterStatus{Name: cfg.Cluster.Name, Mode: config.ModeCluster, Status: c.statusLine(), ConfiguredPeers: addrStrings(cfg.Peers)}
	healthy := true
	for _, inst := range c.insts {
		is := instanceStatus(c.plan, inst.addr, inst.obs.toProbe())
		is.Gated, is.Fenced = inst.gated.Load(), inst.fenced
		is.Restarts = inst.restarts.Load()
		healthy = healthy && is.Reachable && !is.Gated
		cs.Instances = append(cs.Instances, is)
		if cs.State == "" && len(inst.obs.view) > 1 {
			cs.State = inst.obs.info["cluster_state"]
		}
	}
	cs.Healthy = healthy
	c.pub.Store(&clusterPub{box: cs, healthy: healthy, at: time.Now()})
}

// toProbe is an observation in the shape status probes have.
func (o instObs) toProbe() instanceProbe {
	p := instanceProbe{up: o.up, err: o.err, role: o.role, view: o.view, info: o.info, lag: o.lag, fenced: o.fenceSet}
	if me, ok := o.me(); ok {
		p.id = me.ID
	}
	return p
}

// httpHandler is the HTTP API in cluster mode: /health (every local
// instance answers and none is held by the gate), /status (this box's
// instances), /metrics (per instance). /primary and /replica have no
// meaning for a cluster, whose clients follow MOVED.
func (c *clusterAgent) httpHandler() http.Handler {
	mux := http.NewServeMux()
	read := func() *clusterPub {
		p := c.pub.Load()
		if p == nil || time.Since(p.at) > ha.StaleAfter {
			return &clusterPub{box: ClusterStatus{Mode: config.ModeCluster, Status: "starting"}}
		}
		return p
	}
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		p := read()
		code := http.StatusOK
		if !p.healthy {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, r, code, p.box)
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, r, http.StatusOK, read().box) })
	for _, path := range []string{"/primary", "/replica"} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "cluster mode: clients are cluster-aware; see /status", http.StatusNotFound)
		})
	}
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if r.Method == http.MethodHead {
			return
		}
		cfg := c.n.config()
		drift := -1
		if cfg.Tuning.Enabled {
			if d, err := sysctl.Verify(sysctl.Roots{Proc: "/proc", Sys: "/sys"}, desiredKernel(cfg)); err == nil {
				drift = len(d)
			}
		}
		own, _ := c.n.roles.count()
		writeClusterMetrics(w, read(), own+c.roleChanges(), drift)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only API", http.StatusMethodNotAllowed)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (c *clusterAgent) roleChanges() int {
	n := 0
	for _, inst := range c.insts {
		changes, _ := inst.roles.count()
		n += changes
	}
	return n
}

// writeClusterMetrics renders /metrics in cluster mode, one series per
// local instance.
func writeClusterMetrics(w http.ResponseWriter, p *clusterPub, changes, drift int) {
	var b strings.Builder
	metric := func(name, typ, help string, value func(is InstanceStatus) string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for _, is := range p.box.Instances {
			if v := value(is); v != "" {
				fmt.Fprintf(&b, "%s{instance=%q} %s\n", name, is.Instance, v)
			}
		}
	}
	b01 := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	metric("redis_ha_up", "gauge", "The instance answers.", func(is InstanceStatus) string { return b01(is.Reachable) })
	metric("redis_ha_is_master", "gauge", "The instance is a master.", func(is InstanceStatus) string { return b01(is.Role == "master") })
	metric("redis_ha_cluster_ok", "gauge", "cluster_state:ok in the instance's view.", func(is InstanceStatus) string {
		return b01(is.ClusterState == "ok")
	})
	metric("redis_ha_slots", "gauge", "Slots the instance serves.", func(is InstanceStatus) string {
		return fmt.Sprint(is.SlotCount)
	})
	metric("redis_ha_replication_offset", "gauge", "Replication offset.", func(is InstanceStatus) string {
		if !is.Reachable {
			return ""
		}
		return fmt.Sprint(is.Offset)
	})
	metric("redis_ha_replication_lag_bytes", "gauge", "Replica: bytes behind its master (left out while unknown).", func(is InstanceStatus) string {
		if is.Role != "replica" || is.LagBytes < 0 {
			return ""
		}
		return fmt.Sprint(is.LagBytes)
	})
	metric("redis_ha_config_epoch", "gauge", "The instance's config epoch.", func(is InstanceStatus) string { return fmt.Sprint(is.Epoch) })
	metric("redis_ha_fenced", "gauge", "The master refuses writes: no majority of masters in sight.", func(is InstanceStatus) string {
		return b01(is.Fenced)
	})
	metric("redis_ha_restart_gated", "gauge", "The restart gate holds the instance down.", func(is InstanceStatus) string {
		return b01(is.Gated)
	})
	metric("redis_ha_child_restarts_total", "counter", "Restarts of the instance after it exited on its own.", func(is InstanceStatus) string {
		return fmt.Sprint(is.Restarts)
	})
	fmt.Fprintf(&b, "# HELP redis_ha_role_changes_total Role changes recorded since the agent started.\n# TYPE redis_ha_role_changes_total counter\nredis_ha_role_changes_total %d\n", changes)
	if drift >= 0 {
		fmt.Fprintf(&b, "# HELP redis_ha_tuning_drift Kernel settings not as configured.\n# TYPE redis_ha_tuning_drift gauge\nredis_ha_tuning_drift %d\n", drift)
	}
	_, _ = w.Write([]byte(b.String()))
}

// serveControl serves the control socket in cluster mode: switchover.
func (c *clusterAgent) serveControl(ctx context.Context) {
	cfg := c.n.config()
	mux := http.NewServeMux()
	reply := controlReplier(c.log)
	mux.HandleFunc("POST /switchover", func(w http.ResponseWriter, r *http.Request) {
		to := r.URL.Query().Get("to")
		msg, err := c.request(r.Context(), func(ctx context.Context) (string, error) { return c.switchover(ctx, to) })
		reply(w, "switchover", controlReply{Message: msg}, err)
	})
	serveSocket(ctx, controlPath(cfg), mux, c.log)
}

// request hands an operation to the loop and waits for its result.
func (c *clusterAgent) request(ctx context.Context, run func(context.Context) (string, error)) (string, error) {
	return sendOp(ctx, c.ops, run)
}

// reload re-reads the configuration. What the plan is made of (the peers,
// the replicas, the ports, the mode) does not change at runtime: moving
// slots between boxes is resharding, which the agent does not do. The rest
// applies as in sentinel mode: at runtime where redis allows, by a restart
// of the instances where it must.
func (c *clusterAgent) reload(ctx context.Context) {
	n := c.n
	n.notify.reloading()
	defer func() { n.notify.ready(c.statusLine()) }()
	next, err := config.Load(n.path, n.env)
	if err != nil {
		n.log.Error("reload refused; keeping the last good configuration", "err", err)
		c.st.reloadErr = firstProblem(err)
		return
	}
	cur := n.config()
	if next.Sum == cur.Sum {
		c.st.reloadErr = ""
		n.log.Info("reload: configuration unchanged")
		return
	}
	if why := planChange(cur, next); why != "" {
		n.log.Error("reload refused; keeping the last good configuration", "why", why)
		c.st.reloadErr = why
		return
	}
	c.st.reloadErr = ""
	if next.Certs.Same(cur.Certs) {
		next.Certs = cur.Certs
	}
	n.setConfig(next)
	c.pool.Use(next.Creds())
	if cur.Tuning != next.Tuning {
		n.tune(next)
	}
	if err := n.writeTLS(next); err != nil {
		n.log.Error("reload: tls files", "err", err)
	}
	for _, inst := range c.insts {
		set, restart := sentinel.Diff(clusterRedisConf(cur, inst.addr, false).Directives(), clusterRedisConf(next, inst.addr, false).Directives())
		if cur.Redis.Binary != next.Redis.Binary {
			restart = "redis.binary changed"
		}
		if restart == "" {
			restart = c.applyLive(ctx, cur, inst, set)
		}
		if restart != "" {
			n.log.Info("reload: redis instance must restart", "instance", inst.addr.String(), "why", restart)
			inst.child.Restart()
		}
	}
	n.log.Info("reload applied", "mode", next.Describe())
}

// applyLive makes the runtime changes on one instance; it returns why the
// instance must restart instead ("" when it need not).
func (c *clusterAgent) applyLive(ctx context.Context, cur *config.Config, inst *instance, set [][2]string) string {
	if len(set) == 0 {
		return ""
	}
	// The old password still authenticates the connection we make.
	r := sentinel.NewRedis(inst.addr, cur.Creds())
	defer r.Close()
	for _, kv := range set {
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := r.Set(cctx, kv[0], kv[1])
		cancel()
		if err != nil {
			return fmt.Sprintf("runtime change refused: %v", err)
		}
		c.log.Info("reload: redis setting applied", "instance", inst.addr.String(), "key", kv[0])
	}
	return ""
}

// planChange says why next cannot replace cur at runtime in cluster mode.
func planChange(cur, next *config.Config) string {
	switch {
	case !next.ClusterMode():
		return "cluster.mode changed: restart the agent on every box to change modes"
	case !slices.Equal(cur.Peers, next.Peers) || cur.Self != next.Self:
		return "cluster.peers changed: adding or removing boxes of a Redis Cluster moves slots (resharding), which the agent does not do"
	case cur.Cluster.Replicas != next.Cluster.Replicas:
		return "cluster.replicas changed: restart the agents to change the number of instances"
	case cur.Auth.ACL != next.Auth.ACL:
		return "auth.acl changed"
	}
	return ""
}
