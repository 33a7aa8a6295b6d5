package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
)

// A new password file under auth.acl rolls through the group box by box,
// and no box may lock out one that has not reloaded yet. Each box, on its
// reload, goes through three steps:
//
//  1. accept: its redis and sentinel accept the secrets of both passwords
//     (and the clients' default user both passwords), while it goes on
//     authenticating with the old secrets, which every box still accepts;
//  2. switch: once every box's redis and sentinel accept the new secrets
//     (the agent tries them), it authenticates with those;
//  3. drop: rotationGrace later, by when every other box has seen the same
//     and switched too, the old secrets and password are refused.
//
// A box that is down or keeps the old file holds the group at step 1, where
// every box still works with every other. An agent restarted in the middle
// forgets the old password: its redis then accepts only the new secrets.
const (
	rotateEvery   = time.Second
	rotationGrace = 30 * time.Second
)

// rolling is the rotation a reload from cur to next starts, carries on, or
// nil when the password did not change under auth.acl.
func rolling(cur, next *config.Config) *config.Rotation {
	if !cur.Auth.ACL || !next.Auth.ACL || cur.Cluster.Name != next.Cluster.Name {
		return nil
	}
	if next.Password == cur.Password {
		return cur.Rotation
	}
	from := cur.Password
	if r := cur.Rotation; r != nil && !r.Switched {
		from = r.From // the boxes may still use the first: keep accepting it
	}
	return &config.Rotation{From: from}
}

// rotations carries a rotation through its steps, until ctx ends.
func (n *node) rotations(ctx context.Context) {
	t := time.NewTicker(rotateEvery)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cfg := n.config()
		r := cfg.Rotation
		if r == nil {
			continue
		}
		err := n.rotateStep(ctx, cfg, r)
		if err != nil && err.Error() != lastErr {
			n.log.Info("password rotation: waiting", "why", err)
		}
		lastErr = ""
		if err != nil {
			lastErr = err.Error()
		}
	}
}

func (n *node) rotateStep(ctx context.Context, cfg *config.Config, r *config.Rotation) error {
	// Idempotent, so pushed on every step: a sentinel restarted by the
	// reload may not have been up for the first.
	if err := n.applyACL(ctx, cfg, ""); err != nil {
		return err
	}
	next := *cfg
	switch {
	case !r.Switched:
		if err := everyBoxAccepts(ctx, cfg); err != nil {
			return err
		}
		next.Rotation = &config.Rotation{From: r.From, Switched: true, At: time.Now()}
		if !n.replaceConfig(cfg, &next) {
			return nil // a reload came first; the next step sees it
		}
		n.log.Info("password rotation: every box accepts the new secrets; using them")
		return n.applyACL(ctx, &next, "")
	case time.Since(r.At) >= rotationGrace:
		next.Rotation = nil
		if !n.replaceConfig(cfg, &next) {
			return nil
		}
		if err := n.applyACL(ctx, &next, r.From); err != nil {
			return err
		}
		n.log.Info("password rotation done: the old password and secrets are refused")
	}
	return nil
}

// everyBoxAccepts tries the new agent secret on every box's redis and
// sentinel: a box accepts it only once it has reloaded the new password.
func everyBoxAccepts(ctx context.Context, cfg *config.Config) error {
	cr := cfg.Creds()
	cr.Password = sentinel.DeriveSecret(cfg.Password, cfg.Cluster.Name, sentinel.AgentUser)
	for _, b := range cfg.Members() {
		for _, s := range []struct {
			what string
			ping func(context.Context) error
		}{
			{"redis", func(ctx context.Context) error { c := sentinel.NewRedis(b, cr); defer c.Close(); return c.Ping(ctx) }},
			{"sentinel", func(ctx context.Context) error {
				c := sentinel.NewSentinel(cfg.SentinelOf(b), cr)
				defer c.Close()
				_, _, err := c.Usable(ctx, cfg.Cluster.Name)
				return err
			}},
		} {
			if s.what == "sentinel" && cfg.Single() {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			err := s.ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("%s %s does not accept the new secrets yet: %w", s.what, b, err)
			}
		}
	}
	return nil
}

// applyACL pushes cfg's users to the local redis and sentinel, and the
// clients' password (and the old one while it rolls) to their default
// user; drop is a password the default user no longer takes.
func (n *node) applyACL(ctx context.Context, cfg *config.Config, drop string) error {
	a := cfg.ACL()
	if a == nil {
		return nil
	}
	defaults := []string{cfg.Password}
	if r := cfg.Rotation; r != nil {
		defaults = append(defaults, r.From)
	}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := n.local.Redis().ApplyACL(cctx, a, defaults, drop); err != nil {
		return fmt.Errorf("local redis: %w", err)
	}
	if cfg.Single() {
		return nil
	}
	if err := n.local.Sentinel().ApplyACL(cctx, cfg.Cluster.Name, a, defaults, drop); err != nil {
		return fmt.Errorf("local sentinel: %w", err)
	}
	return nil
}

// replaceConfig makes next the configuration in force if cur still is;
// false when a reload replaced cur meanwhile.
func (n *node) replaceConfig(cur, next *config.Config) bool { return n.swapConfig(cur, next) }
