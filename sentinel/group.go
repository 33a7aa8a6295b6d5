package sentinel

import (
	"context"
	"slices"
	"sync"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Group is what it takes to speak to a group's sentinels: the name they
// monitor it by, how to authenticate, and every box's sentinel.
type Group struct {
	Name      string
	Creds     Creds
	Sentinels []wire.Addr
}

// Equal reports whether g and o reach the same sentinels the same way.
func (g Group) Equal(o Group) bool {
	return g.Name == o.Name && g.Creds == o.Creds && slices.Equal(g.Sentinels, o.Sentinels)
}

// Sentinel returns a handle of the group's sentinel at a. The caller closes it.
func (g Group) Sentinel(a wire.Addr) *Sentinel { return NewSentinel(a, g.Creds) }

// AskAll asks every sentinel at once, each on a fresh connection, and
// returns one answer per sentinel in the group's order. ctx bounds the whole
// round.
func (g Group) AskAll(ctx context.Context) []wire.Answer {
	answers := make([]wire.Answer, len(g.Sentinels))
	var wg sync.WaitGroup
	for i, s := range g.Sentinels {
		wg.Go(func() {
			sc := g.Sentinel(s)
			defer sc.Close()
			m, err := sc.MasterAddr(ctx, g.Name)
			answers[i] = wire.Answer{Sentinel: s, Master: m, Err: err}
		})
	}
	wg.Wait()
	return answers
}
