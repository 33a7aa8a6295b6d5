package sentinel

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoMaster means a sentinel does not monitor the named group.
var ErrNoMaster = errors.New("sentinel knows no master")

// noMaster maps Sentinel's "unknown group" answers to ErrNoMaster:
// GET-MASTER-ADDR-BY-NAME answers nil, other commands "ERR No such master".
func noMaster(err error) error {
	if errors.Is(err, redis.Nil) || redis.HasErrorPrefix(err, "No such master") {
		return ErrNoMaster
	}
	return err
}

// MasterAddr asks one sentinel where the named group's master is.
func MasterAddr(ctx context.Context, sc *redis.SentinelClient, name string) (Addr, error) {
	v, err := sc.GetMasterAddrByName(ctx, name).Result()
	if err != nil {
		return Addr{}, fmt.Errorf("sentinel get-master-addr-by-name %s: %w", name, noMaster(err))
	}
	if len(v) != 2 {
		return Addr{}, fmt.Errorf("sentinel get-master-addr-by-name %s: reply %q", name, v)
	}
	port, err := strconv.Atoi(v[1])
	if err != nil {
		return Addr{}, fmt.Errorf("sentinel get-master-addr-by-name %s: port %q", name, v[1])
	}
	return Addr{Host: v[0], Port: port}, nil
}

// Answer is one sentinel's view of where the master is.
type Answer struct {
	Sentinel Addr
	Master   Addr
	Err      error
}

// AskAll asks every sentinel at once, each on a fresh connection, and returns
// one answer per sentinel in the order given. ctx bounds the whole round.
func AskAll(ctx context.Context, sentinels []Addr, password, name string) []Answer {
	answers := make([]Answer, len(sentinels))
	var wg sync.WaitGroup
	for i, s := range sentinels {
		wg.Go(func() {
			sc := NewSentinelClient(s, password)
			defer sc.Close()
			m, err := MasterAddr(ctx, sc, name)
			answers[i] = Answer{Sentinel: s, Master: m, Err: err}
		})
	}
	wg.Wait()
	return answers
}

// Agreed returns the master named by at least quorum answers. It refuses when
// two masters both reach quorum (possible only with quorum below a majority),
// since then there is nothing to agree on.
func Agreed(answers []Answer, quorum int) (Addr, bool) {
	quorum = max(quorum, 1)
	votes := make(map[Addr]int)
	for _, a := range answers {
		if a.Err == nil {
			votes[a.Master]++
		}
	}
	var won Addr
	n := 0
	for m, v := range votes {
		if v >= quorum {
			won = m
			n++
		}
	}
	if n != 1 {
		return Addr{}, false
	}
	return won, true
}

// Failover makes the sentinel fail the group over now, without waiting for
// the master to be seen down and without asking the other sentinels.
func Failover(ctx context.Context, sc *redis.SentinelClient, name string) error {
	if err := sc.Failover(ctx, name).Err(); err != nil {
		return fmt.Errorf("sentinel failover %s: %w", name, noMaster(err))
	}
	return nil
}

// CkQuorum checks that enough sentinels are reachable to reach quorum and
// to authorize a failover. The error carries Sentinel's explanation.
func CkQuorum(ctx context.Context, sc *redis.SentinelClient, name string) error {
	if err := sc.CkQuorum(ctx, name).Err(); err != nil {
		return fmt.Errorf("sentinel ckquorum %s: %w", name, noMaster(err))
	}
	return nil
}

// UsableSentinels returns how many sentinels (this one included) CKQUORUM
// counts as reachable, and whether they are enough to authorize a failover.
// Sentinel answers "OK 3 usable Sentinels. ..." or "NOQUORUM 1 usable ...".
func UsableSentinels(ctx context.Context, sc *redis.SentinelClient, name string) (int, bool, error) {
	text, err := sc.CkQuorum(ctx, name).Result()
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
func Set(ctx context.Context, sc *redis.SentinelClient, name string, kv ...string) error {
	if len(kv) == 0 || len(kv)%2 != 0 {
		return fmt.Errorf("sentinel set %s: want key value pairs, got %d arguments", name, len(kv))
	}
	args := []any{"sentinel", "set", name}
	for _, s := range kv {
		args = append(args, s)
	}
	// SentinelClient has no Do, and its typed Set takes a single pair.
	cmd := redis.NewStatusCmd(ctx, args...)
	if err := sc.Process(ctx, cmd); err != nil {
		return fmt.Errorf("sentinel set %s: %w", name, noMaster(err))
	}
	return nil
}

// MyID returns the sentinel's own id.
func MyID(ctx context.Context, sc *redis.SentinelClient) (string, error) {
	cmd := redis.NewStringCmd(ctx, "sentinel", "myid")
	if err := sc.Process(ctx, cmd); err != nil {
		return "", fmt.Errorf("sentinel myid: %w", err)
	}
	return cmd.Val(), nil
}

// Monitor starts monitoring a group at runtime. It is local to this sentinel,
// and Sentinel refuses a hostname unless resolve-hostnames is on.
func Monitor(ctx context.Context, sc *redis.SentinelClient, name string, master Addr, quorum int) error {
	err := sc.Monitor(ctx, name, master.Host, strconv.Itoa(master.Port), strconv.Itoa(quorum)).Err()
	if err != nil {
		return fmt.Errorf("sentinel monitor %s %s: %w", name, master, err)
	}
	return nil
}

// Remove stops monitoring a group and forgets its state.
func Remove(ctx context.Context, sc *redis.SentinelClient, name string) error {
	if err := sc.Remove(ctx, name).Err(); err != nil {
		return fmt.Errorf("sentinel remove %s: %w", name, noMaster(err))
	}
	return nil
}

// Debug sets Sentinel's internal timing parameters at runtime (SENTINEL
// DEBUG param value ..., Redis 7.0+), e.g. "ping-period" "250". Sentinel
// keeps them in memory only: apply them after every start.
func Debug(ctx context.Context, sc *redis.SentinelClient, kv ...string) error {
	if len(kv) == 0 || len(kv)%2 != 0 {
		return fmt.Errorf("sentinel debug: want parameter value pairs, got %d arguments", len(kv))
	}
	args := []any{"sentinel", "debug"}
	for _, s := range kv {
		args = append(args, s)
	}
	cmd := redis.NewStatusCmd(ctx, args...)
	if err := sc.Process(ctx, cmd); err != nil {
		return fmt.Errorf("sentinel debug %s: %w", strings.Join(kv, " "), err)
	}
	return nil
}

// ReplicaView is one replica as a sentinel sees it (SENTINEL REPLICAS).
type ReplicaView struct {
	Addr     Addr
	Priority int           // replica-priority from its last INFO
	InfoAge  time.Duration // since the sentinel's last INFO reply from it
}

// Replicas returns the replicas of the group as the sentinel sees them.
func Replicas(ctx context.Context, sc *redis.SentinelClient, name string) ([]ReplicaView, error) {
	reps, err := sc.Replicas(ctx, name).Result()
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
		out = append(out, ReplicaView{Addr: Addr{Host: r["ip"], Port: port}, Priority: prio,
			InfoAge: time.Duration(age) * time.Millisecond})
	}
	return out, nil
}
