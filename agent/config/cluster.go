package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// The two modes of cluster.mode.
const (
	ModeSentinel = "sentinel" // one master, its replicas, Sentinel
	ModeCluster  = "cluster"  // Redis Cluster: shards, each box a master and replicas of others
)

// BusOffset is how far above an instance's port its cluster bus listens,
// Redis Cluster's own default, which every box keeps.
const BusOffset = 10000

// ClusterMode reports cluster.mode = "cluster".
func (c *Config) ClusterMode() bool { return c.Cluster.Mode == ModeCluster }

// Instances are the redis instances of the box whose peers entry is box in
// cluster mode: its port and the cluster.replicas ports above it; the box's
// own redis alone in sentinel mode.
func (c *Config) Instances(box wire.Addr) []wire.Addr {
	if !c.ClusterMode() {
		return []wire.Addr{box}
	}
	out := make([]wire.Addr, 1+c.Cluster.Replicas)
	for j := range out {
		out[j] = wire.Addr{Host: box.Host, Port: box.Port + j}
	}
	return out
}

// BusPort is the cluster bus port of the instance at a.
func BusPort(a wire.Addr) int { return a.Port + BusOffset }

// validateClusterMode checks cluster.mode and what it asks of the other
// keys. It runs after the peers are resolved.
func validateClusterMode(v *checker, c *Config) {
	switch c.Cluster.Mode {
	case ModeSentinel, ModeCluster:
	default:
		v.add("cluster.mode", "%q: want %q or %q", c.Cluster.Mode, ModeSentinel, ModeCluster)
		return
	}
	if c.Cluster.Replicas < 1 || c.Cluster.Replicas > 8 {
		v.add("cluster.replicas", "%d: want 1 to 8 replicas per shard", c.Cluster.Replicas)
		return
	}
	if !c.ClusterMode() {
		if v.set("cluster.replicas") {
			v.add("cluster.replicas", "is set but cluster.mode is %q: replicas per shard are a cluster mode setting", c.Cluster.Mode)
		}
		return
	}
	n := len(c.Peers)
	switch {
	case n < 3:
		// A replica is promoted by the votes of a majority of masters: with
		// fewer than three, losing one box loses that majority.
		v.at("cluster.mode", "cluster.peers", "cluster mode needs at least 3 peers (a majority of masters must survive a box), %d listed", n)
		return
	case c.Cluster.Replicas > n-1:
		v.add("cluster.replicas", "%d: each of a shard's replicas runs on another box than its master and the other replicas, so at most %d with %d peers",
			c.Cluster.Replicas, n-1, n)
	}
	ports := map[wire.Addr]wire.Addr{} // every instance and bus port, and the peer it belongs to
	for _, p := range c.Peers {
		// CLUSTER MEET takes an IP address: Redis Cluster does not
		// resolve names.
		if _, err := netip.ParseAddr(p.Host); err != nil {
			v.add("cluster.peers", "%s: cluster mode needs IP addresses (Redis Cluster meets nodes by IP)", p)
			continue
		}
		if top := p.Port + c.Cluster.Replicas + BusOffset; top > 65535 {
			v.add("cluster.peers", "%s: its instances' cluster bus ports reach %d, above 65535: use a lower port", p, top)
			continue
		}
		for _, a := range c.Instances(p) {
			for _, port := range []int{a.Port, BusPort(a)} {
				k := wire.Addr{Host: a.Host, Port: port}
				if other, dup := ports[k]; dup && other != p {
					v.add("cluster.peers", "%s and %s both need port %d on %s: space their ports %d or more apart",
						other, p, port, a.Host, 1+c.Cluster.Replicas)
				}
				ports[k] = p
			}
		}
	}
	if c.Auth.ACL {
		// The agent's ACL user may not run CLUSTER commands yet.
		v.add("auth.acl", "not supported in cluster mode yet: leave it false (the password file protects every instance)")
	}
	for k := range c.Redis.Settings {
		if sentinel.OwnedClusterKey(k) {
			v.add("redis.settings."+k, "the agent sets %s itself in cluster mode; remove it", strings.ToLower(k))
		}
	}
	if c.VIP.Address != "" {
		v.add("vip.address", "cluster mode has no virtual IP: clients are cluster-aware and follow MOVED themselves")
	}
	if c.HTTPListen != "" && !c.Self.IsZero() {
		if _, port, err := splitHostPortStr(c.HTTPListen); err == nil {
			for _, a := range c.Instances(c.Self) {
				if port == a.Port || port == BusPort(a) {
					v.add("http.listen", "%q: port %d is one of this box's redis instance or cluster bus ports", c.HTTPListen, port)
				}
			}
		}
	}
}

func splitHostPortStr(s string) (string, int, error) {
	a, err := wire.ParseAddr(s, 0)
	if err != nil || a.Port == 0 {
		// ":8008" has no host for ParseAddr: only its port matters here.
		if len(s) > 1 && s[0] == ':' {
			p, perr := strconv.Atoi(s[1:])
			return "", p, perr
		}
		return "", 0, fmt.Errorf("%q: no port", s)
	}
	return a.Host, a.Port, nil
}
