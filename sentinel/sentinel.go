package sentinel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// ErrInProgress means a sentinel refused a failover because one is running.
var ErrInProgress = errors.New("a failover is in progress")

// noMaster maps Sentinel's "unknown group" answers to wire.ErrNoMaster:
// GET-MASTER-ADDR-BY-NAME answers nil, other commands "ERR No such master".
func noMaster(err error) error {
	if errors.Is(err, redis.Nil) || redis.HasErrorPrefix(err, "No such master") {
		return wire.ErrNoMaster
	}
	return err
}

// Sentinel is one sentinel, reached over the network with bounded timeouts
// and no retries.
type Sentinel struct {
	c *redis.SentinelClient
}

// NewSentinel returns a handle of the sentinel at addr. The caller closes it.
func NewSentinel(addr wire.Addr, cr Creds) *Sentinel {
	return &Sentinel{c: redis.NewSentinelClient(options(addr, cr))}
}

// Close closes the connections.
func (s *Sentinel) Close() error { return s.c.Close() }

// MasterAddr asks where the named group's master is.
func (s *Sentinel) MasterAddr(ctx context.Context, name string) (wire.Addr, error) {
	v, err := s.c.GetMasterAddrByName(ctx, name).Result()
	if err != nil {
		return wire.Addr{}, fmt.Errorf("sentinel get-master-addr-by-name %s: %w", name, noMaster(err))
	}
	if len(v) != 2 {
		return wire.Addr{}, fmt.Errorf("sentinel get-master-addr-by-name %s: reply %q", name, v)
	}
	port, err := strconv.Atoi(v[1])
	if err != nil {
		return wire.Addr{}, fmt.Errorf("sentinel get-master-addr-by-name %s: port %q", name, v[1])
	}
	return wire.Addr{Host: v[0], Port: port}, nil
}

// Failover makes the sentinel fail the group over now, without waiting for
// the master to be seen down and without asking the other sentinels. A
// failover already running is ErrInProgress.
func (s *Sentinel) Failover(ctx context.Context, name string) error {
	if err := s.c.Failover(ctx, name).Err(); err != nil {
		if strings.Contains(err.Error(), "INPROG") {
			err = ErrInProgress
		}
		return fmt.Errorf("sentinel failover %s: %w", name, noMaster(err))
	}
	return nil
}

// Usable returns how many sentinels (this one included) CKQUORUM counts as
// reachable, and whether they are enough to authorize a failover.
// Sentinel answers "OK 3 usable Sentinels. ..." or "NOQUORUM 1 usable ...".
func (s *Sentinel) Usable(ctx context.Context, name string) (int, bool, error) {
	text, err := s.c.CkQuorum(ctx, name).Result()
	ok := err == nil
	if err != nil {
		text = err.Error()
		if !strings.HasPrefix(text, "NOQUORUM") {
			return 0, false, fmt.Errorf("sentinel ckquorum %s: %w", name, noMaster(err))
		}
	}
	f := strings.Fields(text)
	if len(f) < 2 {
		return 0, false, fmt.Errorf("sentinel ckquorum %s: unexpected answer %q", name, text)
	}
	n, perr := strconv.Atoi(f[1])
	if perr != nil {
		return 0, false, fmt.Errorf("sentinel ckquorum %s: unexpected answer %q", name, text)
	}
	return n, ok, nil
}

// Set changes options of a monitored group: SENTINEL SET name k v [k v ...].
// The setting is local to this sentinel; apply it to each one.
func (s *Sentinel) Set(ctx context.Context, name string, kv ...string) error {
	if len(kv) == 0 || len(kv)%2 != 0 {
		return fmt.Errorf("sentinel set %s: want key value pairs, got %d arguments", name, len(kv))
	}
	args := []any{"sentinel", "set", name}
	for _, v := range kv {
		args = append(args, v)
	}
	// SentinelClient has no Do, and its typed Set takes a single pair.
	cmd := redis.NewStatusCmd(ctx, args...)
	if err := s.c.Process(ctx, cmd); err != nil {
		return fmt.Errorf("sentinel set %s: %w", name, noMaster(err))
	}
	return nil
}

// Debug sets Sentinel's internal timing parameters at runtime (SENTINEL
// DEBUG param value ..., Redis 7.0+), e.g. "ping-period" "250". Sentinel
// keeps them in memory only: apply them after every start.
func (s *Sentinel) Debug(ctx context.Context, kv ...string) error {
	if len(kv) == 0 || len(kv)%2 != 0 {
		return fmt.Errorf("sentinel debug: want parameter value pairs, got %d arguments", len(kv))
	}
	args := []any{"sentinel", "debug"}
	for _, v := range kv {
		args = append(args, v)
	}
	cmd := redis.NewStatusCmd(ctx, args...)
	if err := s.c.Process(ctx, cmd); err != nil {
		return fmt.Errorf("sentinel debug %s: %w", strings.Join(kv, " "), err)
	}
	return nil
}

// State reads what the sentinel says of the group's election: its run id
// (SENTINEL MYID), the master and its flags (SENTINEL MASTER), and the other
// sentinels it knows with theirs (SENTINEL SENTINELS).
func (s *Sentinel) State(ctx context.Context, name string) (wire.SentinelState, error) {
	var st wire.SentinelState
	id := redis.NewStringCmd(ctx, "sentinel", "myid")
	if err := s.c.Process(ctx, id); err != nil {
		return st, fmt.Errorf("sentinel myid: %w", err)
	}
	st.MyID = id.Val()
	m, err := s.c.Master(ctx, name).Result()
	if err != nil {
		return st, fmt.Errorf("sentinel master %s: %w", name, noMaster(err))
	}
	port, _ := strconv.Atoi(m["port"])
	st.Master = wire.Addr{Host: m["ip"], Port: port}
	flags := strings.Split(m["flags"], ",")
	st.ODown = slices.Contains(flags, "o_down")
	st.InProgress = slices.Contains(flags, "failover_in_progress")
	peers, err := s.c.Sentinels(ctx, name).Result()
	if err != nil {
		return st, fmt.Errorf("sentinel sentinels %s: %w", name, noMaster(err))
	}
	for _, p := range peers {
		st.Peers = append(st.Peers, peerState(p))
	}
	return st, nil
}

// peerState reads one entry of SENTINEL SENTINELS or SENTINEL REPLICAS.
func peerState(p map[string]string) wire.PeerState {
	port, _ := strconv.Atoi(p["port"])
	f := strings.Split(p["flags"], ",")
	down := slices.Contains(f, "s_down") || slices.Contains(f, "o_down") || slices.Contains(f, "disconnected")
	return wire.PeerState{Addr: wire.Addr{Host: p["ip"], Port: port}, RunID: p["runid"], Down: down}
}

// Known is State with the replicas the sentinel knows (SENTINEL REPLICAS):
// everything it remembers of the group, for telling removed boxes from the
// configured ones.
func (s *Sentinel) Known(ctx context.Context, name string) (wire.SentinelState, error) {
	st, err := s.State(ctx, name)
	if err != nil {
		return st, err
	}
	reps, err := s.c.Replicas(ctx, name).Result()
	if err != nil {
		return st, fmt.Errorf("sentinel replicas %s: %w", name, noMaster(err))
	}
	for _, r := range reps {
		st.Replicas = append(st.Replicas, peerState(r))
	}
	return st, nil
}

// Reset makes the sentinel forget the group's replicas and other sentinels
// and learn them again (SENTINEL RESET): the replicas from the master's
// INFO, the sentinels from their hello messages. What is gone for good is
// not learnt again. The name is matched as a glob, and group names hold no
// glob characters (config validation).
func (s *Sentinel) Reset(ctx context.Context, name string) error {
	n, err := s.c.Reset(ctx, name).Result()
	if err != nil {
		return fmt.Errorf("sentinel reset %s: %w", name, err)
	}
	if n != 1 {
		return fmt.Errorf("sentinel reset %s: %d groups reset, want 1", name, n)
	}
	return nil
}

// ReplicaView is one replica as a sentinel sees it (SENTINEL REPLICAS).
type ReplicaView struct {
	Addr     wire.Addr
	Priority int           // replica-priority from its last INFO
	InfoAge  time.Duration // since the sentinel's last INFO reply from it
}

// Replicas returns the replicas of the group as the sentinel sees them.
func (s *Sentinel) Replicas(ctx context.Context, name string) ([]ReplicaView, error) {
	reps, err := s.c.Replicas(ctx, name).Result()
	if err != nil {
		return nil, fmt.Errorf("sentinel replicas %s: %w", name, noMaster(err))
	}
	out := make([]ReplicaView, 0, len(reps))
	for _, r := range reps {
		port, err1 := strconv.Atoi(r["port"])
		prio, err2 := strconv.Atoi(r["slave-priority"])
		age, err3 := strconv.ParseInt(r["info-refresh"], 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("sentinel replicas %s: %s:%s: %w", name, r["ip"], r["port"], err)
		}
		out = append(out, ReplicaView{Addr: wire.Addr{Host: r["ip"], Port: port}, Priority: prio,
			InfoAge: time.Duration(age) * time.Millisecond})
	}
	return out, nil
}
