package config

import (
	"fmt"
	"log/slog"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Values derived from a configuration, in one place: the rest of the agent
// asks the Config rather than recomputing them.

// Single reports single-box mode: no peers, no sentinel, no failover.
func (c *Config) Single() bool { return len(c.Peers) == 0 }

// SentinelOf is the sentinel beside a box's redis. Every box keeps the same
// distance between its redis and sentinel ports as this one (6379 → 26379 by
// default), which also lets a test group share one host's loopback.
func (c *Config) SentinelOf(redis wire.Addr) wire.Addr {
	return wire.Addr{Host: redis.Host, Port: redis.Port + c.SentinelPort - c.Redis.Port}
}

// LocalSentinel is this box's sentinel.
func (c *Config) LocalSentinel() wire.Addr { return c.SentinelOf(c.Self) }

// Group is how to reach every box's sentinel.
func (c *Config) Group() sentinel.Group {
	g := sentinel.Group{Name: c.Cluster.Name, Creds: c.Creds(), Sentinels: make([]wire.Addr, len(c.Peers))}
	for i, p := range c.Peers {
		g.Sentinels[i] = c.SentinelOf(p)
	}
	return g
}

// Creds are how the agent reaches every redis and sentinel of the group:
// the password, or its own user with auth.acl, over TLS when tls.enabled.
func (c *Config) Creds() sentinel.Creds {
	cr := sentinel.Creds{Password: c.Password}
	if a := c.ACL(); a != nil {
		cr.User, cr.Password = sentinel.AgentUser, a.Agent.Use
	}
	if c.Certs != nil {
		cr.TLS = c.Certs.Client
	}
	return cr
}

// ACL is auth.acl's users, derived from the password; nil when off.
func (c *Config) ACL() *sentinel.ACL {
	if !c.Auth.ACL {
		return nil
	}
	a := sentinel.DeriveACL(c.Password, c.Cluster.Name)
	if r := c.Rotation; r != nil {
		a = a.Rolling(sentinel.DeriveACL(r.From, c.Cluster.Name), r.Switched)
	}
	return a
}

// Members are the boxes of the group, or this box alone.
func (c *Config) Members() []wire.Addr {
	if c.Single() {
		return []wire.Addr{c.Self}
	}
	return c.Peers
}

// Bind is where redis and the sentinel listen: loopback, for the agent and
// local clients, and this box's own address.
func (c *Config) Bind() []string {
	if c.Self.Host == "127.0.0.1" || c.Self.Host == "localhost" {
		return []string{"127.0.0.1"}
	}
	return []string{"127.0.0.1", c.Self.Host}
}

// SentinelQuorum is cluster.quorum; a single box monitors itself with 1.
func (c *Config) SentinelQuorum() int { return max(c.Quorum, 1) }

// ParallelSyncs re-points every replica at once after a failover. A new
// master acknowledges writes only once min-replicas-to-write replicas are
// attached, and Sentinel moves the next replica only after the previous one
// shows its link up in its next INFO (once a second): one at a time, a
// five-box group refused writes a second longer than a three-box one. The
// replicas share the old master's history, so a failover almost always
// needs only a partial resync; after a full one they still serve reads from
// their old data while they load (replica-serve-stale-data).
func (c *Config) ParallelSyncs() int { return max(len(c.Peers)-1, 1) }

// Describe is the mode in one line, for logs and check-config.
func (c *Config) Describe() string {
	if c.Single() {
		return "single-box mode on " + c.Self.String()
	}
	return fmt.Sprintf("group %q of %d peers, this node %s, quorum %d", c.Cluster.Name, len(c.Peers), c.Self.String(), c.Quorum)
}

// LogLevel is log.level as slog's level (validation accepts nothing else).
func (c *Config) LogLevel() slog.Level {
	l, _ := logLevel(c.Log.Level)
	return l
}

func logLevel(s string) (slog.Level, bool) {
	switch s {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warning":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return slog.LevelInfo, false
}
