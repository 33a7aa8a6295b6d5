package sentinel

import (
	"context"
	"fmt"
)

// RequestChannel carries requests to a box's agent through its own redis:
// the CLI on any box publishes on the target box's redis (authenticated with
// the group's password, a replica included: PUBLISH is no write), and the
// agent there subscribes to its own. PUBLISH answers how many subscribers
// got the message, so the sender knows whether an agent listens.
const RequestChannel = "redis-ha:request"

// Request sends msg to the agent of this server's box and returns how many
// agents received it (0: none listens).
func (r *Redis) Request(ctx context.Context, msg string) (int64, error) {
	n, err := r.c.Publish(ctx, RequestChannel, msg).Result()
	if err != nil {
		return 0, fmt.Errorf("request %q: %w", msg, err)
	}
	return n, nil
}

// Requests subscribes to the requests sent to this server's box. The channel
// is closed once ctx is done; go-redis resubscribes by itself after redis
// restarts, and requests sent meanwhile are lost (their sender sees 0
// receivers).
func (r *Redis) Requests(ctx context.Context) <-chan string {
	out := make(chan string, 4)
	ps := r.c.Subscribe(ctx, RequestChannel)
	in := ps.Channel()
	go func() {
		defer close(out)
		defer func() { _ = ps.Close() }()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- m.Payload:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
