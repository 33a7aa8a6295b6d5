package sentinel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// The integration tests run real redis-server processes on 127.0.0.1, ports
// 17100-17199. Only tests exec; the package itself never does.

const testPassword = "test-Secret.1"

var testCreds = Creds{Password: testPassword}

// startServer writes conf into dir and runs redis-server on it (as a sentinel
// if sentinelMode) until the test ends or stop is called. It returns once the
// server answers.
func startServer(t *testing.T, dir, file string, conf []byte, sentinelMode bool, port int) (stop func()) {
	t.Helper()
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{path}
	if sentinelMode {
		args = append(args, "--sentinel")
	}
	logPath := filepath.Join(dir, file+".log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", args...)
	cmd.Stdout, cmd.Stderr = out, out
	// Own group, so the cleanup also kills any child redis forked (an RDB
	// transfer to a replica).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			out.Close()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("%s (port %d) output:\n%s", file, port, testutil.Tail(string(log), 30))
		}
	})
	c := redis.NewClient(options(wire.Addr{Host: "127.0.0.1", Port: port}, testCreds))
	defer c.Close()
	testutil.WaitFor(t, 5*time.Second, fmt.Sprintf("%s answers PING", file), func() error {
		select {
		case <-done:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited:\n%s", file, testutil.Tail(string(log), 30))
		default:
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	})
	return stop
}

func local(port int) wire.Addr { return wire.Addr{Host: "127.0.0.1", Port: port} }

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestIntegrationFailover(t *testing.T) {
	testutil.RequireRedis(t)
	const name = "mym"
	master, replica := local(17101), local(17102)
	sentinels := []wire.Addr{local(17111), local(17112), local(17113)}

	settings := map[string]string{
		// Start the replica's first sync at once instead of waiting 5 s for
		// more replicas to share it.
		"repl-diskless-sync-delay":   "0",
		"client-output-buffer-limit": "replica 256mb 64mb 60",
		"notify-keyspace-events":     "",
	}
	startServer(t, t.TempDir(), "redis.conf", RenderRedis(RedisConf{
		Port: master.Port, Bind: []string{"127.0.0.1"}, Announce: master, Dir: t.TempDir(),
		Password: testPassword, Persistence: "aof", Priority: 100, Settings: settings,
	}), false, master.Port)
	startServer(t, t.TempDir(), "redis.conf", RenderRedis(RedisConf{
		Port: replica.Port, Bind: []string{"127.0.0.1"}, Announce: replica, Dir: t.TempDir(),
		Password: testPassword, Persistence: "rdb", Priority: 100, ReplicaOf: &master, Settings: settings,
	}), false, replica.Port)

	mc := NewRedis(master, testCreds)
	defer mc.Close()
	rc := NewRedis(replica, testCreds)
	defer rc.Close()

	t.Run("Role", func(t *testing.T) {
		testutil.WaitFor(t, 10*time.Second, "replica link up", func() error {
			r, err := rc.Role(ctxTimeout(t, time.Second))
			if err != nil {
				return err
			}
			if r.Kind != "slave" || r.Master != master || r.Link != "connected" {
				return fmt.Errorf("replica role %+v", r)
			}
			return nil
		})
		testutil.WaitFor(t, 5*time.Second, "master lists the replica", func() error {
			r, err := mc.Role(ctxTimeout(t, time.Second))
			if err != nil {
				return err
			}
			if r.Kind != "master" || len(r.Replicas) != 1 || r.Replicas[0].Addr != replica {
				return fmt.Errorf("master role %+v", r)
			}
			return nil
		})
		loading, err := mc.Loading(ctxTimeout(t, time.Second))
		if err != nil || loading {
			t.Errorf("Loading(master) = %v, %v", loading, err)
		}
	})
	if t.Failed() {
		return
	}

	confs := make([]SentinelConf, len(sentinels))
	paths := make([]string, len(sentinels))
	scs := make([]*Sentinel, len(sentinels))
	stops := make([]func(), len(sentinels))
	for i, s := range sentinels {
		id := DeriveMyID(name, s)
		dir := t.TempDir()
		confs[i] = SentinelConf{
			Name: name, Port: s.Port, Bind: []string{"127.0.0.1"}, Announce: s, Dir: dir,
			Master: master, Quorum: 2, DownAfter: time.Second, FailoverTimeout: 10 * time.Second,
			Password: testPassword, MyID: id,
		}
		paths[i] = filepath.Join(dir, "sentinel.conf")
		stops[i] = startServer(t, dir, "sentinel.conf", RenderSentinel(confs[i]), true, s.Port)
		scs[i] = NewSentinel(s, testCreds)
		defer scs[i].Close()
		// Shrink Sentinel's 10 s INFO and 2 s hello periods so discovery
		// and the post-failover reconfiguration take well under a second.
		cmd := redis.NewStatusCmd(t.Context(), "sentinel", "debug", "info-period", "300", "publish-period", "300")
		if err := scs[i].c.Process(ctxTimeout(t, time.Second), cmd); err != nil {
			t.Fatalf("sentinel debug: %v", err)
		}
	}

	t.Run("MyID", func(t *testing.T) {
		for i, sc := range scs {
			id, err := myID(ctxTimeout(t, time.Second), sc)
			if err != nil || id != confs[i].MyID {
				t.Errorf("MyID(%v) = %q, %v; want %q", sentinels[i], id, err, confs[i].MyID)
			}
		}
	})

	t.Run("AskAll", func(t *testing.T) {
		answers := Group{Name: name, Creds: testCreds, Sentinels: sentinels}.AskAll(ctxTimeout(t, 2*time.Second))
		for _, a := range answers {
			if a.Err != nil || a.Master != master {
				t.Errorf("answers %+v, want every one naming %v", answers, master)
			}
		}
		unknown := Group{Name: "nope", Creds: testCreds, Sentinels: sentinels[:1]}.AskAll(ctxTimeout(t, 2*time.Second))
		if !errors.Is(unknown[0].Err, wire.ErrNoMaster) {
			t.Errorf("unknown group: %v, want wire.ErrNoMaster", unknown[0].Err)
		}
		wrong := Group{Name: name, Creds: Creds{Password: "wrong"}, Sentinels: sentinels[:1]}.AskAll(ctxTimeout(t, 2*time.Second))
		if wrong[0].Err == nil {
			t.Error("wrong password answered")
		}
	})

	// Sentinel rewrites its file as it discovers the replica and its peers.
	t.Run("ReadSentinelState", func(t *testing.T) {
		for i, p := range paths {
			testutil.WaitFor(t, 10*time.Second, "sentinel records its replica and peers", func() error {
				st, err := ReadSentinelState(p)
				if err != nil {
					return err
				}
				if n := countPrefix(st.Lines, "sentinel known-sentinel "+name+" "); n != 2 {
					return fmt.Errorf("%d known-sentinel lines in %q", n, st.Lines)
				}
				if n := countPrefix(st.Lines, "sentinel known-replica "+name+" "); n != 1 {
					return fmt.Errorf("%d known-replica lines in %q", n, st.Lines)
				}
				return nil
			})
			st, err := ReadSentinelState(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.MyID != confs[i].MyID || st.Name != name || st.Master == nil || *st.Master != master {
				t.Errorf("state %+v, want myid %s monitoring %s %v", st, confs[i].MyID, name, master)
			}
		}
	})

	t.Run("Usable", func(t *testing.T) {
		if n, ok, err := scs[0].Usable(ctxTimeout(t, time.Second), name); n != 3 || !ok || err != nil {
			t.Errorf("Usable = %d, %v, %v; want 3, true", n, ok, err)
		}
		if _, _, err := scs[0].Usable(ctxTimeout(t, time.Second), "nope"); !errors.Is(err, wire.ErrNoMaster) {
			t.Errorf("Usable(nope) = %v, want wire.ErrNoMaster", err)
		}
	})

	// What a sentinel remembers, by address, and a reset: it forgets, then
	// learns the group again (the replica from the master's INFO, the
	// sentinels from their hello messages).
	t.Run("KnownAndReset", func(t *testing.T) {
		knows := func() error {
			k, err := scs[0].Known(ctxTimeout(t, time.Second), name)
			if err != nil {
				return err
			}
			var peers []wire.Addr
			for _, p := range k.Peers {
				peers = append(peers, p.Addr)
			}
			if k.Master != master || len(k.Replicas) != 1 || k.Replicas[0].Addr != replica ||
				!slices.Equal(sortedAddrs(peers), sentinels[1:]) {
				return fmt.Errorf("known %+v", k)
			}
			return nil
		}
		testutil.WaitFor(t, 10*time.Second, "sentinel knows the group", knows)
		if err := scs[0].Reset(ctxTimeout(t, time.Second), name); err != nil {
			t.Fatal(err)
		}
		if k, err := scs[0].Known(ctxTimeout(t, time.Second), name); err != nil || len(k.Peers) != 0 || k.Master != master {
			t.Errorf("just reset: %+v, %v; want the master alone", k, err)
		}
		testutil.WaitFor(t, 10*time.Second, "sentinel learns the group again", knows)
		if err := scs[0].Reset(ctxTimeout(t, time.Second), "nope"); err == nil {
			t.Error("reset of an unknown group: no error")
		}
	})

	// The master's view of its replicas' links, and closing one: the
	// replica connects again by itself.
	t.Run("LinksAndDrop", func(t *testing.T) {
		links, err := mc.Links(ctxTimeout(t, time.Second))
		if err != nil || len(links) != 1 || links[0].Addr != replica || links[0].Lag > 2 {
			t.Fatalf("Links = %+v, %v; want %v with a lag of a second at most", links, err, replica)
		}
		if n, err := mc.DropReplicas(ctxTimeout(t, time.Second), "127.0.0.2"); n != 0 || err != nil {
			t.Errorf("DropReplicas(another host) = %d, %v", n, err)
		}
		if n, err := mc.DropReplicas(ctxTimeout(t, time.Second), replica.Host); n != 1 || err != nil {
			t.Errorf("DropReplicas(%s) = %d, %v; want 1", replica.Host, n, err)
		}
		testutil.WaitFor(t, 10*time.Second, "the replica linked again", func() error {
			r, err := rc.Role(ctxTimeout(t, time.Second))
			if err != nil || r.Link != "connected" {
				return fmt.Errorf("replica %+v, %v", r, err)
			}
			return nil
		})
	})

	t.Run("Set", func(t *testing.T) {
		ctx := ctxTimeout(t, time.Second)
		if err := scs[0].Set(ctx, name, "down-after-milliseconds", "1000", "failover-timeout", "10000"); err != nil {
			t.Error(err)
		}
		if err := scs[0].Set(ctx, name, "notification-script", "/bin/true"); err == nil {
			t.Error("SENTINEL SET notification-script accepted despite deny-scripts-reconfig")
		}
		if err := scs[0].Set(ctx, name, "quorum"); err == nil {
			t.Error("odd argument count accepted")
		}
	})
	t.Run("Debug", func(t *testing.T) {
		ctx := ctxTimeout(t, time.Second)
		if err := scs[0].Debug(ctx, "ping-period", "500", "ask-period", "500", "info-period", "1000"); err != nil {
			t.Error(err)
		}
		if err := scs[0].Debug(ctx, "ping-period", "0"); err == nil {
			t.Error("SENTINEL DEBUG ping-period 0 accepted")
		}
		if err := scs[0].Debug(ctx, "ping-period"); err == nil {
			t.Error("odd argument count accepted")
		}
	})

	t.Run("Replicas", func(t *testing.T) {
		if err := rc.Set(ctxTimeout(t, time.Second), "replica-priority", "0"); err != nil {
			t.Fatal(err)
		}
		// scs[0] reads INFO every second now (Debug above).
		sees := func(prio int) func() error {
			return func() error {
				reps, err := scs[0].Replicas(ctxTimeout(t, time.Second), name)
				if err != nil {
					return err
				}
				if len(reps) != 1 || reps[0].Addr != replica || reps[0].Priority != prio || reps[0].InfoAge > 2*time.Second {
					return fmt.Errorf("replicas %+v", reps)
				}
				return nil
			}
		}
		testutil.WaitFor(t, 5*time.Second, "the sentinel sees priority 0", sees(0))
		// Back as it was, and seen so: the failover below needs it.
		if err := rc.Set(ctxTimeout(t, time.Second), "replica-priority", "100"); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 5*time.Second, "the sentinel sees priority 100", sees(100))
		if _, err := scs[0].Replicas(ctxTimeout(t, time.Second), "nope"); !errors.Is(err, wire.ErrNoMaster) {
			t.Errorf("Replicas(nope) = %v, want wire.ErrNoMaster", err)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("Failover", func(t *testing.T) {
		evCtx, stopEvents := context.WithCancel(t.Context())
		defer stopEvents()
		events := scs[0].Events(evCtx)
		next := func(want string) Event {
			t.Helper()
			timeout := time.After(10 * time.Second)
			var seen []string
			for {
				select {
				case ev, ok := <-events:
					if !ok {
						t.Fatalf("events closed waiting for %s; saw %q", want, seen)
					}
					if ev.Type == want {
						return ev
					}
					seen = append(seen, ev.Type)
				case <-timeout:
					t.Fatalf("no %s event; saw %q", want, seen)
				}
			}
		}
		next("subscribed") // from here on no event is missed

		// Drop the subscriber's connection: go-redis reconnects on its own,
		// and the fresh subscription is the caller's cue to re-read state.
		kill := redis.NewIntCmd(t.Context(), "client", "kill", "type", "pubsub")
		if err := scs[0].c.Process(ctxTimeout(t, time.Second), kill); err != nil || kill.Val() != 1 {
			t.Fatalf("client kill type pubsub = %d, %v", kill.Val(), err)
		}
		next("resubscribed")

		if err := scs[0].Failover(ctxTimeout(t, time.Second), name); err != nil {
			t.Fatal(err)
		}
		ev := next("+switch-master")
		want := fmt.Sprintf("%s %s %d %s %d", name, master.Host, master.Port, replica.Host, replica.Port)
		if ev.Payload != want {
			t.Errorf("+switch-master %q, want %q", ev.Payload, want)
		}

		testutil.WaitFor(t, 5*time.Second, "all sentinels name the new master", func() error {
			answers := Group{Name: name, Creds: testCreds, Sentinels: sentinels}.AskAll(ctxTimeout(t, time.Second))
			for _, a := range answers {
				if a.Err != nil || a.Master != replica {
					return fmt.Errorf("answers %+v", answers)
				}
			}
			return nil
		})
		r, err := rc.Role(ctxTimeout(t, time.Second))
		if err != nil || r.Kind != "master" {
			t.Errorf("promoted replica role %+v, %v", r, err)
		}
		testutil.WaitFor(t, 5*time.Second, "old master demoted", func() error {
			r, err := mc.Role(ctxTimeout(t, time.Second))
			if err != nil {
				return err
			}
			if r.Kind != "slave" || r.Master != replica {
				return fmt.Errorf("old master role %+v", r)
			}
			return nil
		})

		stopEvents()
		select {
		case _, ok := <-events:
			for ok {
				_, ok = <-events
			}
		case <-time.After(2 * time.Second):
			t.Error("events channel still open 2 s after ctx was cancelled")
		}
	})
	if t.Failed() {
		return
	}

	// The agent's restart path: read what sentinel recorded, render again
	// with it, and start on the new file. The sentinel must come back with
	// its id, the new master and its epoch.
	t.Run("Rerender", func(t *testing.T) {
		var st SentinelState
		testutil.WaitFor(t, 5*time.Second, "rewritten file names the new master", func() error {
			var err error
			st, err = ReadSentinelState(paths[2])
			if err != nil {
				return err
			}
			if st.Master == nil || *st.Master != replica {
				return fmt.Errorf("state master %v", st.Master)
			}
			if !slices.Contains(st.Lines, "sentinel current-epoch 1") {
				return fmt.Errorf("no current-epoch 1 in %q", st.Lines)
			}
			return nil
		})
		// Restart the third sentinel the way the agent does: same id, port
		// and dir, file rendered afresh with the recovered state.
		stops[2]()
		c := confs[2]
		c.Master = *st.Master
		c.State = st.Lines
		stops[2] = startServer(t, c.Dir, "sentinel.conf", RenderSentinel(c), true, c.Port)
		ctx := ctxTimeout(t, 2*time.Second)
		if id, err := myID(ctx, scs[2]); err != nil || id != c.MyID {
			t.Errorf("MyID after re-render = %q, %v; want %q", id, err, c.MyID)
		}
		if m, err := scs[2].MasterAddr(ctx, name); err != nil || m != replica {
			t.Errorf("MasterAddr after re-render = %v, %v; want %v", m, err, replica)
		}
		cmd := redis.NewMapStringStringCmd(ctx, "sentinel", "master", name)
		if err := scs[2].c.Process(ctx, cmd); err != nil {
			t.Fatal(err)
		}
		if e := cmd.Val()["config-epoch"]; e != "1" {
			t.Errorf("config-epoch after re-render = %q, want 1", e)
		}
		// The peers' views stay clean: a changed id would show up as a third
		// known sentinel (and -dup-sentinel).
		peers, err := scs[0].c.Sentinels(ctx, name).Result()
		if err != nil || len(peers) != 2 {
			t.Errorf("sentinel 1 knows %d peers (%v), want 2", len(peers), err)
		}
		if _, ok, err := scs[2].Usable(ctx, name); !ok || err != nil {
			t.Errorf("Usable after re-render = %v, %v", ok, err)
		}
	})

	t.Run("UsableLost", func(t *testing.T) {
		stops[1]()
		stops[2]()
		// Sentinel stops counting a peer once it is subjectively down,
		// after down-after-milliseconds.
		testutil.WaitFor(t, 5*time.Second, "CKQUORUM to fail", func() error {
			n, ok, err := scs[0].Usable(ctxTimeout(t, time.Second), name)
			if err != nil {
				t.Fatalf("Usable = %v, want sentinel's NOQUORUM answer read as not ok", err)
			}
			if ok {
				return fmt.Errorf("still %d usable", n)
			}
			if n != 1 {
				t.Errorf("Usable = %d, want 1 (itself)", n)
			}
			return nil
		})
	})
}

// A hostname in the monitor line needs resolve-hostnames, rendered before it.
func TestIntegrationSentinelHostname(t *testing.T) {
	testutil.RequireRedis(t)
	master := local(17121)
	startServer(t, t.TempDir(), "redis.conf", RenderRedis(RedisConf{
		Port: master.Port, Bind: []string{"127.0.0.1"}, Dir: t.TempDir(),
		Password: testPassword, Persistence: "none", Priority: 100,
	}), false, master.Port)
	dir := t.TempDir()
	id := DeriveMyID("hosted", local(17122))
	startServer(t, dir, "sentinel.conf", RenderSentinel(SentinelConf{
		Name: "hosted", Port: 17122, Bind: []string{"127.0.0.1"}, Dir: dir,
		Master: wire.Addr{Host: "localhost", Port: master.Port}, Quorum: 1,
		DownAfter: time.Second, Password: testPassword, MyID: id,
	}), true, 17122)
	sc := NewSentinel(local(17122), testCreds)
	defer sc.Close()
	ctx := ctxTimeout(t, 2*time.Second)
	m, err := sc.MasterAddr(ctx, "hosted")
	if err != nil || m.Port != master.Port {
		t.Errorf("MasterAddr = %v, %v", m, err)
	}

	if err := remove(ctx, sc.c, "hosted"); err != nil {
		t.Error(err)
	}
	if _, err := sc.MasterAddr(ctx, "hosted"); !errors.Is(err, wire.ErrNoMaster) {
		t.Errorf("MasterAddr after Remove = %v, want wire.ErrNoMaster", err)
	}
	if err := remove(ctx, sc.c, "hosted"); !errors.Is(err, wire.ErrNoMaster) {
		t.Errorf("second Remove = %v, want wire.ErrNoMaster", err)
	}
	if err := monitor(ctx, sc.c, "hosted", master, 1); err != nil {
		t.Error(err)
	}
	if m, err := sc.MasterAddr(ctx, "hosted"); err != nil || m != master {
		t.Errorf("MasterAddr after Monitor = %v, %v; want %v", m, err, master)
	}
	// resolve-hostnames was rendered, so a hostname is accepted at runtime too.
	if err := monitor(ctx, sc.c, "byname", wire.Addr{Host: "localhost", Port: master.Port}, 1); err != nil {
		t.Error(err)
	}
}

func sortedAddrs(as []wire.Addr) []wire.Addr {
	return slices.SortedFunc(slices.Values(as), func(a, b wire.Addr) int { return strings.Compare(a.String(), b.String()) })
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// Commands the agent never sends, for setting the scene.

func myID(ctx context.Context, s *Sentinel) (string, error) {
	cmd := redis.NewStringCmd(ctx, "sentinel", "myid")
	err := s.c.Process(ctx, cmd)
	return cmd.Val(), err
}

func remove(ctx context.Context, sc *redis.SentinelClient, name string) error {
	return noMaster(sc.Remove(ctx, name).Err())
}

func monitor(ctx context.Context, sc *redis.SentinelClient, name string, master wire.Addr, quorum int) error {
	return sc.Monitor(ctx, name, master.Host, strconv.Itoa(master.Port), strconv.Itoa(quorum)).Err()
}
