package agent

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// switchoverWait bounds how long a switchover waits for the replica to
// take over: the manual failover itself gives up after 5 s (the master
// then lifts its pause), and the election after twice the node timeout.
const switchoverWait = 15 * time.Second

// switchover makes the replica at to its shard's master with plain CLUSTER
// FAILOVER: its master pauses writes, the replica catches up with its
// offset, wins an election and takes the slots, and the clients held by
// the pause are redirected (MOVED) to it. No acknowledged write is lost;
// the pause lasts as long as the catching up and the election. Refused
// unless the replica's link is up, its lag small, its master serving and
// the cluster ok; never FORCE or TAKEOVER.
func (c *clusterAgent) switchover(ctx context.Context, to string) (string, error) {
	cfg := c.n.config()
	if to == "" {
		return "", fmt.Errorf("%w: cluster mode has a master per shard: name the replica to promote with --to HOST:PORT", errRefused)
	}
	target, err := wire.ParseAddr(to, cfg.Redis.Port)
	if err != nil {
		return "", fmt.Errorf("%w: --to: %v", errRefused, err)
	}
	if !slices.Contains(c.plan.All(), target) {
		return "", fmt.Errorf("%w: %s is none of the cluster's instances", errRefused, target)
	}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	r := c.pool.Get(target)
	role, err := r.Role(cctx)
	if err != nil {
		return "", fmt.Errorf("%w: %s does not answer: %v", errRefused, target, err)
	}
	if role.Kind != "slave" {
		return "", fmt.Errorf("%w: %s is a %s, not a replica", errRefused, target, role.Kind)
	}
	if role.Link != "connected" {
		return "", fmt.Errorf("%w: %s's link to its master %s is %s", errRefused, target, role.Master, role.Link)
	}
	info, err := r.ClusterInfo(cctx)
	if err != nil || info["cluster_state"] != "ok" {
		return "", fmt.Errorf("%w: the cluster is not ok in %s's view (%s)", errRefused, target, info["cluster_state"])
	}
	m, err := c.pool.Get(role.Master).Role(cctx)
	if err != nil || m.Kind != "master" {
		return "", fmt.Errorf("%w: its master %s does not answer as master", errRefused, role.Master)
	}
	if lag := m.Offset - role.Offset; lag > maxSwitchoverLag {
		return "", fmt.Errorf("%w: %s is %d bytes behind its master: writes would pause until it catches up", errRefused, target, lag)
	}
	view, err := r.ClusterNodes(cctx)
	if err != nil {
		return "", fmt.Errorf("switchover: %w", err)
	}
	slots := ""
	if me, ok := view.Myself(); ok {
		if mn, ok := view.ByID(me.MasterID); ok {
			slots = rangeList(mn.Slots)
		}
	}
	start := time.Now()
	if err := r.ClusterFailover(cctx, false); err != nil {
		// Another failover may have made it master since it was asked
		// (a failback of the agents'): what was asked for holds.
		if now, rerr := r.Role(cctx); rerr == nil && now.Kind == "master" {
			return fmt.Sprintf("switchover: %s is already its shard's master", target), nil
		}
		return "", fmt.Errorf("switchover: %w", err)
	}
	c.log.Info("switchover: CLUSTER FAILOVER sent", "to", target.String(), "from", role.Master.String(), "slots", slots)
	wctx, wcancel := context.WithTimeout(ctx, switchoverWait)
	defer wcancel()
	for {
		pctx, pcancel := context.WithTimeout(wctx, probeTimeout)
		now, err := r.Role(pctx)
		pcancel()
		if err == nil && now.Kind == "master" {
			took := time.Since(start)
			c.log.Info("switchover done", "to", target.String(), "from", role.Master.String(), "took", took.Round(time.Millisecond))
			return fmt.Sprintf("switchover: slots %s: %s -> %s in %s", slots, role.Master, target, took.Round(time.Millisecond)), nil
		}
		if sleepCtx(wctx, 10*time.Millisecond) != nil {
			return "", fmt.Errorf("switchover: %s did not take over within %s (the master lifted its pause: nothing lost)", target, switchoverWait)
		}
	}
}

// maxSwitchoverLag: a replica further behind would keep writes paused
// while it catches up.
const maxSwitchoverLag = 1 << 20
