package sentinel

import (
	"sync"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Pool keeps one Redis handle per address, for the agent that speaks to
// many servers every second (cluster mode: every instance of every box):
// dialling each afresh every second would cost a TCP (and TLS) handshake
// per probe. Safe for concurrent use.
type Pool struct {
	mu    sync.Mutex
	creds Creds
	conns map[wire.Addr]*Redis
}

// Use sets the credentials; handles made with others are closed.
func (p *Pool) Use(cr Creds) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cr == p.creds && p.conns != nil {
		return
	}
	p.closeLocked()
	p.creds, p.conns = cr, map[wire.Addr]*Redis{}
}

// Get is the redis-server at a.
func (p *Pool) Get(a wire.Addr) *Redis {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = map[wire.Addr]*Redis{}
	}
	r, ok := p.conns[a]
	if !ok {
		r = NewRedis(a, p.creds)
		p.conns[a] = r
	}
	return r
}

// Close closes every handle.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeLocked()
}

func (p *Pool) closeLocked() {
	for _, r := range p.conns {
		r.Close()
	}
	p.conns = nil
}
