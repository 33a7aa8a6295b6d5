package agent

import (
	"context"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
)

// observe probes the local redis and sentinel once (events can be lost on
// reconnect, so the loop also observes on its ticker), records a role
// change, and updates the view and STATUS=. It runs on the loop's goroutine
// only (and on run's, before the loop starts). becameMaster says this box
// has just become master: its fence clock must start now.
func (n *node) observe(ctx context.Context) (s ha.Snapshot, becameMaster bool) {
	st := &n.st
	cfg := n.config()
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	s = ha.Snapshot{Single: cfg.Single(), Self: cfg.Self, Peers: len(cfg.Peers),
		Gated: n.gated.Load(), Fenced: st.fenced, ReloadErr: st.reloadErr, RedisErr: n.lastRedisErr()}
	if n.redis.Current() != nil {
		if r, err := n.local.Redis().Role(pctx); err == nil {
			s.RedisUp, s.Role, s.RedisErr = true, r, ""
			n.redisErr.Store(nil)
		}
		if s.RedisUp && !s.Single {
			if f, err := n.local.Redis().Fenced(pctx, len(cfg.Peers)); err == nil {
				s.FenceRead, s.FenceSet = true, f
			}
		}
	}
	if !s.Single && n.sentinel.Current() != nil {
		sc := n.local.Sentinel()
		if m, err := sc.MasterAddr(pctx, cfg.Cluster.Name); err == nil {
			s.Named = m
		}
		if u, _, err := sc.Usable(pctx, cfg.Cluster.Name); err == nil {
			s.Usable = u
		}
	}
	n.observeSynced(pctx, s)
	n.observePause(pctx, cfg, &s)
	s.Pending = n.pendingRestart(cfg)
	s.Drained = n.drained.Load()
	n.keepPriority(ctx, cfg)
	var lag int64
	if s.RedisUp && s.Role.Kind == "slave" {
		lag = n.local.Lag(pctx, s.Role)
	}
	if s.IsMaster() {
		for _, r := range s.Role.Replicas {
			if r.Offset >= st.prevOffset {
				s.InSync++
			}
		}
		st.prevOffset = s.Role.Offset
	}
	if !s.Named.IsZero() && s.Named != st.named {
		if !st.named.IsZero() {
			n.log.Info("sentinels name a new master", "master", s.Named.String(), "was", st.named.String())
			n.switches.Add(1)
		}
		st.named = s.Named
	}
	now := time.Now()
	st.view.S, st.view.Lag, st.view.At, st.observed = s, lag, now, now
	n.publish()
	if c := n.roles.note(now, s); c != nil {
		n.recordChange(cfg, *c)
		becameMaster = c.To == "master"
	}
	n.notify.setStatus(ha.StatusLine(s))
	return s, becameMaster
}

// observeSynced notes whether this box's redis is an empty replica that has
// never synced with its master (ha.Priority): ROLE's offset is -1 until the
// first sync, and after a restart until the replica has linked again, which
// with data of its own is no reason to hold it back.
func (n *node) observeSynced(ctx context.Context, s ha.Snapshot) {
	if !s.RedisUp {
		return
	}
	unsynced := false
	if s.Role.Kind == "slave" && s.Role.Offset < 0 {
		keys, err := n.local.Redis().Keys(ctx)
		if err != nil {
			return
		}
		unsynced = keys == 0
	}
	if n.unsynced.Swap(unsynced) != unsynced {
		if unsynced {
			n.log.Info("an empty replica that has never synced with its master: never promoted until it has")
		} else {
			n.log.Info("replica synced (or holding data): promotable again")
		}
	}
}
