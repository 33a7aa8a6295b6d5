package sentinel

import (
	"context"
	"fmt"
	"strconv"
)

// The fence is min-replicas-to-write raised above the number of replicas
// the group can have: writes fail at once with NOREPLICAS (clients see an
// error, not a hang), reads go on, and one CONFIG SET lifts it. What it
// means is written here only: the agent's fence sets it, the generated
// redis.conf carries the healthy value, and status reads it back.

// MinReplicas is the min-replicas-to-write of a healthy master in a group
// of peers boxes: enough replicas that, with the master, they are a
// majority. It bounds what a master cut off from the group acknowledges to
// min-replicas-max-lag even when its agent is dead.
func MinReplicas(peers int) int {
	if peers < 2 {
		return 0
	}
	return peers / 2
}

// fenced: a master asking for more replicas than the group has besides it
// can acknowledge no write.
func fenced(minReplicas, peers int) bool {
	return peers > 1 && minReplicas > peers-1
}

// Fence makes the master of a group of peers boxes refuse every write.
func (r *Redis) Fence(ctx context.Context, peers int) error {
	return r.Set(ctx, "min-replicas-to-write", strconv.Itoa(peers))
}

// Unfence puts back the healthy min-replicas-to-write.
func (r *Redis) Unfence(ctx context.Context, peers int) error {
	return r.Set(ctx, "min-replicas-to-write", strconv.Itoa(MinReplicas(peers)))
}

// Fenced reads the fence from the server itself, so that it is known even
// when the box's agent is down.
func (r *Redis) Fenced(ctx context.Context, peers int) (bool, error) {
	v, err := r.Get(ctx, "min-replicas-to-write")
	if err != nil {
		return false, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return false, fmt.Errorf("config get min-replicas-to-write: %w", err)
	}
	return fenced(n, peers), nil
}
