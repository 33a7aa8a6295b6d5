package sentinel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// PauseKey holds the group's maintenance pause: a key on the master, so
// that it replicates to every box, persists with the data (AOF, RDB) and
// survives any agent restart, and every agent reads it from its own redis,
// the master's box powered off included. Set with an expiry for `pause
// --for`: the master expires it, and a replica already answers a read of an
// expired key with nil. A FLUSHALL removes it too, which resumes the group.
const PauseKey = "redis-ha:pause"

// Pause is the record under PauseKey.
type Pause struct {
	By    string    `json:"by"`             // the box whose CLI paused the group
	At    time.Time `json:"at"`             // when
	Until time.Time `json:"until,omitzero"` // zero: until resumed
}

// ReadPause reads the group's pause from this server; ok is false when the
// group is not paused.
func (r *Redis) ReadPause(ctx context.Context) (p Pause, ok bool, err error) {
	b, err := r.c.Get(ctx, PauseKey).Bytes()
	if errors.Is(err, redis.Nil) {
		return Pause{}, false, nil
	}
	if err != nil {
		return Pause{}, false, fmt.Errorf("read pause: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		// Somebody else's value under our key still means paused: failing
		// over because a record is unreadable is the unsafe way to be wrong.
		return Pause{By: "unreadable record"}, true, nil
	}
	return p, true, nil
}

// WritePause pauses the group: the server must be its master.
func (r *Redis) WritePause(ctx context.Context, p Pause) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("write pause: %w", err)
	}
	args := redis.SetArgs{}
	if !p.Until.IsZero() {
		args.ExpireAt = p.Until
	}
	if err := r.c.SetArgs(ctx, PauseKey, b, args).Err(); err != nil {
		return fmt.Errorf("write pause: %w", err)
	}
	return nil
}

// ClearPause resumes the group: the server must be its master.
func (r *Redis) ClearPause(ctx context.Context) error {
	if err := r.c.Del(ctx, PauseKey).Err(); err != nil {
		return fmt.Errorf("clear pause: %w", err)
	}
	return nil
}

// ClearPauseOnReplica removes the pause from a replica's own copy, for a
// group whose master is down while paused (nothing else can resume it then).
// A replica refuses writes, so it is made writable for the one DEL: a write
// a client sends to this replica in between would be accepted, and lost at
// its next full sync, as any write to a writable replica is.
func (r *Redis) ClearPauseOnReplica(ctx context.Context) error {
	if err := r.Set(ctx, "replica-read-only", "no"); err != nil {
		return fmt.Errorf("clear pause on replica: %w", err)
	}
	derr := r.c.Del(ctx, PauseKey).Err()
	if err := r.Set(context.WithoutCancel(ctx), "replica-read-only", "yes"); err != nil {
		return fmt.Errorf("clear pause on replica: read-only again: %w", err)
	}
	if derr != nil {
		return fmt.Errorf("clear pause on replica: %w", derr)
	}
	return nil
}
