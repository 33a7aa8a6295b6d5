package sentinel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// options bounds every call: the agent probes servers that may be dead, and
// go-redis's defaults (5 s dials, 5 dial attempts, 3 retries) turn one probe
// of a dead host into tens of seconds. Callers still pass a deadline ctx.
//
// RESP2 because every reply parsed here (ROLE, INFO, SENTINEL ...) is a flat
// array or bulk string in RESP2, while RESP3 turns some into maps and
// verbatim strings; nothing here needs RESP3 features.
func options(addr wire.Addr, cr Creds) *redis.Options {
	return &redis.Options{
		Addr:                  addr.String(),
		Username:              cr.User,
		Password:              cr.Password,
		TLSConfig:             cr.TLS,
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

// Creds are how the agent reaches a redis or a sentinel: as whom, and
// whether over TLS. Comparable: a change closes the connections made with
// the old ones.
type Creds struct {
	User     string      // "" = the default user
	Password string      // never logged
	TLS      *tls.Config // nil = plain text; ServerName is set per dial
}

// QuietClientLogs stops go-redis logging reconnect noise to stderr on its
// own: every call here reports its errors to its caller.
func QuietClientLogs() { logging.Disable() }

// Redis is one redis-server, reached over the network with bounded timeouts
// and no retries: a small connection pool, dialled on first use.
type Redis struct {
	c *redis.Client
}

// NewRedis returns a handle of the redis-server at addr. The caller closes it.
func NewRedis(addr wire.Addr, cr Creds) *Redis {
	return &Redis{c: redis.NewClient(options(addr, cr))}
}

// Close closes the connections.
func (r *Redis) Close() error { return r.c.Close() }

// Role asks the server for its role. ROLE is answered even while the server
// loads its dataset.
func (r *Redis) Role(ctx context.Context) (wire.Role, error) {
	v, err := r.c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return wire.Role{}, fmt.Errorf("role: %w", err)
	}
	role, err := parseRole(v)
	if err != nil {
		return wire.Role{}, fmt.Errorf("role: %w", err)
	}
	return role, nil
}

// Loading reports whether the server is still loading its dataset (AOF or
// RDB) into memory. A loading server answers most commands with -LOADING;
// that answer counts as loading too.
func (r *Redis) Loading(ctx context.Context) (bool, error) {
	info, err := r.c.Info(ctx, "persistence").Result()
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
	return false, errors.New("info persistence: no loading field")
}

// Keys counts the keys of every database (INFO keyspace).
func (r *Redis) Keys(ctx context.Context) (int64, error) {
	info, err := r.c.Info(ctx, "keyspace").Result()
	if err != nil {
		return 0, fmt.Errorf("info keyspace: %w", err)
	}
	var n int64
	for l := range strings.Lines(info) {
		// db0:keys=10000,expires=0,avg_ttl=0
		_, rest, ok := strings.Cut(strings.TrimSpace(l), ":keys=")
		if !ok || !strings.HasPrefix(strings.TrimSpace(l), "db") {
			continue
		}
		k, _, _ := strings.Cut(rest, ",")
		v, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("info keyspace: %q", l)
		}
		n += v
	}
	return n, nil
}

// Links lists the replicas a master reports (INFO replication) with their
// lag.
func (r *Redis) Links(ctx context.Context) ([]wire.Link, error) {
	info, err := r.c.Info(ctx, "replication").Result()
	if err != nil {
		return nil, fmt.Errorf("info replication: %w", err)
	}
	var out []wire.Link
	for k, v := range infoFields(info) {
		if !strings.HasPrefix(k, "slave") {
			continue
		}
		// slave0:ip=10.0.0.2,port=6379,state=online,offset=123,lag=0
		f := map[string]string{}
		for kv := range strings.SplitSeq(v, ",") {
			if a, b, ok := strings.Cut(kv, "="); ok {
				f[a] = b
			}
		}
		port, err1 := strconv.Atoi(f["port"])
		lag, err2 := strconv.Atoi(f["lag"])
		if f["ip"] == "" || err1 != nil || err2 != nil {
			continue // slave_read_repl_offset and the like
		}
		out = append(out, wire.Link{Addr: wire.Addr{Host: f["ip"], Port: port}, Lag: lag})
	}
	return out, nil
}

// DropReplicas closes the replication links of the replicas connected from
// host (CLIENT LIST TYPE replica, CLIENT KILL ID): a master otherwise keeps
// listing a replica gone without a word until repl-timeout. It returns how
// many it closed. A replica still running connects again at once.
func (r *Redis) DropReplicas(ctx context.Context, host string) (int, error) {
	list, err := r.c.Do(ctx, "CLIENT", "LIST", "TYPE", "replica").Text()
	if err != nil {
		return 0, fmt.Errorf("client list: %w", err)
	}
	n := 0
	for l := range strings.Lines(list) {
		var id, addr string
		for f := range strings.FieldsSeq(l) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			} else if v, ok := strings.CutPrefix(f, "addr="); ok {
				addr = v
			}
		}
		if h, _, ok := splitHostPortLoose(addr); !ok || h != host {
			continue
		}
		if err := r.c.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
			return n, fmt.Errorf("client kill %s: %w", id, err)
		}
		n++
	}
	return n, nil
}

// splitHostPortLoose splits CLIENT LIST's addr (host:port, the host an
// IPv6 address without brackets).
func splitHostPortLoose(addr string) (string, string, bool) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", false
	}
	return addr[:i], addr[i+1:], true
}

// Ping checks that the server answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// Set changes one setting at runtime (CONFIG SET).
func (r *Redis) Set(ctx context.Context, key, value string) error {
	if err := r.c.ConfigSet(ctx, key, value).Err(); err != nil {
		return fmt.Errorf("config set %s: %w", key, err)
	}
	return nil
}

// Get reads one setting (CONFIG GET).
func (r *Redis) Get(ctx context.Context, key string) (string, error) {
	kv, err := r.c.ConfigGet(ctx, key).Result()
	if err != nil {
		return "", fmt.Errorf("config get %s: %w", key, err)
	}
	v, ok := kv[key]
	if !ok {
		return "", fmt.Errorf("config get %s: no such setting", key)
	}
	return v, nil
}

// ReplicaOf makes the server a replica of master (REPLICAOF).
func (r *Redis) ReplicaOf(ctx context.Context, master wire.Addr) error {
	if err := r.c.ReplicaOf(ctx, master.Host, strconv.Itoa(master.Port)).Err(); err != nil {
		return fmt.Errorf("replicaof %s: %w", master, err)
	}
	return nil
}

// Rebind makes the server listen on addrs (bind), which redis applies at
// once: an address that appears later is not picked up by itself.
func (r *Redis) Rebind(ctx context.Context, addrs []string) error {
	return r.Set(ctx, "bind", strings.Join(addrs, " "))
}

// PauseWrites holds every write for up to d (CLIENT PAUSE ... WRITE); reads
// go on. Redis lifts the pause by itself after d.
func (r *Redis) PauseWrites(ctx context.Context, d time.Duration) error {
	if err := r.c.Do(ctx, "CLIENT", "PAUSE", d.Milliseconds(), "WRITE").Err(); err != nil {
		return fmt.Errorf("client pause: %w", err)
	}
	return nil
}

// Unpause lifts PauseWrites.
func (r *Redis) Unpause(ctx context.Context) error {
	if err := r.c.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		return fmt.Errorf("client unpause: %w", err)
	}
	return nil
}

// HoldPriority sets replica-priority 0 (never promoted) and returns the
// priority to put back.
func (r *Redis) HoldPriority(ctx context.Context) (string, error) {
	prio, err := r.Get(ctx, "replica-priority")
	if err != nil {
		return "", err
	}
	return prio, r.Set(ctx, "replica-priority", "0")
}

// Shutdown asks the server to persist its data and exit (SHUTDOWN). The
// connection drops without a reply when it works, so there is nothing to
// report; Ping tells when it is gone.
func (r *Redis) Shutdown(ctx context.Context) {
	_ = r.c.Shutdown(ctx).Err()
}

func parseRole(v []any) (wire.Role, error) {
	if len(v) == 0 {
		return wire.Role{}, errors.New("empty reply")
	}
	kind, ok := v[0].(string)
	if !ok {
		return wire.Role{}, fmt.Errorf("kind is %T", v[0])
	}
	r := wire.Role{Kind: kind}
	switch kind {
	case "master":
		// ["master", offset, [[ip, port, offset], ...]]
		if len(v) != 3 {
			return wire.Role{}, fmt.Errorf("master: %d elements", len(v))
		}
		off, err := toInt(v[1])
		if err != nil {
			return wire.Role{}, fmt.Errorf("master offset: %w", err)
		}
		r.Offset = off
		list, ok := v[2].([]any)
		if !ok {
			return wire.Role{}, fmt.Errorf("master replicas is %T", v[2])
		}
		for _, e := range list {
			f, ok := e.([]any)
			if !ok || len(f) != 3 {
				return wire.Role{}, fmt.Errorf("master replica entry %v", e)
			}
			host, _ := f[0].(string)
			port, err1 := toInt(f[1])
			off, err2 := toInt(f[2])
			if host == "" || err1 != nil || err2 != nil {
				return wire.Role{}, fmt.Errorf("master replica entry %v", e)
			}
			r.Replicas = append(r.Replicas, wire.Replica{Addr: wire.Addr{Host: host, Port: int(port)}, Offset: off})
		}
	case "slave":
		// ["slave", host, port, state, offset]
		if len(v) != 5 {
			return wire.Role{}, fmt.Errorf("slave: %d elements", len(v))
		}
		host, _ := v[1].(string)
		port, err1 := toInt(v[2])
		link, _ := v[3].(string)
		off, err2 := toInt(v[4])
		if err1 != nil || err2 != nil {
			return wire.Role{}, fmt.Errorf("slave reply %v", v)
		}
		r.Master = wire.Addr{Host: host, Port: int(port)}
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

func infoFields(info string) map[string]string {
	m := map[string]string{}
	for l := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
			m[k] = v
		}
	}
	return m
}
