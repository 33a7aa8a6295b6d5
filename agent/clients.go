package agent

import (
	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
)

// localClients keeps one connection pool to the local redis and one to the
// local sentinel, rebuilt only when the address or password changes: probing
// every second must not dial every second.
type localClients struct {
	redisKey, sentKey, masterKey string
	redis, master                *redis.Client // master: the one this replica follows
	sent                         *redis.SentinelClient
}

func (n *node) localRedis(cfg *Config) *redis.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	key := selfAddr(cfg).String() + "\x00" + cfg.Password
	if n.clients.redis == nil || n.clients.redisKey != key {
		if n.clients.redis != nil {
			n.clients.redis.Close()
		}
		n.clients.redis = sentinel.NewRedisClient(selfAddr(cfg), cfg.Password)
		n.clients.redisKey = key
	}
	return n.clients.redis
}

func (n *node) localSentinelClient(cfg *Config) *redis.SentinelClient {
	n.mu.Lock()
	defer n.mu.Unlock()
	key := localSentinel(cfg).String() + "\x00" + cfg.Password
	if n.clients.sent == nil || n.clients.sentKey != key {
		if n.clients.sent != nil {
			n.clients.sent.Close()
		}
		n.clients.sent = sentinel.NewSentinelClient(localSentinel(cfg), cfg.Password)
		n.clients.sentKey = key
	}
	return n.clients.sent
}

// masterClient is a client of the master this replica follows, kept while
// it stays the same.
func (n *node) masterClient(cfg *Config, m sentinel.Addr) *redis.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	key := m.String() + "\x00" + cfg.Password
	if n.clients.master == nil || n.clients.masterKey != key {
		if n.clients.master != nil {
			n.clients.master.Close()
		}
		n.clients.master = sentinel.NewRedisClient(m, cfg.Password)
		n.clients.masterKey = key
	}
	return n.clients.master
}

func (n *node) closeClients() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.clients.redis != nil {
		n.clients.redis.Close()
	}
	if n.clients.sent != nil {
		n.clients.sent.Close()
	}
	if n.clients.master != nil {
		n.clients.master.Close()
	}
	n.clients = localClients{}
}
