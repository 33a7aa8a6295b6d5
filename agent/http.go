package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/internal/vip"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sysctl"
)

// The HTTP API answers load balancers and monitoring from the agent's latest
// observation: no request waits on a peer or a sentinel, so a health check
// costs microseconds and cannot pile up behind a hung peer. The one
// exception is /primary on a box that the observation calls primary: it
// confirms with the local redis (liveRole).

// BoxStatus is this box as /status reports it: the fields of a `status
// --json` peer, plus what only the local agent knows. Its lag_bytes is -1
// when the replica's master did not answer (unknown).
type BoxStatus struct {
	PeerStatus
	Gated   bool   `json:"restart_gated"`
	Paused  bool   `json:"paused"`
	Healthy bool   `json:"healthy"`
	Status  string `json:"status"` // the STATUS= line
}

// view is one consistent read of what the loop published, for a request.
type view struct {
	ha.View
	cfg    *config.Config
	now    time.Time
	counts counters
}

// counters are the agent's event counts since it started, and what /metrics
// says about the agent itself.
type counters struct {
	roleChanges   int
	lastChange    time.Time // of the local redis's role, zero when none is known
	redisRestarts int
	sentRestarts  int
	masterChanges int64            // masters the sentinels named after another
	server        *sentinel.Server // redis.binary's; nil before it was asked
}

func (n *node) readView() view {
	changes, last := n.roles.count()
	v := view{cfg: n.config(), now: time.Now(), counts: counters{roleChanges: changes, lastChange: last,
		redisRestarts: int(n.restarts.redis.Load()), sentRestarts: int(n.restarts.sentinel.Load()),
		masterChanges: n.switches.Load(), server: n.server.Load()}}
	if p := n.pub.Load(); p != nil {
		v.View = p.view
		if v.cfg == nil {
			v.cfg = p.cfg
		}
	}
	return v
}

func (v view) isPrimary() bool             { return v.IsPrimary(v.now) }
func (v view) isReplica(maxLag int64) bool { return v.IsReplica(v.now, maxLag) }
func (v view) healthy() bool               { return v.Healthy(v.now) }
func (v view) fresh() bool                 { return v.Fresh(v.now) }

func (v view) box() BoxStatus {
	s := v.S
	b := BoxStatus{PeerStatus: PeerStatus{Member: s.Self.String(), Role: "down", Fenced: s.Fenced},
		Gated: s.Gated, Paused: s.Paused, Healthy: v.healthy(), Status: ha.StatusLine(s)}
	b.PendingRestart, b.Drained = s.Pending, s.Drained
	if v.cfg != nil {
		b.ConfiguredPeers = addrStrings(v.cfg.Peers)
	}
	if s.RedisUp {
		b.Reachable, b.Offset = true, s.Role.Offset
		b.Role = "master"
		if s.Role.Kind != "master" {
			b.Role, b.ReplicaOf, b.Link, b.LagBytes = "replica", s.Role.Master.String(), s.Role.Link, v.Lag
		}
	}
	if !s.Single {
		b.SentinelUp = !s.Named.IsZero()
		if b.SentinelUp {
			b.SentinelMaster = s.Named.String()
		}
		b.SentinelSees = s.Usable
	}
	b.VIPHeld = v.vipHeld()
	return b
}

// vipHeld asks the kernel, not the reconcile loop's memory: /status and
// `status` must say where the VIP is, even when the loop is stuck. A netlink
// read costs microseconds, within the promise of never waiting on a probe.
func (v view) vipHeld() *bool {
	if v.cfg == nil {
		return nil
	}
	return localVIPHeld(v.cfg)
}

// localVIPHeld says whether vip.address is on this box's interface; nil
// when no VIP is configured or the kernel cannot tell.
func localVIPHeld(cfg *config.Config) *bool {
	if cfg.VIP.Address == "" {
		return nil
	}
	p, iface, err := vipTarget(cfg)
	if err != nil {
		return nil
	}
	held, err := vip.Present(iface, p)
	if err != nil {
		return nil
	}
	return &held
}

// serveHTTP serves addr, then whatever http.listen a reload sets, until ctx
// ends. Following reloads matters on the user's very first start: the
// package starts the agent single-box, its API on 127.0.0.1, and the user's
// drop-in then names peers, which moves the API to the box's own address,
// where load balancers look for it.
func (n *node) serveHTTP(ctx context.Context, addr string, log *slog.Logger) {
	for {
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.serveHTTPOn(sctx, addr, log)
		}()
		next, ok := n.nextHTTPListen(ctx, addr)
		cancel()
		<-done
		if !ok {
			return
		}
		log.Info("http api: reload moves it", "from", addr, "to", next)
		addr = next
	}
}

// nextHTTPListen waits for a reload that changes http.listen from addr, or
// turns TLS on or off; false when ctx ends first.
func (n *node) nextHTTPListen(ctx context.Context, addr string) (string, bool) {
	withTLS := n.config().Certs != nil
	for {
		cfg, changed := n.configAndChange()
		if cfg.HTTPListen != addr || (cfg.Certs != nil) != withTLS {
			return cfg.HTTPListen, true
		}
		select {
		case <-ctx.Done():
			return "", false
		case <-changed:
		}
	}
}

// serveHTTPOn serves one address until ctx ends.
func (n *node) serveHTTPOn(ctx context.Context, addr string, log *slog.Logger) {
	if addr == "" {
		return
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("http api unavailable", "listen", addr, "err", err)
		return
	}
	// Anyone who reaches the port may connect: every connection is bounded
	// in time and size, and their number is capped, so that idle keep-alive
	// connections cannot take the agent's file descriptors and memory (1000
	// of them held 19 MB, forever) nor a flood its one CPU.
	l = limitListener(l, httpMaxConns)
	if n.config().Certs != nil {
		l = tls.NewListener(l, n.httpTLS())
	}
	h := n.handler
	if h == nil {
		h = n.httpHandler()
	}
	srv := &http.Server{Handler: h,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("http api listening", "addr", l.Addr().String())
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("http api", "err", err)
	}
	<-done
}

func (n *node) httpHandler() http.Handler {
	mux := http.NewServeMux()
	check := func(ok func(view, *http.Request) (bool, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			v := n.readView()
			good, err := ok(v, r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			code := http.StatusOK
			if !good {
				code = http.StatusServiceUnavailable
			}
			writeJSON(w, r, code, v.box())
		}
	}
	mux.HandleFunc("/health", check(func(v view, _ *http.Request) (bool, error) { return v.healthy(), nil }))
	mux.HandleFunc("/primary", check(func(v view, r *http.Request) (bool, error) {
		if !v.isPrimary() {
			return false, nil
		}
		kind, err := n.api.role(r.Context(), n.probeAPIRole)
		return err == nil && kind == "master", nil
	}))
	mux.HandleFunc("/replica", check(func(v view, r *http.Request) (bool, error) {
		maxLag := int64(-1)
		if s := r.URL.Query().Get("lag"); s != "" {
			l, err := parseBytes(s)
			if err != nil {
				return false, fmt.Errorf("lag: %w", err)
			}
			maxLag = l
		}
		return v.isReplica(maxLag), nil
	}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, http.StatusOK, n.readView().box())
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if r.Method == http.MethodHead {
			return
		}
		v := n.readView()
		drift := -1
		if v.cfg.Tuning.Enabled {
			if d, err := sysctl.Verify(sysctl.Roots{Proc: "/proc", Sys: "/sys"}, desiredKernel(v.cfg)); err == nil {
				drift = len(d)
			}
		}
		writeMetrics(w, v, drift, readProcStats())
	})
	// Read-only: GET and HEAD only, on every endpoint.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only API", http.StatusMethodNotAllowed)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, r *http.Request, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(body)
}

// parseBytes reads "1048576", "512kB", "10MB" (powers of 1024, as Patroni's
// ?lag= accepts).
func parseBytes(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"kB", 1 << 10}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a byte count", s)
	}
	// 8589934592GB would wrap to -2^63, which means "no bound".
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// writeMetrics renders the Prometheus text format by hand: a few dozen
// gauges and counters do not justify client_golang's size and allocations on
// a box whose whole point is a small footprint. A value the agent does not
// know is left out, never given as -1: "lag > X" must not read "unknown" as
// small; a *_known gauge says which.
func writeMetrics(w io.Writer, v view, drift int, proc procStats) {
	b := &strings.Builder{}
	metric := func(name, typ, help string, samples ...string) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for _, s := range samples {
			fmt.Fprintf(b, "%s%s\n", name, s)
		}
	}
	val := func(x int64) string { return " " + strconv.FormatInt(x, 10) }
	flt := func(x float64) string { return " " + strconv.FormatFloat(x, 'g', -1, 64) }
	boolv := func(x bool) string {
		if x {
			return " 1"
		}
		return " 0"
	}
	known := func(ok bool, sample string) []string {
		if ok {
			return []string{sample}
		}
		return nil
	}
	role := func(r string) string {
		return fmt.Sprintf(`{role=%q}`, r) + boolv(v.S.RedisUp && (v.S.Role.Kind == r || (r == "replica" && v.S.Role.Kind == "slave")))
	}
	lagKnown := v.S.RedisUp && v.Lag >= 0
	group, member, quorum, peers := "", "", 0, 0
	if !v.S.Self.IsZero() {
		member = v.S.Self.String()
	}
	if v.cfg != nil {
		group, quorum, peers = v.cfg.Cluster.Name, v.cfg.SentinelQuorum(), len(v.cfg.Peers)
	}
	server, version := "", ""
	if s := v.counts.server; s != nil {
		server, version = s.Name, fmt.Sprintf("%d.%d.%d", s.Version[0], s.Version[1], s.Version[2])
	}
	metric("redis_ha_build_info", "gauge", "The agent's version, the server redis.binary runs, and the group and member this agent is (join on instance for these labels).",
		fmt.Sprintf(`{version=%q,server_name=%q,redis_version=%q,group=%q,member=%q} 1`, Version, server, version, group, member))
	metric("redis_ha_up", "gauge", "Whether the local redis answered the last probe.", boolv(v.fresh() && v.S.RedisUp))
	metric("redis_ha_role", "gauge", "Role of the local redis (1 for the current one).", role("master"), role("replica"))
	metric("redis_ha_primary", "gauge", "Whether this box is the master a quorum of sentinels names and not fenced (/primary).", boolv(v.isPrimary()))
	metric("redis_ha_replication_offset_bytes", "gauge", "Replication offset of the local redis.", known(v.S.RedisUp, val(v.S.Role.Offset))...)
	metric("redis_ha_replication_lag_bytes", "gauge", "Bytes this replica is behind its master (0 on a master); absent when unknown (redis_ha_replication_lag_known 0).", known(lagKnown, val(v.Lag))...)
	metric("redis_ha_replication_lag_known", "gauge", "Whether the lag is known: 0 when the local redis or a replica's master did not answer.", boolv(lagKnown))
	metric("redis_ha_replicas_in_sync", "gauge", "Replicas that acknowledged the master's previous offset (master only).", val(int64(v.S.InSync)))
	metric("redis_ha_fenced", "gauge", "Whether this master refuses writes because it sees no majority of sentinels.", boolv(v.S.Fenced))
	metric("redis_ha_restart_gated", "gauge", "Whether the restart gate holds a crashed master's redis down.", boolv(v.S.Gated))
	metric("redis_ha_pending_restart", "gauge", "Whether redis should restart: its binary was replaced on disk or a restart-only setting changed.", boolv(v.S.Pending != ""))
	metric("redis_ha_drained", "gauge", "Whether this box is drained: never promoted until undrained.", boolv(v.S.Drained))
	metric("redis_ha_paused", "gauge", "Whether the group is paused for maintenance: no automatic failover, fencing or VIP move.", boolv(v.S.Paused))
	metric("redis_ha_peers", "gauge", "Boxes in the group (cluster.peers).", val(int64(peers)))
	metric("redis_ha_sentinel_quorum", "gauge", "Sentinels that must agree a master is down (cluster.quorum).", val(int64(quorum)))
	metric("redis_ha_sentinels_reachable", "gauge", "Sentinels (one per peer) that answered this agent's last round.", val(int64(v.Q.Reachable)))
	metric("redis_ha_sentinels_usable", "gauge", "Sentinels the local sentinel counts as usable (CKQUORUM).", val(int64(v.S.Usable)))
	metric("redis_ha_failovers_total", "counter", "Times the sentinels named a new master, as this agent saw it (failovers and switchovers), since the agent started.", val(v.counts.masterChanges))
	metric("redis_ha_role_changes_total", "counter", "Role changes of the local redis since the agent started.", val(int64(v.counts.roleChanges)))
	metric("redis_ha_last_role_change_timestamp_seconds", "gauge", "When the local redis last changed role (history included).",
		known(!v.counts.lastChange.IsZero(), flt(float64(v.counts.lastChange.UnixMilli())/1e3))...)
	metric("redis_ha_child_restarts_total", "counter", "Unrequested exits of the supervised children since the agent started.",
		`{child="redis"}`+val(int64(v.counts.redisRestarts)), `{child="sentinel"}`+val(int64(v.counts.sentRestarts)))
	metric("redis_ha_tuning_drift", "gauge", "Kernel settings not in effect; absent when tuning is disabled or unreadable (redis_ha_tuning_known 0).", known(drift >= 0, val(int64(drift)))...)
	metric("redis_ha_tuning_known", "gauge", "Whether the agent tunes the kernel and could read the settings back.", boolv(drift >= 0))
	metric("redis_ha_goroutines", "gauge", "Goroutines in the agent (a leak shows here first).", val(int64(runtime.NumGoroutine())))
	proc.write(metric, flt)
	_, _ = io.WriteString(w, b.String())
}

// liveRoleTimeout bounds the one probe /primary makes: the local redis
// answers ROLE in well under a millisecond, and one that does not is no
// primary to vouch for.
const liveRoleTimeout = 100 * time.Millisecond

// probeAPIRole is liveRole for the HTTP API, on connections of its own: a
// flood of /primary must not queue the loop's probes behind its own in the
// loop's small pool.
func (n *node) probeAPIRole(ctx context.Context) (string, error) {
	return liveRole(ctx, n.api.redis.Redis())
}

// apiProbe shares the API's ROLE probes among the requests that arrive
// together: every /primary still sees a ROLE sent after it arrived (a
// demoted master must answer 503 at once), but a thousand requests in the
// same millisecond cost one probe, not a thousand. A request joins the
// batch not yet sent; the first of a batch to get the turn closes the
// batch, sends the probe and shares the answer.
type apiProbe struct {
	turn  sync.Mutex // held while a batch is probed
	mu    sync.Mutex // guards next
	next  *roleAnswer
	redis sentinel.Local // the API's own connections to the local redis
}

type roleAnswer struct {
	done chan struct{}
	kind string
	err  error
}

func (p *apiProbe) role(ctx context.Context, probe func(context.Context) (string, error)) (string, error) {
	p.mu.Lock()
	if p.next == nil {
		p.next = &roleAnswer{done: make(chan struct{})}
	}
	a := p.next
	p.mu.Unlock()

	p.turn.Lock()
	defer p.turn.Unlock()
	select {
	case <-a.done: // another request of the batch probed
		return a.kind, a.err
	default:
	}
	p.mu.Lock()
	p.next = nil // later requests wait for a probe sent after them
	p.mu.Unlock()
	// Not the request's context: the whole batch waits on this answer.
	a.kind, a.err = probe(context.WithoutCancel(ctx))
	close(a.done)
	return a.kind, a.err
}

// liveRole asks the local redis for its role now. /primary (and the VIP)
// ask it only when the observation already says primary, so replicas' checks
// stay probe-free: the observation can be a second old, and a master demoted
// by a switchover (REPLICAOF, sent from the box that runs it) must stop
// answering 200 at once, not at its next observation, for by then the new
// master's agent may vouch for itself (seen on the box bench: 0.45 s of two
// boxes answering 200).
func liveRole(ctx context.Context, rc *sentinel.Redis) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, liveRoleTimeout)
	defer cancel()
	r, err := rc.Role(ctx)
	if err != nil {
		return "", fmt.Errorf("live role: %w", err)
	}
	return r.Kind, nil
}

// httpMaxConns caps the API's connections: load balancers and Prometheus
// need a handful.
const httpMaxConns = 256

// limitListener accepts at most n connections at a time. The next Accept
// waits for one to close: connections beyond the cap wait in the kernel's
// backlog, costing the agent neither a descriptor nor CPU.
func limitListener(l net.Listener, n int) net.Listener {
	return &limited{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limited struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limited) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limited) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
