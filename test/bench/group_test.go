package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
	"github.com/redis-ha-agent/redis-ha-agent/test/faultcheck"
)

// The two setups the bench compares.
const (
	ours     = "ours"
	tutorial = "tutorial"
)

const agentUnit = "redis-ha-agent.service"

// group is one Sentinel-managed group of boxes, either setup, as the client
// namespace sees it.
type group struct {
	setup  string // ours or tutorial
	b      *box.Bench
	boxes  []*box.Box
	target faultcheck.Target
	// sentinels and servers reach each box's sentinel and redis from the
	// client namespace, by box name.
	sentinels map[string]*redis.SentinelClient
	servers   map[string]*redis.Client
	logf      func(format string, args ...any) // the test's log
	// lastElection is when the sentinels last elected a new master on
	// their own (see electionPause).
	lastElection time.Time
}

func newGroup(t *testing.T, setup string, b *box.Bench, boxes []*box.Box) *group {
	dial := b.ClientDial
	g := &group{
		setup: setup, b: b, boxes: boxes, logf: t.Logf,
		target:    faultcheck.Target{MasterName: masterSet, Password: password, Dialer: dial},
		sentinels: map[string]*redis.SentinelClient{},
		servers:   map[string]*redis.Client{},
	}
	for _, bx := range boxes {
		g.target.Sentinels = append(g.target.Sentinels, bx.Addr+":26379")
		g.target.Redis = append(g.target.Redis, bx.Addr+":6379")
		opts := func(addr string) *redis.Options {
			return &redis.Options{Addr: addr, Password: password, Dialer: dial,
				MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second}
		}
		sc := redis.NewSentinelClient(opts(bx.Addr + ":26379"))
		rc := redis.NewClient(opts(bx.Addr + ":6379"))
		t.Cleanup(func() { sc.Close(); rc.Close() })
		g.sentinels[bx.Name], g.servers[bx.Name] = sc, rc
	}
	return g
}

// install sets the group up: the user's story for ours, the tutorial for
// the baseline; the first box first (bootstrap primary, first master), then
// the others at once.
func (g *group) install(ctx context.Context) error {
	script, err := os.ReadFile("testdata/" + g.setup + map[string]string{ours: "/story.sh", tutorial: "/setup.sh"}[g.setup])
	if err != nil {
		return err
	}
	var peers []string
	for _, bx := range g.boxes {
		peers = append(peers, strconv.Quote(bx.Addr))
	}
	first := g.boxes[0].Addr
	run := func(bx *box.Box) error {
		env := []string{"ADDR=" + bx.Addr, "MASTER=" + first, "PASSWORD=" + password,
			"PEERS=" + strings.Join(peers, ", "), "BOOTSTRAP=" + first}
		out, errOut, err := bx.ExecInput(ctx, script, env, "sh", "-eu")
		if err != nil {
			return fmt.Errorf("box %s: %s setup: %w\n%s%s", bx.Name, g.setup, err, tail(out, 10), tail(errOut, 10))
		}
		return nil
	}
	if err := run(g.boxes[0]); err != nil {
		return err
	}
	return inParallel(g.boxes[1:], run)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n") + "\n"
}

// settled waits until the group is what PRODUCT.md promises after a fault,
// by the same measure for both setups: every sentinel up and naming one
// master (other than not, when given), which the fault checker finds
// converged (a master, every other box its replica in sync), and every
// sentinel knowing every replica and every other sentinel, so that the next
// fault meets sentinels able to fail over. For ours, every agent's unit is
// active too. It returns the master's redis address.
func (g *group) settled(ctx context.Context, not string, timeout time.Duration) (string, error) {
	var master string
	err := eventually(ctx, timeout, func(ctx context.Context) error {
		m, err := g.named(ctx)
		if err != nil {
			return err
		}
		if m == not {
			return fmt.Errorf("sentinels still name %s", m)
		}
		if g.setup == ours {
			for _, bx := range g.boxes {
				if a := unitState(ctx, bx, agentUnit); a != "active" {
					return fmt.Errorf("box %s: agent %s", bx.Name, a)
				}
			}
		}
		rep, err := faultcheck.Check(ctx, g.target, &faultcheck.WriteLog{}, 0)
		if err != nil {
			return err
		}
		if !rep.Converged || rep.Master != m {
			return fmt.Errorf("checker: %s", rep.ConvergeDetail)
		}
		host, port, _ := strings.Cut(m, ":")
		for _, bx := range g.boxes {
			if err := g.sentinelKnows(ctx, bx.Name, host, port); err != nil {
				return fmt.Errorf("sentinel on %s: %w", bx.Name, err)
			}
		}
		master = m
		return nil
	})
	return master, err
}

// named is the master every sentinel of the group names; an error unless
// all answer and agree.
func (g *group) named(ctx context.Context) (string, error) {
	return g.namedBy(ctx, g.boxes)
}

func (g *group) namedBy(ctx context.Context, boxes []*box.Box) (string, error) {
	var named []string
	for _, bx := range boxes {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		hp, err := g.sentinels[bx.Name].GetMasterAddrByName(cctx, masterSet).Result()
		cancel()
		if err != nil {
			return "", fmt.Errorf("sentinel on %s: %w", bx.Name, err)
		}
		named = append(named, strings.Join(hp, ":"))
	}
	for _, n := range named[1:] {
		if n != named[0] {
			return "", fmt.Errorf("sentinels name %v", named)
		}
	}
	return named[0], nil
}

// sentinelKnows checks that a sentinel sees host:port up as the master, and
// every other box as a replica with its link up and every other sentinel.
func (g *group) sentinelKnows(ctx context.Context, name, host, port string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	sc := g.sentinels[name]
	m, err := sc.Master(ctx, masterSet).Result()
	if err != nil {
		return err
	}
	if m["ip"] != host || m["port"] != port || m["flags"] != "master" {
		return fmt.Errorf("master %s:%s flags %s", m["ip"], m["port"], m["flags"])
	}
	reps, err := sc.Replicas(ctx, masterSet).Result()
	if err != nil {
		return err
	}
	good := 0
	for _, r := range reps {
		if r["flags"] == "slave" && r["master-link-status"] == "ok" {
			good++
		}
	}
	sens, err := sc.Sentinels(ctx, masterSet).Result()
	if err != nil {
		return err
	}
	n := len(g.boxes)
	if good != n-1 || len(sens) != n-1 {
		return fmt.Errorf("knows %d good replicas of %d listed and %d other sentinels; want %d and %d", good, len(reps), len(sens), n-1, n-1)
	}
	return nil
}

// box returns the box whose redis is at addr, and the others.
func (g *group) box(addr string) (*box.Box, []*box.Box, error) {
	for i, bx := range g.boxes {
		if bx.Addr+":6379" == addr {
			return bx, slices.Concat(g.boxes[:i], g.boxes[i+1:]), nil
		}
	}
	return nil, nil, fmt.Errorf("no box of the %s group has redis at %s", g.setup, addr)
}

// redisPID is the pid of a box's redis-server (in the box), as redis says.
func (g *group) redisPID(ctx context.Context, bx *box.Box) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	info, err := g.servers[bx.Name].Info(ctx, "server").Result()
	if err != nil {
		return 0, fmt.Errorf("box %s: INFO server: %w", bx.Name, err)
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("box %s: no process_id in INFO server", bx.Name)
}

// mainPID is a unit's main process in a box.
func mainPID(ctx context.Context, bx *box.Box, unit string) (int, error) {
	out, err := sh(ctx, bx, "systemctl show -p MainPID --value "+unit)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(out)
	if err == nil && pid == 0 {
		err = errors.New("not running")
	}
	if err != nil {
		return 0, fmt.Errorf("box %s: %s: MainPID %q: %v", bx.Name, unit, out, err)
	}
	return pid, nil
}

func unitState(ctx context.Context, bx *box.Box, unit string) string {
	out, _, _ := bx.Exec(ctx, "systemctl", "is-active", unit)
	return strings.TrimSpace(out)
}
