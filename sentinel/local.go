package sentinel

import (
	"context"
	"sync"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Local is this box's redis and sentinel, and the master its redis follows:
// one connection pool each, kept while their address and the credentials
// stay the same, because probing every second must not dial every second. Safe
// for concurrent use.
type Local struct {
	mu         sync.Mutex
	redisAddr  wire.Addr
	sentAddr   wire.Addr
	creds      Creds
	redis      *Redis
	sentinel   *Sentinel
	master     *Redis
	masterAddr wire.Addr
}

// Use points l at this box's redis and sentinel; connections to an address
// or with credentials that changed are closed and dialled afresh on next use.
func (l *Local) Use(redisAddr, sentinelAddr wire.Addr, cr Creds) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cr != l.creds || redisAddr != l.redisAddr {
		closeRedis(&l.redis)
	}
	if cr != l.creds || sentinelAddr != l.sentAddr {
		if l.sentinel != nil {
			l.sentinel.Close()
			l.sentinel = nil
		}
	}
	if cr != l.creds {
		closeRedis(&l.master)
	}
	l.redisAddr, l.sentAddr, l.creds = redisAddr, sentinelAddr, cr
}

// Redis is this box's redis-server.
func (l *Local) Redis() *Redis {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.redis == nil {
		l.redis = NewRedis(l.redisAddr, l.creds)
	}
	return l.redis
}

// Sentinel is this box's sentinel.
func (l *Local) Sentinel() *Sentinel {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sentinel == nil {
		l.sentinel = NewSentinel(l.sentAddr, l.creds)
	}
	return l.sentinel
}

// Master is the redis-server at m, kept while this box follows it.
func (l *Local) Master(m wire.Addr) *Redis {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.master == nil || l.masterAddr != m {
		closeRedis(&l.master)
		l.master, l.masterAddr = NewRedis(m, l.creds), m
	}
	return l.master
}

// Lag is how far this replica (its role r) is behind the master it
// follows, asked of that master (a replica cannot know the master's offset
// itself). It is -1, unknown, when the master does not answer: a replica cut
// off from its master keeps its link "connected" until repl-timeout while it
// falls behind, and a lag of 0 would vouch for it.
func (l *Local) Lag(ctx context.Context, r wire.Role) int64 {
	if r.Kind != "slave" || r.Link != "connected" {
		return 0
	}
	m, err := l.Master(r.Master).Role(ctx)
	if err != nil || m.Kind != "master" {
		return -1
	}
	return max(m.Offset-r.Offset, 0)
}

// Close closes every connection.
func (l *Local) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	closeRedis(&l.redis)
	closeRedis(&l.master)
	if l.sentinel != nil {
		l.sentinel.Close()
		l.sentinel = nil
	}
}

func closeRedis(r **Redis) {
	if *r != nil {
		(*r).Close()
		*r = nil
	}
}
