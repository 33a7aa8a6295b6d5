package sentinel

import (
	"strconv"
	"strings"
	"time"
)

// ClusterConf is what the agent decides about one Redis Cluster node.
type ClusterConf struct {
	ConfigFile  string        // nodes.conf, which redis rewrites itself
	NodeTimeout time.Duration // cluster-node-timeout
	BusPort     int           // cluster-port
	AnnounceIP  string        // cluster-announce-ip: the address the other nodes and clients are sent to
}

// directives are the cluster lines of redis.conf.
func (c *ClusterConf) directives(tls bool) []Directive {
	ms := strconv.FormatInt(c.NodeTimeout.Milliseconds(), 10)
	ds := []Directive{
		fixed("cluster-enabled", "yes"),
		fixed("cluster-config-file", quote(c.ConfigFile)),
		live("cluster-node-timeout", ms, ms),
		fixed("cluster-port", strconv.Itoa(c.BusPort)),
		// Yes would stop every shard's writes while one shard's master is
		// down and its replica not yet elected: the cluster's state turns
		// fail as soon as one slot is unserved. No keeps the other shards
		// writing; a master cut off from the majority still refuses writes
		// (cluster state fail on the minority side), and the agent fences it
		// sooner than that.
		fixed("cluster-require-full-coverage", "no"),
		// Where each replica runs is the agents' plan (no master and its
		// replica on one box): Redis must not move replicas to orphaned
		// masters on its own.
		fixed("cluster-allow-replica-migration", "no"),
	}
	if c.AnnounceIP != "" {
		ds = append(ds, fixed("cluster-announce-ip", c.AnnounceIP))
	}
	if tls {
		ds = append(ds, fixed("tls-cluster", "yes"))
	}
	return ds
}

// OwnedClusterKey reports whether key is a cluster directive the agent
// renders in cluster mode (redis.settings may not set it then).
func OwnedClusterKey(key string) bool {
	switch strings.ToLower(key) {
	case "cluster-enabled", "cluster-config-file", "cluster-node-timeout", "cluster-port",
		"cluster-announce-ip", "cluster-announce-port", "cluster-announce-tls-port", "cluster-announce-bus-port",
		"cluster-require-full-coverage", "cluster-allow-replica-migration", "tls-cluster":
		return true
	}
	return false
}
