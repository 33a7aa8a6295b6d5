package agent

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
)

// Self-fencing: a master that cannot reach a majority of the sentinels for
// sentinel.fence_after stops acknowledging writes, because the majority may
// be electing another master right now and whatever it accepts from here on
// would be thrown away when the partition heals (Jepsen measured 56 % of
// acknowledged writes lost this way). fence_after < down_after, so the fence
// is up before the other side can fail over.
//
// The fence is min-replicas-to-write raised above the number of replicas:
// writes fail at once with NOREPLICAS (clients see an error, not a hang),
// reads keep working, and it is lifted with one CONFIG SET.
const (
	fenceProbeEvery   = 250 * time.Millisecond
	fenceProbeTimeout = 250 * time.Millisecond
)

// minReplicas is the min-replicas-to-write of a healthy master: enough
// replicas that, with the master, they are a majority of the group.
func minReplicas(cfg *Config) int {
	if len(cfg.Peers) < 2 {
		return 0
	}
	return len(cfg.Peers) / 2
}

// fenceLoop watches the majority while this box is master, fences or
// unfences it, and keeps the VIP where /primary is true. It ends with ctx.
func (n *node) fenceLoop(ctx context.Context) {
	probes := map[sentinel.Addr]*redis.SentinelClient{}
	var vips vipState
	defer func() {
		n.releaseVIP(n.config(), &vips)
		for _, c := range probes {
			c.Close()
		}
	}()
	tick := time.NewTicker(fenceProbeEvery)
	defer tick.Stop()
	lastMajority := time.Now()
	var wrongSince time.Time
	probesFor := ""
	for {
		now := false // a sentinel event: ask the sentinels this round
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.refresh:
			now = true
		}
		cfg := n.config()
		n.reconcileVIP(ctx, cfg, &vips)
		master, fenced := n.fenceState()
		if len(cfg.Peers) < 2 {
			lastMajority = time.Now()
			continue
		}
		// A master asks every tick (the fence must be quick); others once a
		// second (their view feeds /primary, /replica and status).
		if !now && !master && !fenced && time.Since(n.quorum().at) < time.Second {
			lastMajority = time.Now()
			continue
		}
		if probesFor != cfg.Password { // a reload changed the password
			for a, c := range probes {
				c.Close()
				delete(probes, a)
			}
			probesFor = cfg.Password
		}
		view := askSentinels(ctx, cfg, probes)
		n.setQuorum(view)
		majority := len(cfg.Peers)/2 + 1
		if view.reachable >= majority || !master {
			lastMajority = time.Now()
		}
		switch {
		case fenced && !master:
			// Restarted as a replica (restart gate, or Sentinel demoted it):
			// a replica's redis.conf already carries the normal setting.
			n.setFenced(false)
		case !fenced && master && time.Since(lastMajority) >= time.Duration(cfg.Sentinel.FenceAfter):
			n.fence(ctx, cfg, view.reachable)
		case fenced && view.reachable >= majority:
			n.unfence(ctx, cfg)
		}
		n.followNamedMaster(ctx, cfg, view, &wrongSince)
		if now {
			n.reconcileVIP(ctx, cfg, &vips) // with the fresh view
		}
	}
}

// repointAfter leaves Sentinel the first chance to reconfigure a replica
// after a failover (it does so within about a second for the replicas it
// knows).
const repointAfter = time.Second

// followNamedMaster re-points a replica that keeps following another server
// than the master a quorum of sentinels names. Sentinel reconfigures only
// the replicas it knew of when it failed over; one it had not yet learnt of
// (it learns them from the master's INFO every 10 s) would otherwise follow
// the dead master, and later chain behind it, forever.
func (n *node) followNamedMaster(ctx context.Context, cfg *Config, q quorumView, since *time.Time) {
	v := n.readView()
	if !v.fresh || !v.s.redisUp || v.s.role.Kind != "slave" || q.master.IsZero() ||
		q.master == v.s.self || q.master == v.s.role.Master || time.Since(q.at) > staleAfter {
		*since = time.Time{}
		return
	}
	if since.IsZero() {
		*since = time.Now()
		return
	}
	if time.Since(*since) < repointAfter {
		return
	}
	*since = time.Time{}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	n.setCause("re-pointed by the agent: was following " + v.s.role.Master.String())
	if err := n.localRedis(cfg).ReplicaOf(cctx, q.master.Host, strconv.Itoa(q.master.Port)).Err(); err != nil {
		n.log.Warn("re-point replica", "err", err)
		return
	}
	n.log.Warn("replica re-pointed to the master the sentinels name", "was", v.s.role.Master.String(), "master", q.master.String())
}

// quorumView is what the sentinels say, asked directly: how many answer,
// and which master (if any) a quorum of them names.
type quorumView struct {
	reachable int
	master    sentinel.Addr // zero when no quorum agrees
	at        time.Time
}

// askSentinels asks every peer's sentinel (ours included) at once which
// master it names; connections are kept between rounds.
func askSentinels(ctx context.Context, cfg *Config, probes map[sentinel.Addr]*redis.SentinelClient) quorumView {
	addrs := sentinelAddrs(cfg)
	for _, a := range addrs {
		if probes[a] == nil {
			probes[a] = sentinel.NewSentinelClient(a, cfg.Password)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, fenceProbeTimeout)
	defer cancel()
	answers := make([]sentinel.Answer, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		c := probes[a]
		wg.Go(func() {
			m, err := sentinel.MasterAddr(ctx, c, cfg.Cluster.Name)
			answers[i] = sentinel.Answer{Sentinel: a, Master: m, Err: err}
		})
	}
	wg.Wait()
	v := quorumView{at: time.Now()}
	for _, a := range answers {
		if a.Err == nil || errors.Is(a.Err, sentinel.ErrNoMaster) {
			v.reachable++
		}
	}
	if m, ok := sentinel.Agreed(answers, sentinelQuorum(cfg)); ok {
		v.master = m
	}
	return v
}

func (n *node) quorum() quorumView {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.view
}

func (n *node) setQuorum(v quorumView) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.view = v
}

func (n *node) fenceState() (master, fenced bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hist.role == "master", n.fenced
}

func (n *node) setFenced(f bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fenced = f
}

func (n *node) fence(ctx context.Context, cfg *Config, seen int) {
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	// More replicas than exist: no write can be acknowledged.
	if err := n.localRedis(cfg).ConfigSet(cctx, "min-replicas-to-write", strconv.Itoa(len(cfg.Peers))).Err(); err != nil {
		n.log.Error("fence: could not refuse writes", "err", err)
		return
	}
	n.setFenced(true)
	n.log.Warn("fenced: this master sees no majority of sentinels; refusing writes",
		"sentinels_reachable", seen, "of", len(cfg.Peers), "after", time.Duration(cfg.Sentinel.FenceAfter))
	n.observe(ctx)
}

// unfence lifts the fence once a majority is back: as master if a quorum of
// sentinels still names this box, else after demoting it to the master they
// name, so that no write held back meets a master about to be discarded.
func (n *node) unfence(ctx context.Context, cfg *Config) {
	actx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	answers := sentinel.AskAll(actx, sentinelAddrs(cfg), cfg.Password, cfg.Cluster.Name)
	named, ok := sentinel.Agreed(answers, sentinelQuorum(cfg))
	if !ok {
		return // no verdict yet: stay fenced
	}
	rc := n.localRedis(cfg)
	if self := selfAddr(cfg); named != self {
		n.setCause("demoted after isolation: the sentinels elected " + named.String())
		if err := rc.ReplicaOf(actx, named.Host, strconv.Itoa(named.Port)).Err(); err != nil {
			n.log.Error("unfence: demote", "err", err)
			return
		}
		n.log.Warn("demoted after isolation", "master", named.String())
	}
	if err := rc.ConfigSet(actx, "min-replicas-to-write", strconv.Itoa(minReplicas(cfg))).Err(); err != nil {
		n.log.Error("unfence", "err", err)
		return
	}
	n.setFenced(false)
	n.log.Info("unfenced: a majority of sentinels is reachable again", "master", named.String())
	n.observe(ctx)
}
