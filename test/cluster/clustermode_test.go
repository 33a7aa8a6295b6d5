package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
	"github.com/redis-ha-agent/redis-ha-agent/test/faultcheck"
)

// Cluster mode on loopback: three agents, each with two instances (ports
// base, base+1; base+10, base+11; base+20, base+21; cluster bus 10000
// above), Redis Cluster with a replica per shard, down_after 2 s.

const clusterDownAfter = 2 * time.Second

// newClusterGroup writes three boxes' configurations in cluster mode.
func newClusterGroup(t *testing.T, base int) *group {
	t.Helper()
	testutil.RequireRedis(t)
	testutil.RequireRoot(t, "the agent drops its children to the redis user")
	root, err := os.MkdirTemp("", "rha-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	g := &group{t: t, root: root, base: base}
	pw := filepath.Join(root, "password")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	var peers []string
	for i := range 3 {
		peers = append(peers, fmt.Sprintf(`"127.0.0.1:%d"`, base+10*i))
	}
	for i := range 3 {
		port := base + 10*i
		dir := filepath.Join(root, fmt.Sprintf("node%d", i+1))
		if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		conf := fmt.Sprintf(`[cluster]
mode = "cluster"
peers = [%s]
bootstrap_primary = "127.0.0.1:%d"

[node]
announce = "127.0.0.1:%d"
data_dir = "%s/data"
run_dir = "%s/run"

[redis]
port = %d

[sentinel]
down_after = %q

[auth]
password_file = %q

[tuning]
enabled = false

[http]
listen = "127.0.0.1:%d"
`, strings.Join(peers, ", "), base, port, dir, dir, port, clusterDownAfter.String(), pw, port+12000)
		if err := os.WriteFile(filepath.Join(dir, "redis-ha.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		g.nodes = append(g.nodes, &agentProc{scheme: "http", i: i + 1, dir: dir, port: port, logPath: filepath.Join(dir, "agent.log")})
	}
	t.Cleanup(func() {
		for _, n := range g.nodes {
			n.stop(t)
		}
		if d := os.Getenv("RHA_KEEP_LOGS"); d != "" { // everything, passed or not
			for _, n := range g.nodes {
				b, _ := os.ReadFile(n.logPath)
				_ = os.WriteFile(filepath.Join(d, fmt.Sprintf("cluster-agent%d.log", n.i)), b, 0o644)
			}
		}
		if t.Failed() {
			for _, n := range g.nodes {
				b, _ := os.ReadFile(n.logPath)
				t.Logf("---- agent %d log ----\n%s", n.i, testutil.Tail(grepOut(string(b), "component=redis-"), 60))
			}
		}
		os.RemoveAll(root)
	})
	return g
}

// grepOut drops the lines containing s (redis's own output).
func grepOut(log, s string) string {
	var out []string
	for l := range strings.Lines(log) {
		if !strings.Contains(l, s) {
			out = append(out, strings.TrimRight(l, "\n"))
		}
	}
	return strings.Join(out, "\n")
}

// instances is every instance of the group, box by box.
func (g *group) instances() []string {
	var out []string
	for _, n := range g.nodes {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", n.port), fmt.Sprintf("127.0.0.1:%d", n.port+1))
	}
	return out
}

func (g *group) clusterTarget() faultcheck.ClusterTarget {
	return faultcheck.ClusterTarget{Addrs: g.instances(), Password: password}
}

// clusterStatus is `status --json` in cluster mode, the fields tests read.
type clusterStatus struct {
	State       string   `json:"state"`
	SlotsServed int      `json:"slots_served"`
	Masters     int      `json:"masters"`
	Replicas    int      `json:"replicas"`
	Healthy     bool     `json:"healthy"`
	Problems    []string `json:"problems"`
	Notes       []string `json:"notes"`
	Instances   []struct {
		Instance string `json:"instance"`
		Role     string `json:"role"`
		Master   string `json:"master"`
		Link     string `json:"link"`
		Slots    string `json:"slots"`
		NodeID   string `json:"node_id"`
	} `json:"instances"`
}

func (g *group) clusterStatus(t *testing.T, n *agentProc) (clusterStatus, string) {
	t.Helper()
	out, _ := cli(t, "status", "--json", "--config", n.confPath())
	var cs clusterStatus
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return cs, out
}

// planned reports whether the cluster is healthy and as planned: box i's
// first instance is the master of a shard, its second the replica of box
// i-1's master.
func (g *group) planned(t *testing.T) (bool, string) {
	cs, _ := g.clusterStatus(t, g.nodes[0])
	if !cs.Healthy || len(cs.Notes) > 0 {
		return false, fmt.Sprintf("healthy %v, problems %q, notes %q", cs.Healthy, cs.Problems, cs.Notes)
	}
	role := map[string][2]string{}
	for _, is := range cs.Instances {
		role[is.Instance] = [2]string{is.Role, is.Master}
	}
	for i, n := range g.nodes {
		m := fmt.Sprintf("127.0.0.1:%d", n.port)
		prev := fmt.Sprintf("127.0.0.1:%d", g.nodes[(i+2)%3].port)
		r := fmt.Sprintf("127.0.0.1:%d", n.port+1)
		if role[m][0] != "master" || role[r] != [2]string{"replica", prev} {
			return false, fmt.Sprintf("%s is %v, %s is %v", m, role[m], r, role[r])
		}
	}
	return true, ""
}

func (g *group) waitPlanned(t *testing.T, timeout time.Duration) {
	t.Helper()
	var why string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var ok bool
		if ok, why = g.planned(t); ok {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("cluster not as planned after %s: %s", timeout, why)
}

// faultRun writes through two cluster clients while inject runs, until 10 s
// after the group is back as planned, and checks each run: lost ≤ maxLost,
// failovers as expected, the layout as planned afterwards, the shard hit
// out ≤ maxOutage and the others ≤ othersOutage. A failover's outage is the
// tuned client's (the cluster's own): the default client (go-redis's
// defaults) keeps a silent master's slots until that master answers again
// (go-redis#3979), which is logged, not bounded.
func (g *group) faultRun(t *testing.T, name string, maxLost int, maxOutage, othersOutage time.Duration, failovers int, inject func()) faultcheck.ClusterReport {
	t.Helper()
	ctx := context.Background()
	watch := faultcheck.WatchOwners(ctx, g.clusterTarget())
	def := faultcheck.StartCluster(ctx, g.clusterTarget(), 200)
	tuned := faultcheck.StartClusterTuned(ctx, g.clusterTarget(), 200)
	time.Sleep(2 * time.Second)
	def.MarkFault(name)
	tuned.MarkFault(name)
	inject()
	g.waitPlanned(t, 60*time.Second)
	time.Sleep(10 * time.Second)
	logs := []*faultcheck.WriteLog{def.Stop(), tuned.Stop()}
	changes := watch.Stop()
	var reps []faultcheck.ClusterReport
	for _, l := range logs {
		rep, err := faultcheck.ClusterCheck(ctx, g.clusterTarget(), l, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		rep.Failovers = len(changes)
		worst, others := rep.Worst()
		t.Logf("%s, %s client: acked %d, failed %d, lost %d, shard %d-%d out %s, others %s, failovers %d %q, converged %v (%s)",
			name, l.Client, rep.Acked, rep.Failed, rep.Lost, worst.From, worst.To, worst.LongestOutage.Round(time.Millisecond),
			others.Round(time.Millisecond), rep.Failovers, changes, rep.Converged, rep.ConvergeDetail)
		if rep.Lost > maxLost {
			t.Errorf("%s, %s client: lost %d acknowledged writes (%q), want ≤ %d", name, l.Client, rep.Lost, rep.LostKeys, maxLost)
		}
		// The hit shard's outage is the tuned client's when a failover
		// ends it (the default one waits for the old master), the default
		// client's when none is needed; the other shards' is the default
		// client's (the tuned one's short timeouts trip on a loaded CI
		// machine's stalls, on every shard at once).
		hitClient := faultcheck.ClientDefault
		if failovers > 0 {
			hitClient = faultcheck.ClientTuned
		}
		if l.Client == hitClient && worst.LongestOutage > maxOutage {
			t.Errorf("%s: shard %d-%d had no write acknowledged for %s, want ≤ %s", name, worst.From, worst.To, worst.LongestOutage, maxOutage)
		}
		if l.Client == faultcheck.ClientDefault && others > othersOutage {
			t.Errorf("%s, %s client: the other shards had no write acknowledged for %s, want ≤ %s", name, l.Client, others, othersOutage)
		}
		if !rep.Converged {
			t.Errorf("%s: not converged: %s", name, rep.ConvergeDetail)
		}
		reps = append(reps, rep)
	}
	if failovers >= 0 && len(changes) != failovers {
		t.Errorf("%s: %d failovers %q, want %d", name, len(changes), changes, failovers)
	}
	return reps[1]
}

// TestClusterMode: three agents create a Redis Cluster by plan, which
// clients use across slots, and keep it through faults: each run writes
// through a go-redis ClusterClient with its defaults.
func TestClusterMode(t *testing.T) {
	g := newClusterGroup(t, 7400)
	g.startAll()
	g.waitPlanned(t, 60*time.Second)

	t.Run("created by plan, used across slots", func(t *testing.T) {
		out, code := cli(t, "status", "--config", g.nodes[1].confPath())
		t.Logf("status:\n%s", out)
		if code != 0 {
			t.Errorf("status exit %d", code)
		}
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: g.instances(), Password: password})
		defer c.Close()
		ctx := context.Background()
		for i := range 300 {
			if err := c.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
				t.Fatalf("set: %v", err)
			}
		}
		for i := range 300 {
			if v, err := c.Get(ctx, fmt.Sprintf("k%d", i)).Int(); err != nil || v != i {
				t.Fatalf("get k%d: %d, %v", i, v, err)
			}
		}
		chk := exec.Command("redis-cli", "--cluster", "check", "127.0.0.1:7400")
		chk.Env = append(os.Environ(), "REDISCLI_AUTH="+password)
		b, _ := chk.CombinedOutput()
		t.Logf("redis-cli --cluster check:\n%s", b)
		if !strings.Contains(string(b), "[OK] All 16384 slots covered.") || strings.Contains(string(b), "[ERR]") {
			t.Errorf("redis-cli --cluster check does not report every slot covered")
		}
		if got := faultcheck.Slot("foo"); got != 12182 {
			t.Errorf("Slot(foo) = %d, want 12182 (CLUSTER KEYSLOT foo)", got)
		}
	})

	t.Run("kill -9 of a master instance", func(t *testing.T) {
		g.faultRun(t, "master instance killed", 10, clusterDownAfter+time.Second, time.Second, 2, func() {
			pid := readPidFile(t, filepath.Join(g.nodes[1].dir, "run", "redis-7410.pid"))
			_ = syscall.Kill(pid, syscall.SIGKILL)
		})
	})

	t.Run("kill -9 of an agent", func(t *testing.T) {
		g.faultRun(t, "agent killed", 0, time.Second, time.Second, 0, func() {
			g.nodes[2].kill(t)
			time.Sleep(time.Second)
			g.nodes[2].start(t)
		})
	})

	t.Run("box frozen (agent and instances SIGSTOPped)", func(t *testing.T) {
		n := g.nodes[2]
		var pids []int
		g.faultRun(t, "box frozen", 10, clusterDownAfter+2*time.Second, time.Second, 2, func() {
			pids = []int{n.cmd.Process.Pid, readPidFile(t, filepath.Join(n.dir, "run", "redis-7420.pid")),
				readPidFile(t, filepath.Join(n.dir, "run", "redis-7421.pid"))}
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGSTOP)
			}
			time.Sleep(3 * clusterDownAfter)
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGCONT)
			}
		})
	})

	t.Run("switchover of each shard, and back", func(t *testing.T) {
		for i, n := range g.nodes {
			replica := fmt.Sprintf("127.0.0.1:%d", g.nodes[(i+1)%3].port+1)
			master := fmt.Sprintf("127.0.0.1:%d", n.port)
			g.faultRun(t, "switchover to "+replica+" and back", 0, time.Second, time.Second, 2, func() {
				for _, to := range []string{replica, master} {
					out, code := cli(t, "switchover", "--to", to, "--config", g.nodes[0].confPath())
					t.Logf("switchover --to %s: exit %d: %s", to, code, strings.TrimSpace(out))
					if code != 0 || strings.Contains(out, "already") {
						t.Fatalf("switchover --to %s failed", to)
					}
					// Past failback's settle time: an operator's switchover
					// is not a fault for the agents to undo.
					time.Sleep(4 * time.Second)
					r := redis.NewClient(&redis.Options{Addr: to, Password: password})
					role, err := r.Do(context.Background(), "ROLE").Slice()
					r.Close()
					if err != nil || len(role) == 0 || role[0] != "master" {
						t.Fatalf("%s is no longer master 4 s after the switchover to it: %v %v", to, role, err)
					}
				}
			})
		}
	})

	t.Run("every agent restarted at once", func(t *testing.T) {
		before := map[string]string{}
		cs, _ := g.clusterStatus(t, g.nodes[0])
		for _, is := range cs.Instances {
			before[is.Instance] = is.NodeID
		}
		for _, n := range g.nodes {
			go n.stop(t)
		}
		time.Sleep(500 * time.Millisecond)
		for _, n := range g.nodes {
			testutil.WaitUntil(t, 60*time.Second, fmt.Sprintf("agent %d stopped", n.i), func() bool {
				n.mu.Lock()
				defer n.mu.Unlock()
				return n.cmd == nil
			})
		}
		g.startAll()
		g.waitPlanned(t, 60*time.Second)
		cs, _ = g.clusterStatus(t, g.nodes[0])
		for _, is := range cs.Instances {
			if before[is.Instance] != is.NodeID {
				t.Errorf("%s: node id %s, was %s: not the same cluster", is.Instance, is.NodeID, before[is.Instance])
			}
		}
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: g.instances(), Password: password})
		defer c.Close()
		for i := range 300 {
			if v, err := c.Get(context.Background(), fmt.Sprintf("k%d", i)).Int(); err != nil || v != i {
				t.Fatalf("after the restart, k%d: %d, %v", i, v, err)
			}
		}
	})
}

func readPidFile(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestClusterModeRefusesData: an instance that holds keys before the
// cluster exists makes creation refuse, and says so; nothing is created.
func TestClusterModeRefusesData(t *testing.T) {
	g := newClusterGroup(t, 7430)
	// Box 2's second instance already holds data: an AOF written by a plain
	// redis in its data directory.
	dir := filepath.Join(g.nodes[1].dir, "data", "7441")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seed := exec.Command("redis-server", "--port", "7441", "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--save", "")
	if err := seed.Start(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:7441"})
	testutil.WaitUntil(t, 10*time.Second, "seed redis up", func() bool {
		return c.Set(context.Background(), "precious", "data", 0).Err() == nil
	})
	_ = c.Shutdown(context.Background()).Err()
	c.Close()
	_ = seed.Wait()
	if out, err := exec.Command("chown", "-R", "redis:redis", filepath.Join(g.nodes[1].dir, "data")).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	g.startAll()
	testutil.WaitUntil(t, 30*time.Second, "creation refused in the bootstrap agent's log", func() bool {
		return strings.Contains(g.nodes[0].log(), "cluster creation refused")
	})
	out, code := cli(t, "status", "--config", g.nodes[0].confPath())
	t.Logf("status (exit %d):\n%s", code, out)
	if code == 0 {
		t.Error("status is healthy over a refused creation")
	}
	for l := range strings.Lines(g.nodes[0].log()) {
		if strings.Contains(l, "cluster creation refused") {
			t.Logf("agent says: %s", strings.TrimSpace(l))
			if !strings.Contains(l, "127.0.0.1:7441 holds 1 keys") {
				t.Errorf("the refusal does not name the instance and its keys")
			}
			break
		}
	}
	time.Sleep(3 * time.Second)
	cs, _ := g.clusterStatus(t, g.nodes[0])
	if cs.SlotsServed != 0 {
		t.Errorf("%d slots served: a cluster was created over data", cs.SlotsServed)
	}
	v, err := redis.NewClient(&redis.Options{Addr: "127.0.0.1:7441", Password: password}).Get(context.Background(), "precious").Result()
	if err != nil || v != "data" {
		t.Errorf("the data: %q, %v", v, err)
	}
}
