package agent

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/internal/vip"
)

// The virtual IP is reconciled, never scripted: on every round the agent
// compares "this box is the master a quorum of sentinels names, unfenced"
// (what /primary answers) with "the VIP is on my interface", and fixes the
// difference. So a VIP left behind by a crash is removed at start, a VIP
// someone deleted comes back, and a demoted or fenced box drops it within a
// round.

// Gratuitous ARP / NA: a burst when the VIP arrives (keepalived sends 5).
const (
	vipAnnounceRepeat = 5
	vipAnnounceGap    = 200 * time.Millisecond
)

// vipState is owned by the fence loop's goroutine.
type vipState struct {
	announcing   sync.WaitGroup
	misses       int       // consecutive rounds in which this box held the VIP but was not primary
	primarySince time.Time // since when this box is primary without a break; zero when it is not
}

// vipHoldOff is how long a new primary waits before taking the VIP: two of
// the old master's reconcile rounds, the first of which may have begun just
// before its demotion.
func vipHoldOff(cfg *config.Config) time.Duration { return 2 * fenceEvery(cfg) }

// reconcileVIP puts the VIP on this box or takes it off, as /primary says.
func (n *node) reconcileVIP(ctx context.Context, cfg *config.Config, st *vipState) {
	if cfg.VIP.Address == "" {
		return
	}
	p, iface, err := vipTarget(cfg)
	if err != nil {
		n.vipWarn("vip: cannot manage "+cfg.VIP.Address, err)
		return
	}
	v := n.readView()
	want := v.isPrimary()
	demoted := false
	if want {
		// As /primary: the observation may be a second behind a switchover.
		// A local redis too slow to answer is left to the next round.
		kind, err := n.liveRole(ctx, cfg)
		demoted = err == nil && kind != "master"
		want = !demoted
	}
	present, err := vip.Present(iface, p)
	if err != nil {
		n.vipWarn("vip", err)
		return
	}
	// One round without a quorum answer (a sentinel slower than the probe
	// timeout) must not bounce the VIP; a demotion or a fence drops it at once.
	if present && !want && !demoted && !v.s.fenced && v.s.role.Kind == "master" && st.misses < 1 {
		st.misses++
		return
	}
	st.misses = 0
	if !want {
		st.primarySince = time.Time{}
	} else if st.primarySince.IsZero() {
		st.primarySince = time.Now()
	}
	switch {
	case want && !present && time.Since(st.primarySince) < vipHoldOff(cfg):
		// The old master drops the VIP within one of its rounds of being
		// demoted (liveRole); taking it before that round is over would put
		// it on two boxes.
	case want && !present:
		if _, err := vip.Add(iface, p); err != nil {
			n.vipWarn("vip", err)
			return
		}
		n.log.Info("vip: added; this box is the primary", "vip", p.String(), "interface", iface)
		n.rebind(ctx, cfg, p.Addr().String())
		st.announcing.Add(1)
		go func() {
			defer st.announcing.Done()
			if err := vip.Announce(ctx, iface, p, vipAnnounceRepeat, vipAnnounceGap); err != nil && ctx.Err() == nil {
				n.log.Warn("vip: announce", "err", err)
			}
		}()
	case !want && present:
		n.dropVIP(ctx, cfg, iface, p, "this box is not the primary")
	}
}

// dropVIP removes the VIP (demotion, fencing, shutdown).
func (n *node) dropVIP(ctx context.Context, cfg *config.Config, iface string, p netip.Prefix, why string) {
	if _, err := vip.Remove(iface, p); err != nil {
		n.vipWarn("vip", err)
		return
	}
	n.log.Info("vip: removed", "vip", p.String(), "interface", iface, "why", why)
	n.rebind(ctx, cfg, "")
}

// releaseVIP takes the VIP off at shutdown: a stopped agent vouches for
// nothing.
func (n *node) releaseVIP(cfg *config.Config, st *vipState) {
	st.announcing.Wait()
	if cfg.VIP.Address == "" {
		return
	}
	p, iface, err := vipTarget(cfg)
	if err != nil {
		return
	}
	if present, err := vip.Present(iface, p); err == nil && present {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		n.dropVIP(ctx, cfg, iface, p, "agent stopping")
	}
}

func vipTarget(cfg *config.Config) (netip.Prefix, string, error) {
	p, err := vip.Parse(cfg.VIP.Address)
	if err != nil {
		return p, "", err
	}
	iface := cfg.VIP.Interface
	if iface == "" {
		self, err := netip.ParseAddr(cfg.Self.Host)
		if err != nil {
			return p, "", err
		}
		if iface, err = vip.InterfaceFor(self); err != nil {
			return p, "", err
		}
	}
	return p, iface, nil
}

// rebind makes redis listen on the VIP while this box holds it: `bind` with
// an address that appears later is not picked up by redis by itself
// (research/api-facts.md §6).
func (n *node) rebind(ctx context.Context, cfg *config.Config, vipAddr string) {
	addrs := cfg.Bind()
	if vipAddr != "" {
		addrs = append(addrs, vipAddr)
	}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := n.local.Redis().Rebind(cctx, addrs); err != nil {
		n.log.Warn("vip: rebind redis", "err", err)
	}
}

// vipWarn logs a VIP problem once until it changes: the loop runs four times
// a second.
func (n *node) vipWarn(msg string, err error) {
	n.mu.Lock()
	same := n.vipErr == err.Error()
	n.vipErr = err.Error()
	n.mu.Unlock()
	if !same {
		n.log.Warn(msg, "err", err)
	}
}
