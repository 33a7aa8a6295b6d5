package sentinel

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// options bounds every call: the agent probes servers that may be dead, and
// go-redis's defaults (5 s dials, 5 dial attempts, 3 retries) turn one probe
// of a dead host into tens of seconds. Callers still pass a deadline ctx.
//
// RESP2 because every reply parsed here (ROLE, INFO, SENTINEL ...) is a flat
// array or bulk string in RESP2, while RESP3 turns some into maps and
// verbatim strings; nothing here needs RESP3 features.
func options(addr Addr, password string) *redis.Options {
	return &redis.Options{
		Addr:                  addr.String(),
		Password:              password,
		Protocol:              2,
		DialTimeout:           500 * time.Millisecond,
		DialerRetries:         1,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		MaxRetries:            -1,
		PoolSize:              2,
		ContextTimeoutEnabled: true,
		// Skips CLIENT SETINFO: one round trip less per connection, and no
		// error noise from servers that refuse it.
		DisableIdentity: true,
	}
}

// NewRedisClient returns a client for one redis-server with bounded timeouts
// and no retries. The caller closes it.
func NewRedisClient(addr Addr, password string) *redis.Client {
	return redis.NewClient(options(addr, password))
}

// NewSentinelClient returns a client for one sentinel with bounded timeouts
// and no retries. The caller closes it.
func NewSentinelClient(addr Addr, password string) *redis.SentinelClient {
	return redis.NewSentinelClient(options(addr, password))
}

// Role is a server's answer to ROLE.
type Role struct {
	Kind     string    // "master" | "slave" | "sentinel" (as ROLE says)
	Offset   int64     // master_repl_offset (master) / processed offset (replica; -1 before the first sync)
	Master   Addr      // replica: its master
	Link     string    // replica: "connect" | "connecting" | "sync" | "connected" | "handshake"
	Replicas []Replica // master: connected replicas
}

// Replica is one replica as its master reports it.
type Replica struct {
	Addr   Addr
	Offset int64
}

// ProbeRole asks a server for its role. ROLE is answered even while the
// server loads its dataset.
func ProbeRole(ctx context.Context, c *redis.Client) (Role, error) {
	v, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return Role{}, fmt.Errorf("role: %w", err)
	}
	r, err := parseRole(v)
	if err != nil {
		return Role{}, fmt.Errorf("role: %w", err)
	}
	return r, nil
}

func parseRole(v []any) (Role, error) {
	if len(v) == 0 {
		return Role{}, fmt.Errorf("empty reply")
	}
	kind, ok := v[0].(string)
	if !ok {
		return Role{}, fmt.Errorf("kind is %T", v[0])
	}
	r := Role{Kind: kind}
	switch kind {
	case "master":
		// ["master", offset, [[ip, port, offset], ...]]
		if len(v) != 3 {
			return Role{}, fmt.Errorf("master: %d elements", len(v))
		}
		off, err := toInt(v[1])
		if err != nil {
			return Role{}, fmt.Errorf("master offset: %w", err)
		}
		r.Offset = off
		list, ok := v[2].([]any)
		if !ok {
			return Role{}, fmt.Errorf("master replicas is %T", v[2])
		}
		for _, e := range list {
			f, ok := e.([]any)
			if !ok || len(f) != 3 {
				return Role{}, fmt.Errorf("master replica entry %v", e)
			}
			host, _ := f[0].(string)
			port, err1 := toInt(f[1])
			off, err2 := toInt(f[2])
			if host == "" || err1 != nil || err2 != nil {
				return Role{}, fmt.Errorf("master replica entry %v", e)
			}
			r.Replicas = append(r.Replicas, Replica{Addr: Addr{Host: host, Port: int(port)}, Offset: off})
		}
	case "slave":
		// ["slave", host, port, state, offset]
		if len(v) != 5 {
			return Role{}, fmt.Errorf("slave: %d elements", len(v))
		}
		host, _ := v[1].(string)
		port, err1 := toInt(v[2])
		link, _ := v[3].(string)
		off, err2 := toInt(v[4])
		if err1 != nil || err2 != nil {
			return Role{}, fmt.Errorf("slave reply %v", v)
		}
		r.Master = Addr{Host: host, Port: int(port)}
		r.Link = link
		r.Offset = off
	}
	return r, nil
}

// toInt accepts both shapes ROLE uses: integers, and numbers sent as strings
// (the replica entries of a master).
func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case string:
		return strconv.ParseInt(x, 10, 64)
	}
	return 0, fmt.Errorf("not a number: %T", v)
}

// Loading reports whether the server is still loading its dataset (AOF or
// RDB) into memory. A loading server answers most commands with -LOADING;
// that answer counts as loading too.
func Loading(ctx context.Context, c *redis.Client) (bool, error) {
	info, err := c.Info(ctx, "persistence").Result()
	if redis.IsLoadingError(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("info persistence: %w", err)
	}
	for l := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "loading:"); ok {
			return v == "1", nil
		}
	}
	return false, fmt.Errorf("info persistence: no loading field")
}
