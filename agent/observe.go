package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// snapshot is what one observation saw: the input of STATUS= and of the
// agent's view of its own role.
type snapshot struct {
	single    bool // no peers
	self      wire.Addr
	redisUp   bool      // ROLE answered
	role      wire.Role // valid when redisUp
	gated     bool      // the restart gate holds redis down
	fenced    bool      // refusing writes: no majority in sight
	master    wire.Addr // what the local sentinel names
	usable    int       // sentinels CKQUORUM counts as reachable
	peers     int
	inSync    int // master: replicas that acknowledged the previous observation's offset
	reloadErr string
}

// observe probes the local redis and sentinel once; events can be lost on
// reconnect, so this runs on a timer too. It updates the node's view and
// STATUS=.
func (n *node) observe(ctx context.Context) snapshot {
	cfg := n.config()
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	s := snapshot{single: len(cfg.Peers) == 0, self: cfg.Self, peers: len(cfg.Peers)}
	if n.redis.Current() != nil {
		if r, err := n.local.Redis().Role(pctx); err == nil {
			s.redisUp, s.role = true, r
		}
	}
	if !s.single && n.sentinel.Current() != nil {
		sc := n.local.Sentinel()
		if m, err := sc.MasterAddr(pctx, cfg.Cluster.Name); err == nil {
			s.master = m
		}
		if u, _, err := sc.Usable(pctx, cfg.Cluster.Name); err == nil {
			s.usable = u
		}
	}

	var lag int64
	if s.redisUp && s.role.Kind == "slave" {
		lag = n.local.Lag(pctx, s.role)
	}

	n.mu.Lock()
	s.gated, s.fenced, s.reloadErr = n.gated, n.fenced, n.reloadErr
	n.lag, n.lastAt = lag, time.Now()
	if s.redisUp && s.role.Kind == "master" {
		for _, r := range s.role.Replicas {
			if r.Offset >= n.prevOffset {
				s.inSync++
			}
		}
		n.prevOffset = s.role.Offset
	}
	if !s.master.IsZero() && s.master != n.master {
		n.log.Info("sentinels name a new master", "master", s.master.String(), "was", n.master.String())
		n.master = s.master
	}
	change := n.noteRoleLocked(s)
	n.last = s
	n.mu.Unlock()
	if change != nil {
		n.recordChange(cfg, *change)
		if change.To == "master" {
			// The fence loop asks the sentinels once a second on a replica;
			// a new master's fence clock must start now.
			select {
			case n.refresh <- struct{}{}:
			default:
			}
		}
	}
	n.notify.setStatus(statusLine(s))
	return s
}

// noteRoleLocked compares the observed role with the last recorded one and
// returns the change to record, if any. Caller holds n.mu.
func (n *node) noteRoleLocked(s snapshot) *Change {
	if !s.redisUp {
		return nil
	}
	kind, master := "replica", s.role.Master
	if s.role.Kind == "master" {
		kind, master = "master", s.self
	}
	defer func() { n.hist.offset = s.role.Offset }()
	if kind == n.hist.role {
		return nil
	}
	cause := n.hist.cause
	if cause == "" {
		cause = "reconfigured by Sentinel"
	}
	c := &Change{Time: time.Now(), From: n.hist.role, To: kind, Master: master.String(), Cause: cause,
		OffsetBefore: n.hist.offset, OffsetAfter: s.role.Offset}
	n.hist.role, n.hist.cause = kind, ""
	return c
}

// recordChange logs a role change and appends it to the history file.
func (n *node) recordChange(cfg *config.Config, c Change) {
	n.mu.Lock()
	n.counts.roleChanges++
	n.mu.Unlock()
	n.log.Info("role change", "from", orDash(c.From), "to", c.To, "master", c.Master, "cause", c.Cause,
		"offset_before", c.OffsetBefore, "offset_after", c.OffsetAfter)
	if err := appendHistory(historyPath(cfg), c); err != nil {
		n.log.Warn("record role change", "err", err)
	}
	select {
	case n.hooks <- c:
	default:
		n.log.Warn("hooks.on_role_change is falling behind; dropping a role change", "to", c.To)
	}
}

// statusLine is the one honest line of STATUS=, e.g.
// "master · 2/2 replicas in sync · sentinels 3/3".
func statusLine(s snapshot) string {
	var parts []string
	switch {
	case s.gated:
		parts = append(parts, "redis down: restart gate holds it until the sentinels name a new master")
	case !s.redisUp:
		parts = append(parts, "redis down")
	case s.role.Kind == "master" && s.fenced:
		parts = append(parts, "master · FENCED: no majority of sentinels in sight, refusing writes")
	case s.role.Kind == "master" && s.single:
		parts = append(parts, "master · single box")
	case s.role.Kind == "master":
		parts = append(parts, fmt.Sprintf("master · %d/%d replicas in sync", s.inSync, s.peers-1))
	default:
		link := "link up"
		if s.role.Link != "connected" {
			link = "link " + s.role.Link
		}
		parts = append(parts, fmt.Sprintf("replica of %s · %s", s.role.Master, link))
	}
	if !s.single {
		parts = append(parts, fmt.Sprintf("sentinels %d/%d", s.usable, s.peers))
		// Say so when redis and the sentinels disagree (a failover in
		// flight, or a demoted master Sentinel has not reconfigured yet).
		want := s.role.Master
		if s.role.Kind == "master" {
			want = s.self
		}
		if s.redisUp && !s.master.IsZero() && s.master != want {
			parts = append(parts, "sentinels name "+s.master.String())
		}
	}
	if s.reloadErr != "" {
		parts = append(parts, "reload refused: "+s.reloadErr)
	}
	return strings.Join(parts, " · ")
}
