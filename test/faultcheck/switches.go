package faultcheck

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Switch is one +switch-master a sentinel published: it now names To where
// it named From.
type Switch struct {
	At       time.Time `json:"at"`
	Sentinel string    `json:"sentinel"`
	From     string    `json:"from"`
	To       string    `json:"to"`
}

// SwitchWatch listens to +switch-master on every sentinel of a target, so
// that a run can count its failovers. It reconnects to a sentinel that went
// away (a box powered off, a cut) and misses only what that one said while
// it was away; the others said it too.
type SwitchWatch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	switches []Switch
}

// How the watch notices a sentinel that went silent: a PING when nothing
// came for quiet, a reconnect when not even its pong came for deaf.
const (
	watchQuiet = time.Second
	watchDeaf  = 3 * time.Second
	watchRetry = 200 * time.Millisecond
)

// WatchSwitches starts listening on every sentinel of t until Stop.
func WatchSwitches(ctx context.Context, t Target) *SwitchWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &SwitchWatch{cancel: cancel}
	for _, addr := range t.Sentinels {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.listen(ctx, t, addr)
		}()
	}
	return w
}

// Stop ends the watch and returns every switch heard, in time order.
func (w *SwitchWatch) Stop() []Switch {
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Clone(w.switches)
	slices.SortStableFunc(out, func(a, b Switch) int { return a.At.Compare(b.At) })
	return out
}

func (w *SwitchWatch) listen(ctx context.Context, t Target, addr string) {
	sc := redis.NewSentinelClient(&redis.Options{
		Addr:          addr,
		Password:      t.Password,
		Dialer:        t.dialerOr(&net.Dialer{Timeout: dialTimeout}),
		DialTimeout:   dialTimeout,
		DialerRetries: 1,
		MaxRetries:    -1,
	})
	defer sc.Close()
	for ctx.Err() == nil {
		w.session(ctx, sc, addr)
		select {
		case <-ctx.Done():
		case <-time.After(watchRetry):
		}
	}
}

// session is one subscription, until the sentinel stops answering.
func (w *SwitchWatch) session(ctx context.Context, sc *redis.SentinelClient, addr string) {
	ps := sc.Subscribe(ctx, "+switch-master")
	defer ps.Close()
	heard := time.Now()
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, watchQuiet)
		var ne net.Error
		switch {
		case err == nil:
			heard = time.Now()
		case errors.As(err, &ne) && ne.Timeout():
			if time.Since(heard) > watchDeaf {
				return
			}
			if err := ps.Ping(ctx); err != nil {
				return
			}
			continue
		default:
			return
		}
		m, ok := msg.(*redis.Message)
		if !ok {
			continue
		}
		// "<name> <old-ip> <old-port> <new-ip> <new-port>"
		f := strings.Fields(m.Payload)
		if len(f) != 5 {
			continue
		}
		s := Switch{At: heard, Sentinel: addr, From: net.JoinHostPort(f[1], f[2]), To: net.JoinHostPort(f[3], f[4])}
		w.mu.Lock()
		w.switches = append(w.switches, s)
		w.mu.Unlock()
	}
}

// Failovers picks out of switches (in time order, from any sentinels) the
// ones that moved the master: the first report of each failover. A failover
// starts from the master the group had; a sentinel that learns of one later
// (from another's hello, once a cut heals or its box is back) reports a
// switch from the master it remembered instead: not another failover.
// Sentinel's hello carries only the latest configuration, so a late
// sentinel never reports an intermediate one. A failover may "move" the
// master to where it was (seen: a master demoted to a replica of itself was
// promoted again), which still counts.
func Failovers(switches []Switch) []Switch {
	var out []Switch
	current := ""
	for _, s := range switches {
		if current != "" && s.From != current {
			continue
		}
		out = append(out, s)
		current = s.To
	}
	return out
}
