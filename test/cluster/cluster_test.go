package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// writer is a Sentinel-aware client writing unique keys at a steady rate and
// remembering which writes were acknowledged.
type writer struct {
	mu        sync.Mutex
	acked     []string
	errors    int
	firstErrs []string // the first few, for a test's log
	stop      chan struct{}
	done      chan struct{}
}

func startWriter(t *testing.T, g *group) *writer {
	var addrs []string
	for _, n := range g.nodes {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", n.port+20000))
	}
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: "main", SentinelAddrs: addrs, Password: password, SentinelPassword: password, TLSConfig: g.tls,
		MaxRetries: -1, DialTimeout: 300 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond,
	})
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer c.Close()
		tick := time.NewTicker(5 * time.Millisecond) // ~200 writes/s
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			key := fmt.Sprintf("w:%06d", i)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := c.Set(ctx, key, "v", 0).Err()
			cancel()
			w.mu.Lock()
			if err == nil {
				w.acked = append(w.acked, key)
			} else {
				w.errors++
				if len(w.firstErrs) < 5 {
					w.firstErrs = append(w.firstErrs, time.Now().Format("15:04:05.000 ")+err.Error())
				}
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *writer) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *writer) errorCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errors
}

func (w *writer) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// lost counts acknowledged keys missing on the master.
func (w *writer) lost(t *testing.T, master *redis.Client) []string {
	t.Helper()
	w.mu.Lock()
	keys := append([]string(nil), w.acked...)
	w.mu.Unlock()
	var missing []string
	ctx := context.Background()
	for i := 0; i < len(keys); i += 500 {
		batch := keys[i:min(i+500, len(keys))]
		n, err := master.Exists(ctx, batch...).Result()
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		if int(n) == len(batch) {
			continue
		}
		for _, k := range batch {
			if master.Exists(ctx, k).Val() == 0 {
				missing = append(missing, k)
			}
		}
	}
	return missing
}

// TestGroup tells one group's story in order: it forms, replicates, survives
// agent restarts and a bad drop-in, and fails over when the master's redis is
// killed — without the old master ever serving again with stale data.
func TestGroup(t *testing.T) {
	g := newGroup(t, 6480, "5s")
	g.startAll()
	master := g.waitConverged(60 * time.Second)
	if master != g.nodes[0] {
		t.Fatalf("bootstrap_primary node 1 should be the first master, got node %d", master.i)
	}

	t.Run("status shows one master and two replicas", func(t *testing.T) {
		out, code := cli(t, "status", "--json", "--config", g.nodes[1].confPath())
		if code != 0 {
			t.Fatalf("status exit %d:\n%s", code, out)
		}
		var gs struct {
			Master  string
			Healthy bool
			Peers   []struct{ Member, Role string }
		}
		if err := json.Unmarshal([]byte(out), &gs); err != nil {
			t.Fatalf("status json: %v\n%s", err, out)
		}
		roles := map[string]int{}
		for _, p := range gs.Peers {
			roles[p.Role]++
		}
		if !gs.Healthy || gs.Master != master.addr() || roles["master"] != 1 || roles["replica"] != 2 {
			t.Fatalf("status: %s", out)
		}
		table, code := cli(t, "status", "--config", g.nodes[2].confPath())
		if code != 0 || !strings.Contains(table, "healthy") {
			t.Fatalf("status table exit %d:\n%s", code, table)
		}
		t.Logf("status:\n%s", table)

		// A user who may not read the password gets the same group
		// from the agents' /status, and is told so.
		binDir, err := os.MkdirTemp("", "rha-nobody-") // t.TempDir's parent is private
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(binDir) })
		bin := filepath.Join(binDir, "redis-ha-agent")
		b, err := os.ReadFile(agentBin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, b, 0o755); err != nil || os.Chmod(binDir, 0o755) != nil {
			t.Fatal(err)
		}
		var ngs struct {
			Master  string `json:"master"`
			Healthy bool   `json:"healthy"`
			Via     string `json:"via"`
			Peers   []struct {
				Role string `json:"role"`
			} `json:"peers"`
		}
		var nobody []byte
		// The agents report their last observation (once a second), which
		// may be a round behind redis and the sentinels asked just now.
		testutil.WaitFor(t, 10*time.Second, "status --json as nobody healthy", func() error {
			cmd := exec.Command(bin, "status", "--json", "--config", g.nodes[2].confPath())
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			nobody, _ = cmd.Output() // exit 1 while unhealthy
			ngs.Healthy = false
			if err := json.Unmarshal(nobody, &ngs); err != nil || !ngs.Healthy {
				return fmt.Errorf("%v:\n%s", err, nobody)
			}
			return nil
		})
		if ngs.Master != master.addr() || len(ngs.Peers) != 3 || !strings.Contains(ngs.Via, "cannot read") {
			t.Fatalf("status --json as nobody:\n%s", nobody)
		}
		t.Logf("status as nobody: master %s, healthy, via %s", ngs.Master, ngs.Via)
	})

	t.Run("HTTP API: /primary on the master only, /replica on the replicas", func(t *testing.T) {
		get := func(n *agentProc, method, path string) int {
			req, _ := http.NewRequest(method, n.httpURL()+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		testutil.WaitUntil(t, 10*time.Second, "every agent's API answering", func() bool {
			for _, n := range g.nodes {
				if get(n, "GET", "/health") != 200 {
					return false
				}
			}
			return true
		})
		for _, n := range g.nodes {
			wantPrimary, wantReplica := 503, 200
			if n == master {
				wantPrimary, wantReplica = 200, 503
			}
			testutil.WaitUntil(t, 5*time.Second, fmt.Sprintf("node %d /primary %d", n.i, wantPrimary), func() bool {
				return get(n, "GET", "/primary") == wantPrimary && get(n, "HEAD", "/primary") == wantPrimary &&
					get(n, "GET", "/replica?lag=1MB") == wantReplica
			})
			if code := get(n, "POST", "/primary"); code != 405 {
				t.Errorf("node %d: POST /primary = %d, want 405 (read-only)", n.i, code)
			}
		}
		resp, err := http.Get(master.httpURL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{"redis_ha_primary 1", `redis_ha_role{role="master"} 1`, "redis_ha_fenced 0"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %q:\n%s", want, body)
			}
		}
	})

	t.Run("a write on the master reaches both replicas", func(t *testing.T) {
		ctx := context.Background()
		if err := g.client(master).Set(ctx, "hello", "world", 0).Err(); err != nil {
			t.Fatal(err)
		}
		for _, n := range g.nodes[1:] {
			testutil.WaitUntil(t, 10*time.Second, fmt.Sprintf("key on replica %d", n.i), func() bool {
				return g.client(n).Get(ctx, "hello").Val() == "world"
			})
		}
	})

	t.Run("restarting an agent keeps its role and sentinel id", func(t *testing.T) {
		// A replica's agent stopped and started: its redis stops and comes
		// back as a replica. The master's: it hands the role to a replica
		// before it stops, and comes back as a replica of the new master.
		for _, n := range []*agentProc{g.nodes[2], master} {
			ctx := context.Background()
			cmd := redis.NewStringCmd(ctx, "sentinel", "myid")
			if err := g.sentinelClient(n).Process(ctx, cmd); err != nil {
				t.Fatalf("sentinel myid: %v", err)
			}
			before := cmd.Val()
			began := time.Now()
			n.stop(t)
			stopped := time.Since(began)
			n.start(t)
			defer func() {
				t.Logf("node %d: agent stopped in %v, back and converged in %v", n.i, stopped.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
			}()
			testutil.WaitUntil(t, 30*time.Second, fmt.Sprintf("node %d back as replica", n.i), func() bool {
				return g.role(n) == "slave"
			})
			cmd = redis.NewStringCmd(ctx, "sentinel", "myid")
			testutil.WaitUntil(t, 30*time.Second, "sentinel back", func() bool {
				return g.sentinelClient(n).Process(ctx, cmd) == nil
			})
			if cmd.Val() != before {
				t.Fatalf("node %d sentinel id changed: %s -> %s", n.i, before, cmd.Val())
			}
			m := g.waitConverged(30 * time.Second)
			switch {
			case n != master && m != master:
				t.Fatalf("master moved to node %d after restarting replica node %d's agent", m.i, n.i)
			case n == master && m == master:
				t.Fatalf("the stopped master's agent did not hand over its role")
			case n == master:
				if !strings.Contains(n.log(), "master role handed over before stopping") {
					t.Errorf("node %d: no switchover logged before the stop", n.i)
				}
				t.Logf("node %d's agent handed the master role to node %d before stopping", n.i, m.i)
			}
		}
		master = g.waitConverged(30 * time.Second)
	})

	t.Run("an invalid drop-in is refused and the group keeps running", func(t *testing.T) {
		n := g.nodes[1]
		pid := n.pid(t, "redis")
		bad := filepath.Join(n.dir, "conf.d", "50-typo.conf")
		if err := os.WriteFile(bad, []byte("[redis]\nprot = 6390\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(bad)
		testutil.WaitUntil(t, 10*time.Second, "reload refused in the log", func() bool {
			l := n.log()
			return strings.Contains(l, "reload refused") && strings.Contains(l, "50-typo.conf:2")
		})
		if got := n.pid(t, "redis"); got != pid {
			t.Fatalf("redis restarted (pid %d -> %d) on an invalid drop-in", pid, got)
		}
		if m, why := g.converged(); m != master {
			t.Fatalf("group disturbed by an invalid drop-in: %s", why)
		}
		out, code := cli(t, "check-config", "--config", n.confPath())
		if code != 78 || !strings.Contains(out, "50-typo.conf:2") || !strings.Contains(out, "prot") {
			t.Fatalf("check-config exit %d, want 78 naming file:line and key:\n%s", code, out)
		}
	})

	t.Run("a valid drop-in is applied at runtime", func(t *testing.T) {
		n := g.nodes[1]
		pid := n.pid(t, "redis")
		good := filepath.Join(n.dir, "conf.d", "60-memory.conf")
		if err := os.WriteFile(good, []byte("[redis.settings]\nmaxmemory-policy = \"allkeys-lru\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		testutil.WaitUntil(t, 10*time.Second, "maxmemory-policy applied", func() bool {
			v, _ := g.client(n).ConfigGet(context.Background(), "maxmemory-policy").Result()
			return v["maxmemory-policy"] == "allkeys-lru"
		})
		if got := n.pid(t, "redis"); got != pid {
			t.Fatalf("redis restarted (pid %d -> %d) for a runtime setting", pid, got)
		}
	})

	t.Run("generated files stay private after CONFIG REWRITE and a sentinel flush", func(t *testing.T) {
		// Both hold the password; redis and sentinel rewrite them with
		// 0644 less the umask they inherit from the agent (review L5).
		ctx := context.Background()
		for _, n := range g.nodes {
			if err := g.client(n).ConfigRewrite(ctx).Err(); err != nil {
				t.Fatalf("node %d: config rewrite: %v", n.i, err)
			}
			if err := g.sentinelClient(n).FlushConfig(ctx).Err(); err != nil {
				t.Fatalf("node %d: sentinel flushconfig: %v", n.i, err)
			}
			for _, f := range []string{"redis.conf", "sentinel.conf"} {
				fi, err := os.Stat(filepath.Join(n.dir, "data", f))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm()&0o077 != 0 {
					t.Errorf("node %d: %s is mode %04o after a rewrite", n.i, f, fi.Mode().Perm())
				}
			}
		}
	})

	t.Run("kill -9 of the master's agent: redis lives on, adopted by the next agent, nothing lost", func(t *testing.T) {
		w := startWriter(t, g)
		testutil.WaitUntil(t, 10*time.Second, "writes flowing", func() bool { return w.ackedCount() > 200 })
		redisPid, sentPid := master.pid(t, "redis"), master.pid(t, "sentinel")
		master.kill(t)
		// As if systemd had removed the runtime directory: the restarted
		// agent must find its redis by asking the port, not the pid file.
		if err := os.Remove(filepath.Join(master.dir, "run", "redis.pid")); err != nil {
			t.Fatal(err)
		}
		before := w.ackedCount()
		testutil.WaitUntil(t, 10*time.Second, "writes continuing without the agent", func() bool { return w.ackedCount() > before+100 })
		if g.role(master) != "master" {
			t.Fatal("the master's redis should outlive its agent")
		}
		errsBefore := w.errorCount()
		master.start(t)
		testutil.WaitUntil(t, 30*time.Second, "the restarted agent adopting redis and sentinel", func() bool {
			l := master.log()
			return strings.Count(l, "adopting it") >= 2 && strings.Contains(l, "ready")
		})
		if got := master.pid(t, "redis"); got != redisPid {
			t.Errorf("redis pid %d -> %d: restarted, not adopted", redisPid, got)
		}
		if got := master.pid(t, "sentinel"); got != sentPid {
			t.Errorf("sentinel pid %d -> %d: restarted, not adopted", sentPid, got)
		}
		if m := g.waitConverged(30 * time.Second); m != master {
			t.Fatalf("master moved to node %d after the agent crash", m.i)
		}
		before = w.ackedCount()
		testutil.WaitUntil(t, 10*time.Second, "writes after the agent restart", func() bool { return w.ackedCount() > before+100 })
		w.halt()
		lost := w.lost(t, g.client(master))
		t.Logf("acknowledged writes: %d, lost: %d, errors: %d (%d while the agent came back)", w.ackedCount(), len(lost), w.errors, w.errorCount()-errsBefore)
		if len(lost) > 0 {
			t.Fatalf("%d acknowledged writes lost: %v", len(lost), lost[:min(len(lost), 20)])
		}
		if n := w.errorCount() - errsBefore; n > 0 {
			t.Errorf("%d writes failed while the agent came back: adopting must not touch redis", n)
		}
		// A line redis writes after the adoption reaches the new agent's log.
		const saved = "Background saving started"
		seen := strings.Count(master.log(), saved)
		if err := g.client(master).BgSave(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		testutil.WaitUntil(t, 5*time.Second, "the adopted redis's output in the agent's log", func() bool {
			return strings.Count(master.log(), saved) > seen
		})
	})

	t.Run("planned switchover: zero acknowledged writes lost", func(t *testing.T) {
		target := g.nodes[1]
		if target == master {
			target = g.nodes[2]
		}
		out, code := cli(t, "switchover", "--to", "127.0.0.1:1", "--config", g.nodes[2].confPath())
		if code != 1 || !strings.Contains(out, "refused") {
			t.Fatalf("switchover to a non-replica: exit %d, want 1 and a refusal:\n%s", code, out)
		}
		out, code = cli(t, "switchover", "--json", "--to", "127.0.0.1:1", "--config", g.nodes[2].confPath())
		var reply struct {
			Refused bool   `json:"refused"`
			Error   string `json:"error"`
		}
		if err := json.Unmarshal([]byte(out), &reply); code != 1 || err != nil || !reply.Refused || reply.Error == "" {
			t.Fatalf("switchover --json to a non-replica: exit %d, %v, want 1 and {refused: true, error}:\n%s", code, err, out)
		}
		w := startWriter(t, g)
		testutil.WaitUntil(t, 10*time.Second, "writes flowing", func() bool { return w.ackedCount() > 200 })
		prim := samplePrimaries(g)
		out, code = cli(t, "switchover", "--to", target.addr(), "--config", g.nodes[2].confPath())
		if code != 0 {
			t.Fatalf("switchover exit %d:\n%s", code, out)
		}
		t.Logf("%s", strings.TrimSpace(out))
		if m := g.waitConverged(30 * time.Second); m != target {
			t.Fatalf("converged on node %d, want node %d", m.i, target.i)
		}
		prim.end()
		t.Logf("/primary sampled %d times on all three boxes through the switchover: %d instants with two 200s %v",
			prim.samples, len(prim.doubles), prim.doubles)
		if len(prim.doubles) > 0 {
			t.Errorf("/primary answered 200 on two boxes at once")
		}
		before := w.ackedCount()
		testutil.WaitUntil(t, 10*time.Second, "writes on the new master", func() bool { return w.ackedCount() > before+100 })
		w.halt()
		lost := w.lost(t, g.client(target))
		t.Logf("acknowledged writes: %d, lost: %d, errors: %d", w.ackedCount(), len(lost), w.errors)
		if len(lost) > 0 {
			t.Fatalf("switchover lost %d acknowledged writes: %v", len(lost), lost[:min(len(lost), 20)])
		}
		master = target
	})

	t.Run("a master that loses sight of the majority fences itself, and unfences when it is back", func(t *testing.T) {
		ctx := context.Background()
		var frozen []int
		for _, n := range g.nodes {
			if n != master {
				frozen = append(frozen, n.pid(t, "sentinel"))
			}
		}
		for _, pid := range frozen {
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
		}
		thawed := false
		thaw := func() {
			if !thawed {
				for _, pid := range frozen {
					_ = syscall.Kill(pid, syscall.SIGCONT)
				}
				thawed = true
			}
		}
		defer thaw()
		cut := time.Now()
		var refusedAfter time.Duration
		testutil.WaitUntil(t, 10*time.Second, "the isolated master to refuse writes", func() bool {
			err := g.client(master).Set(ctx, "fence-probe", "x", 0).Err()
			if err != nil && strings.Contains(err.Error(), "NOREPLICAS") {
				refusedAfter = time.Since(cut)
				return true
			}
			return false
		})
		t.Logf("writes refused %.2fs after the majority went out of sight (fence_after 500ms)", refusedAfter.Seconds())
		thaw()
		testutil.WaitUntil(t, 10*time.Second, "writes accepted again", func() bool {
			return g.client(master).Set(ctx, "fence-probe", "y", 0).Err() == nil
		})
		if m := g.waitConverged(30 * time.Second); m != master {
			t.Fatalf("master moved to node %d; a fence must not cause a failover", m.i)
		}
	})

	t.Run("kill -9 of the master's redis: failover, old master rejoins as replica, no acknowledged write lost", func(t *testing.T) {
		w := startWriter(t, g)
		testutil.WaitUntil(t, 10*time.Second, "writes flowing", func() bool { return w.ackedCount() > 200 })

		// Watch the old master's port: after the kill it must never answer
		// ROLE as master again.
		stopWatch := make(chan struct{})
		servedAsMaster := make(chan string, 1)
		var watch sync.WaitGroup
		watch.Add(1)
		go func() {
			defer watch.Done()
			c := g.client(master)
			for {
				select {
				case <-stopWatch:
					return
				case <-time.After(20 * time.Millisecond):
				}
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				v, err := c.Do(ctx, "ROLE").Slice()
				cancel()
				if err == nil && len(v) > 0 && v[0] == "master" {
					select {
					case servedAsMaster <- time.Now().Format(time.RFC3339Nano):
					default:
					}
				}
			}
		}()

		prim := samplePrimaries(g)
		killedAt := time.Now()
		if err := syscall.Kill(master.pid(t, "redis"), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		newMaster := g.waitNewMaster(t, master, 60*time.Second, "a new master named by the sentinels")
		t.Logf("new master node %d, %.1fs after the kill", newMaster.i, time.Since(killedAt).Seconds())
		if m := g.waitConverged(60 * time.Second); m != newMaster {
			t.Fatalf("converged on node %d, want %d", m.i, newMaster.i)
		}
		time.Sleep(time.Second) // a few more writes on the new master
		prim.end()
		t.Logf("/primary sampled %d times through the failover: %d instants with two 200s %v", prim.samples, len(prim.doubles), prim.doubles)
		if len(prim.doubles) > 0 {
			t.Errorf("/primary answered 200 on two boxes at once")
		}
		w.halt()
		close(stopWatch)
		watch.Wait()
		select {
		case at := <-servedAsMaster:
			t.Fatalf("the killed master came back as master at %s", at)
		default:
		}
		lost := w.lost(t, g.client(newMaster))
		t.Logf("acknowledged writes: %d, lost: %d, errors during failover: %d", w.ackedCount(), len(lost), w.errors)
		if len(lost) > 10 {
			t.Fatalf("%d acknowledged writes lost (bound 10): %v", len(lost), lost[:min(len(lost), 20)])
		}
		if g.role(master) != "slave" {
			t.Fatalf("old master is %q, want slave", g.role(master))
		}
	})

	t.Run("history and the role-change hook saw every role change on every box", func(t *testing.T) {
		for _, n := range g.nodes {
			out, code := cli(t, "history", "--json", "--config", n.confPath())
			if code != 0 {
				t.Fatalf("history exit %d: %s", code, out)
			}
			var changes []struct{ To, Master string }
			if err := json.Unmarshal([]byte(out), &changes); err != nil {
				t.Fatalf("history json: %v\n%s", err, out)
			}
			var want []string
			for _, c := range changes {
				if c.To == "master" || c.To == "replica" {
					want = append(want, c.To+" "+strings.Replace(c.Master, ":", " ", 1))
				}
			}
			testutil.WaitUntil(t, 10*time.Second, fmt.Sprintf("node %d hook calls %v", n.i, want), func() bool {
				b, _ := os.ReadFile(filepath.Join(n.dir, "hook.log"))
				return strings.Join(want, "\n") == strings.TrimSpace(string(b))
			})
			if len(want) == 0 {
				t.Errorf("node %d recorded no role change", n.i)
			}
		}
	})
}
