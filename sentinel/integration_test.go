package sentinel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// The integration tests run real redis-server processes on 127.0.0.1, ports
// 17100-17199. Only tests exec; the package itself never does.

const testPassword = "test-Secret.1"

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
	c := redis.NewClient(options(Addr{Host: "127.0.0.1", Port: port}, testPassword))
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

func local(port int) Addr { return Addr{Host: "127.0.0.1", Port: port} }

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestIntegrationFailover(t *testing.T) {
	testutil.RequireRedis(t)
	const name = "mym"
	master, replica := local(17101), local(17102)
	sentinels := []Addr{local(17111), local(17112), local(17113)}

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

	mc := NewRedisClient(master, testPassword)
	defer mc.Close()
	rc := NewRedisClient(replica, testPassword)
	defer rc.Close()

	t.Run("ProbeRole", func(t *testing.T) {
		testutil.WaitFor(t, 10*time.Second, "replica link up", func() error {
			r, err := ProbeRole(ctxTimeout(t, time.Second), rc)
			if err != nil {
				return err
			}
			if r.Kind != "slave" || r.Master != master || r.Link != "connected" {
				return fmt.Errorf("replica role %+v", r)
			}
			return nil
		})
		testutil.WaitFor(t, 5*time.Second, "master lists the replica", func() error {
			r, err := ProbeRole(ctxTimeout(t, time.Second), mc)
			if err != nil {
				return err
			}
			if r.Kind != "master" || len(r.Replicas) != 1 || r.Replicas[0].Addr != replica {
				return fmt.Errorf("master role %+v", r)
			}
			return nil
		})
		loading, err := Loading(ctxTimeout(t, time.Second), mc)
		if err != nil || loading {
			t.Errorf("Loading(master) = %v, %v", loading, err)
		}
	})
	if t.Failed() {
		return
	}

	confs := make([]SentinelConf, len(sentinels))
	paths := make([]string, len(sentinels))
	scs := make([]*redis.SentinelClient, len(sentinels))
	stops := make([]func(), len(sentinels))
	for i, s := range sentinels {
		id, err := NewMyID()
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		confs[i] = SentinelConf{
			Name: name, Port: s.Port, Bind: []string{"127.0.0.1"}, Announce: s, Dir: dir,
			Master: master, Quorum: 2, DownAfter: time.Second, FailoverTimeout: 10 * time.Second,
			Password: testPassword, MyID: id,
		}
		paths[i] = filepath.Join(dir, "sentinel.conf")
		stops[i] = startServer(t, dir, "sentinel.conf", RenderSentinel(confs[i]), true, s.Port)
		scs[i] = NewSentinelClient(s, testPassword)
		defer scs[i].Close()
		// Shrink Sentinel's 10 s INFO and 2 s hello periods so discovery
		// and the post-failover reconfiguration take well under a second.
		cmd := redis.NewStatusCmd(t.Context(), "sentinel", "debug", "info-period", "300", "publish-period", "300")
		if err := scs[i].Process(ctxTimeout(t, time.Second), cmd); err != nil {
			t.Fatalf("sentinel debug: %v", err)
		}
	}

	t.Run("MyID", func(t *testing.T) {
		for i, sc := range scs {
			id, err := MyID(ctxTimeout(t, time.Second), sc)
			if err != nil || id != confs[i].MyID {
				t.Errorf("MyID(%v) = %q, %v; want %q", sentinels[i], id, err, confs[i].MyID)
			}
		}
	})

	t.Run("AskAll", func(t *testing.T) {
		answers := AskAll(ctxTimeout(t, 2*time.Second), sentinels, testPassword, name)
		if m, ok := Agreed(answers, 2); !ok || m != master {
			t.Errorf("Agreed = %v, %v; answers %+v", m, ok, answers)
		}
		unknown := AskAll(ctxTimeout(t, 2*time.Second), sentinels[:1], testPassword, "nope")
		if !errors.Is(unknown[0].Err, ErrNoMaster) {
			t.Errorf("unknown group: %v, want ErrNoMaster", unknown[0].Err)
		}
		wrong := AskAll(ctxTimeout(t, 2*time.Second), sentinels[:1], "wrong", name)
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

	t.Run("CkQuorum", func(t *testing.T) {
		if err := CkQuorum(ctxTimeout(t, time.Second), scs[0], name); err != nil {
			t.Error(err)
		}
		if err := CkQuorum(ctxTimeout(t, time.Second), scs[0], "nope"); !errors.Is(err, ErrNoMaster) {
			t.Errorf("CkQuorum(nope) = %v, want ErrNoMaster", err)
		}
	})

	t.Run("Set", func(t *testing.T) {
		ctx := ctxTimeout(t, time.Second)
		if err := Set(ctx, scs[0], name, "down-after-milliseconds", "1000", "failover-timeout", "10000"); err != nil {
			t.Error(err)
		}
		if err := Set(ctx, scs[0], name, "notification-script", "/bin/true"); err == nil {
			t.Error("SENTINEL SET notification-script accepted despite deny-scripts-reconfig")
		}
		if err := Set(ctx, scs[0], name, "quorum"); err == nil {
			t.Error("odd argument count accepted")
		}
	})
	t.Run("Debug", func(t *testing.T) {
		ctx := ctxTimeout(t, time.Second)
		if err := Debug(ctx, scs[0], "ping-period", "500", "ask-period", "500", "info-period", "1000"); err != nil {
			t.Error(err)
		}
		if err := Debug(ctx, scs[0], "ping-period", "0"); err == nil {
			t.Error("SENTINEL DEBUG ping-period 0 accepted")
		}
		if err := Debug(ctx, scs[0], "ping-period"); err == nil {
			t.Error("odd argument count accepted")
		}
	})

	t.Run("Replicas", func(t *testing.T) {
		if err := rc.ConfigSet(ctxTimeout(t, time.Second), "replica-priority", "0").Err(); err != nil {
			t.Fatal(err)
		}
		// scs[0] reads INFO every second now (Debug above).
		sees := func(prio int) func() error {
			return func() error {
				reps, err := Replicas(ctxTimeout(t, time.Second), scs[0], name)
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
		if err := rc.ConfigSet(ctxTimeout(t, time.Second), "replica-priority", "100").Err(); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 5*time.Second, "the sentinel sees priority 100", sees(100))
		if _, err := Replicas(ctxTimeout(t, time.Second), scs[0], "nope"); !errors.Is(err, ErrNoMaster) {
			t.Errorf("Replicas(nope) = %v, want ErrNoMaster", err)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("Failover", func(t *testing.T) {
		evCtx, stopEvents := context.WithCancel(t.Context())
		defer stopEvents()
		events := Events(evCtx, scs[0])
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
		if err := scs[0].Process(ctxTimeout(t, time.Second), kill); err != nil || kill.Val() != 1 {
			t.Fatalf("client kill type pubsub = %d, %v", kill.Val(), err)
		}
		next("resubscribed")

		if err := Failover(ctxTimeout(t, time.Second), scs[0], name); err != nil {
			t.Fatal(err)
		}
		ev := next("+switch-master")
		want := Switch{Name: name, Old: master, New: replica}
		if ev.Switch == nil || *ev.Switch != want {
			t.Errorf("+switch-master %q parsed as %+v, want %+v", ev.Payload, ev.Switch, want)
		}

		testutil.WaitFor(t, 5*time.Second, "all sentinels name the new master", func() error {
			answers := AskAll(ctxTimeout(t, time.Second), sentinels, testPassword, name)
			for _, a := range answers {
				if a.Err != nil || a.Master != replica {
					return fmt.Errorf("answers %+v", answers)
				}
			}
			return nil
		})
		r, err := ProbeRole(ctxTimeout(t, time.Second), rc)
		if err != nil || r.Kind != "master" {
			t.Errorf("promoted replica role %+v, %v", r, err)
		}
		testutil.WaitFor(t, 5*time.Second, "old master demoted", func() error {
			r, err := ProbeRole(ctxTimeout(t, time.Second), mc)
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
		if id, err := MyID(ctx, scs[2]); err != nil || id != c.MyID {
			t.Errorf("MyID after re-render = %q, %v; want %q", id, err, c.MyID)
		}
		if m, err := MasterAddr(ctx, scs[2], name); err != nil || m != replica {
			t.Errorf("MasterAddr after re-render = %v, %v; want %v", m, err, replica)
		}
		cmd := redis.NewMapStringStringCmd(ctx, "sentinel", "master", name)
		if err := scs[2].Process(ctx, cmd); err != nil {
			t.Fatal(err)
		}
		if e := cmd.Val()["config-epoch"]; e != "1" {
			t.Errorf("config-epoch after re-render = %q, want 1", e)
		}
		// The peers' views stay clean: a changed id would show up as a third
		// known sentinel (and -dup-sentinel).
		peers, err := scs[0].Sentinels(ctx, name).Result()
		if err != nil || len(peers) != 2 {
			t.Errorf("sentinel 1 knows %d peers (%v), want 2", len(peers), err)
		}
		if err := CkQuorum(ctx, scs[2], name); err != nil {
			t.Error(err)
		}
	})

	t.Run("CkQuorumLost", func(t *testing.T) {
		stops[1]()
		stops[2]()
		// Sentinel stops counting a peer once it is subjectively down,
		// after down-after-milliseconds.
		testutil.WaitFor(t, 5*time.Second, "CKQUORUM to fail", func() error {
			err := CkQuorum(ctxTimeout(t, time.Second), scs[0], name)
			if err == nil {
				return errors.New("still OK")
			}
			if !strings.Contains(err.Error(), "NOQUORUM") {
				t.Fatalf("CkQuorum = %v, want sentinel's NOQUORUM text", err)
			}
			t.Log(err)
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
	id, _ := NewMyID()
	startServer(t, dir, "sentinel.conf", RenderSentinel(SentinelConf{
		Name: "hosted", Port: 17122, Bind: []string{"127.0.0.1"}, Dir: dir,
		Master: Addr{Host: "localhost", Port: master.Port}, Quorum: 1,
		DownAfter: time.Second, Password: testPassword, MyID: id,
	}), true, 17122)
	sc := NewSentinelClient(local(17122), testPassword)
	defer sc.Close()
	ctx := ctxTimeout(t, 2*time.Second)
	m, err := MasterAddr(ctx, sc, "hosted")
	if err != nil || m.Port != master.Port {
		t.Errorf("MasterAddr = %v, %v", m, err)
	}

	if err := Remove(ctx, sc, "hosted"); err != nil {
		t.Error(err)
	}
	if _, err := MasterAddr(ctx, sc, "hosted"); !errors.Is(err, ErrNoMaster) {
		t.Errorf("MasterAddr after Remove = %v, want ErrNoMaster", err)
	}
	if err := Remove(ctx, sc, "hosted"); !errors.Is(err, ErrNoMaster) {
		t.Errorf("second Remove = %v, want ErrNoMaster", err)
	}
	if err := Monitor(ctx, sc, "hosted", master, 1); err != nil {
		t.Error(err)
	}
	if m, err := MasterAddr(ctx, sc, "hosted"); err != nil || m != master {
		t.Errorf("MasterAddr after Monitor = %v, %v; want %v", m, err, master)
	}
	// resolve-hostnames was rendered, so a hostname is accepted at runtime too.
	if err := Monitor(ctx, sc, "byname", Addr{Host: "localhost", Port: master.Port}, 1); err != nil {
		t.Error(err)
	}
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
