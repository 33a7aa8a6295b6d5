package sentinel

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// The CLUSTER commands the agent sends in cluster mode. Creation is the
// sequence redis-cli --cluster create runs, sent by the agent so that it
// decides where each node goes (agent/ha's Plan): SET-CONFIG-EPOCH, MEET,
// ADDSLOTSRANGE, REPLICATE. FAILOVER is sent plain (the zero-loss manual
// failover) or FORCE, which the agent sends only to the replica of a master
// it knows to be dead; TAKEOVER never.

// ClusterNodes is every node the instance knows (CLUSTER NODES).
func (r *Redis) ClusterNodes(ctx context.Context) (wire.ClusterView, error) {
	s, err := r.c.Do(ctx, "CLUSTER", "NODES").Text()
	if err != nil {
		return nil, fmt.Errorf("cluster nodes: %w", err)
	}
	return wire.ParseNodes(s)
}

// ClusterInfo is CLUSTER INFO as fields (cluster_state, cluster_known_nodes,
// cluster_current_epoch, cluster_stats_messages_mfstart_received, ...).
func (r *Redis) ClusterInfo(ctx context.Context) (map[string]string, error) {
	s, err := r.c.Do(ctx, "CLUSTER", "INFO").Text()
	if err != nil {
		return nil, fmt.Errorf("cluster info: %w", err)
	}
	return fields(s), nil
}

func fields(s string) map[string]string {
	m := map[string]string{}
	for l := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// DBSize is how many keys the instance holds.
func (r *Redis) DBSize(ctx context.Context) (int64, error) {
	n, err := r.c.DBSize(ctx).Result()
	if err != nil {
		return 0, fmt.Errorf("dbsize: %w", err)
	}
	return n, nil
}

// ClusterSetEpoch gives a node that knows nobody yet its config epoch.
func (r *Redis) ClusterSetEpoch(ctx context.Context, epoch int64) error {
	if err := r.c.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", epoch).Err(); err != nil {
		return fmt.Errorf("cluster set-config-epoch %d: %w", epoch, err)
	}
	return nil
}

// ClusterMeet introduces the node at a (its cluster bus on bus).
func (r *Redis) ClusterMeet(ctx context.Context, a wire.Addr, bus int) error {
	if err := r.c.Do(ctx, "CLUSTER", "MEET", a.Host, a.Port, bus).Err(); err != nil {
		return fmt.Errorf("cluster meet %s: %w", a, err)
	}
	return nil
}

// ClusterAddSlots makes the node serve the slots of rs.
func (r *Redis) ClusterAddSlots(ctx context.Context, rs []wire.SlotRange) error {
	args := []any{"CLUSTER", "ADDSLOTSRANGE"}
	for _, x := range rs {
		args = append(args, x.From, x.To)
	}
	if err := r.c.Do(ctx, args...).Err(); err != nil {
		return fmt.Errorf("cluster addslotsrange: %w", err)
	}
	return nil
}

// ClusterReplicate makes the node a replica of the master id.
func (r *Redis) ClusterReplicate(ctx context.Context, id string) error {
	if err := r.c.Do(ctx, "CLUSTER", "REPLICATE", id).Err(); err != nil {
		return fmt.Errorf("cluster replicate %s: %w", id, err)
	}
	return nil
}

// ClusterFailover asks this replica to take its master's slots over: plain
// (force false), with the master's agreement and nothing lost; FORCE when
// the master is known to be dead, without asking it.
func (r *Redis) ClusterFailover(ctx context.Context, force bool) error {
	args := []any{"CLUSTER", "FAILOVER"}
	if force {
		args = append(args, "FORCE")
	}
	if err := r.c.Do(ctx, args...).Err(); err != nil {
		return fmt.Errorf("cluster failover: %w", err)
	}
	return nil
}

// ClusterForget drops the node id from this node's table (and bans it from
// gossip for a minute: every node must forget it within that time).
func (r *Redis) ClusterForget(ctx context.Context, id string) error {
	if err := r.c.Do(ctx, "CLUSTER", "FORGET", id).Err(); err != nil {
		return fmt.Errorf("cluster forget %s: %w", id, err)
	}
	return nil
}

// The cluster fence: a master of a shard has at most a few replicas, so
// asking for clusterFence of them refuses every write (NOREPLICAS) while
// reads go on. Unfenced, a cluster master asks for none: min-replicas-to-write
// counts only its own shard's replicas, and a shard whose replica's box is
// down must keep taking writes.
const clusterFence = 100

// ClusterFence makes a cluster master refuse every write.
func (r *Redis) ClusterFence(ctx context.Context) error {
	return r.Set(ctx, "min-replicas-to-write", strconv.Itoa(clusterFence))
}

// ClusterUnfence lifts ClusterFence.
func (r *Redis) ClusterUnfence(ctx context.Context) error {
	return r.Set(ctx, "min-replicas-to-write", "0")
}

// ClusterFenced reads the fence from the instance itself.
func (r *Redis) ClusterFenced(ctx context.Context) (bool, error) {
	v, err := r.Get(ctx, "min-replicas-to-write")
	if err != nil {
		return false, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return false, fmt.Errorf("config get min-replicas-to-write: %w", err)
	}
	return n >= clusterFence, nil
}

// ClusterFenceValue is min-replicas-to-write of a fenced cluster master,
// for a redis.conf that starts one fenced.
func ClusterFenceValue() int { return clusterFence }
