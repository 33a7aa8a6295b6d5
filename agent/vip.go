package agent

import (
	"context"
	"net/netip"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/internal/vip"
)

// The virtual IP follows /primary (ha.VIP decides); this file carries the
// decisions out: netlink, gratuitous ARP, and redis's bind.

// Gratuitous ARP / NA: a burst when the VIP arrives (keepalived sends 5).
const (
	vipAnnounceRepeat = 5
	vipAnnounceGap    = 200 * time.Millisecond
)

// vipStep puts the VIP on this box or takes it off, as /primary says.
func (n *node) vipStep(ctx context.Context, cfg *config.Config) {
	if cfg.VIP.Address == "" || n.isPaused() {
		return // paused: the VIP stays where it is
	}
	p, iface, err := vipTarget(cfg)
	if err != nil {
		n.vipWarn("vip: cannot manage "+cfg.VIP.Address, err)
		return
	}
	st := &n.st
	s := ha.VIPState{Primary: st.view.IsPrimary(time.Now()), Fenced: st.view.S.Fenced, Master: st.view.S.IsMaster()}
	if s.Primary {
		// As /primary: the observation may be a second behind a switchover.
		// A local redis too slow to answer is left to the next round.
		kind, err := liveRole(ctx, n.local.Redis())
		s.Demoted = err == nil && kind != "master"
		s.Primary = !s.Demoted
	}
	if s.Present, err = vip.Present(iface, p); err != nil {
		n.vipWarn("vip", err)
		return
	}
	// Two of the old master's rounds, the first of which may have begun
	// just before its demotion.
	st.vip.HoldOff = 2 * fenceEvery(cfg)
	switch st.vip.Step(time.Now(), s) {
	case ha.VIPTake:
		if _, err := vip.Add(iface, p); err != nil {
			n.vipWarn("vip", err)
			return
		}
		n.log.Info("vip: added; this box is the primary", "vip", p.String(), "interface", iface)
		n.rebind(ctx, cfg, p.Addr().String())
		st.announces.Go(func() {
			if err := vip.Announce(ctx, iface, p, vipAnnounceRepeat, vipAnnounceGap); err != nil && ctx.Err() == nil {
				n.log.Warn("vip: announce", "err", err)
			}
		})
	case ha.VIPRelease:
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
func (n *node) releaseVIP(cfg *config.Config) {
	n.st.announces.Wait()
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
// (a runtime CONFIG SET bind does).
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
	same := n.st.vipErr == err.Error()
	n.st.vipErr = err.Error()
	if !same {
		n.log.Warn(msg, "err", err)
	}
}
