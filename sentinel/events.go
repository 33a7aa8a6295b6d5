package sentinel

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Event is one message from a sentinel's event channels.
type Event struct {
	// Type is the channel name ("+switch-master", "+sdown", "-odown", ...),
	// or "subscribed" once the subscription is first in place, or
	// "resubscribed" after a reconnect. Events published while disconnected
	// are lost, so on either of the last two re-read what matters
	// (MasterAddr) instead of relying on the stream.
	Type    string
	Payload string
}

// Events subscribes to every event channel of the sentinel. The channel is
// closed, and the subscription with it, once ctx is done or s is closed.
// go-redis reconnects on its own; the caller keeps reading until the channel
// closes.
func (s *Sentinel) Events(ctx context.Context) <-chan Event {
	out := make(chan Event, 16)
	ps := s.c.PSubscribe(ctx, "*")
	// ChannelWithSubscriptions rather than Channel: the only sign of a
	// reconnect (and of lost events) is a fresh subscription confirmation.
	in := ps.ChannelWithSubscriptions()
	go func() {
		defer close(out)
		defer func() {
			_ = ps.Close()
			// Let go-redis's reader goroutine see the close and exit
			// instead of blocking on a full channel nobody reads.
			for range in {
			}
		}()
		subscribed := false
		for {
			var ev Event
			select {
			case <-ctx.Done():
				return
			case m, ok := <-in:
				if !ok {
					return
				}
				switch m := m.(type) {
				case *redis.Subscription:
					if m.Kind != "psubscribe" {
						continue
					}
					ev.Type = "subscribed"
					if subscribed {
						ev.Type = "resubscribed"
					}
					subscribed = true
				case *redis.Message:
					ev = Event{Type: m.Channel, Payload: m.Payload}
				default:
					continue
				}
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
