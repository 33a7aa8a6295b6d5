package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// groupPaused is what `status --json` says of the pause.
func groupPaused(t *testing.T, n *agentProc) (bool, string) {
	t.Helper()
	out, _ := cli(t, "status", "--json", "--config", n.confPath())
	var gs struct {
		Paused      bool   `json:"paused"`
		PausedUntil string `json:"paused_until"`
	}
	if err := json.Unmarshal([]byte(out), &gs); err != nil {
		t.Fatalf("status json: %v\n%s", err, out)
	}
	return gs.Paused, gs.PausedUntil
}

// metric reads one sample of a node's /metrics.
func metric(n *agentProc, name string) string {
	resp, err := http.Get(n.httpURL() + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (g *group) priority(n *agentProc) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	v, _ := g.client(n).ConfigGet(ctx, "replica-priority").Result()
	return v["replica-priority"]
}

// TestPause: a paused group fails nothing over, whatever happens to its
// master, stays paused across agent restarts, ends the pause by itself with
// --for, and resumes even when its master is gone.
func TestPause(t *testing.T) {
	g := newGroup(t, 6480, "2s")
	g.startAll()
	master := g.waitConverged(60 * time.Second)

	out, code := cli(t, "pause", "--config", g.nodes[1].confPath())
	if code != 0 || !strings.Contains(out, "paused") {
		t.Fatalf("pause: exit %d\n%s", code, out)
	}
	t.Logf("%s", strings.TrimSpace(out))
	if p, _ := groupPaused(t, g.nodes[2]); !p {
		t.Fatal("status does not say paused")
	}
	for _, n := range g.nodes {
		testutil.WaitUntil(t, 5*time.Second, fmt.Sprintf("node %d: redis_ha_paused 1 and priority 0", n.i), func() bool {
			return metric(n, "redis_ha_paused") == "1" && g.priority(n) == "0"
		})
	}

	t.Run("kill -9 of the master's redis while paused: no failover, it comes back as master", func(t *testing.T) {
		w := startWriter(t, g)
		testutil.WaitUntil(t, 10*time.Second, "writes flowing", func() bool { return w.ackedCount() > 100 })
		if err := syscall.Kill(master.pid(t, "redis"), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// down_after is 2 s: a failover would have happened well within 8.
		deadline := time.Now().Add(8 * time.Second)
		for time.Now().Before(deadline) {
			for _, n := range g.nodes {
				if s := g.sentinelMaster(n); s != "" && s != master.addr() {
					t.Fatalf("sentinel of node %d names %s while paused", n.i, s)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		if m := g.waitConverged(30 * time.Second); m != master {
			t.Fatalf("converged on node %d, want the paused group's master node %d", m.i, master.i)
		}
		before := w.ackedCount()
		testutil.WaitUntil(t, 10*time.Second, "writes again", func() bool { return w.ackedCount() > before+100 })
		w.halt()
		lost := w.lost(t, g.client(master))
		t.Logf("acknowledged writes: %d, lost: %d, errors: %d", w.ackedCount(), len(lost), w.errors)
		if len(lost) > 0 {
			t.Errorf("%d acknowledged writes lost", len(lost))
		}
	})

	t.Run("an agent restarted while paused stays paused", func(t *testing.T) {
		n := g.nodes[2]
		if n == master {
			n = g.nodes[1]
		}
		n.kill(t)
		n.start(t)
		testutil.WaitUntil(t, 30*time.Second, "the restarted agent's metrics", func() bool { return metric(n, "redis_ha_up") == "1" })
		if v := metric(n, "redis_ha_paused"); v != "1" {
			t.Errorf("redis_ha_paused = %q after an agent restart, want 1", v)
		}
		if p := g.priority(n); p != "0" {
			t.Errorf("replica-priority %s after an agent restart while paused, want 0", p)
		}
	})

	t.Run("switchover is refused while paused", func(t *testing.T) {
		out, code := cli(t, "switchover", "--config", g.nodes[1].confPath())
		if code != 1 || !strings.Contains(out, "paused") {
			t.Errorf("switchover while paused: exit %d\n%s", code, out)
		}
	})

	t.Run("resume", func(t *testing.T) {
		out, code := cli(t, "resume", "--config", g.nodes[0].confPath())
		if code != 0 {
			t.Fatalf("resume: exit %d\n%s", code, out)
		}
		for _, n := range g.nodes {
			testutil.WaitUntil(t, 5*time.Second, fmt.Sprintf("node %d resumed", n.i), func() bool {
				return metric(n, "redis_ha_paused") == "0" && g.priority(n) == "100"
			})
		}
		if p, _ := groupPaused(t, g.nodes[1]); p {
			t.Error("status still says paused")
		}
	})

	t.Run("pause --for ends by itself", func(t *testing.T) {
		out, code := cli(t, "pause", "--for", "3s", "--config", g.nodes[1].confPath())
		if code != 0 {
			t.Fatalf("pause --for: exit %d\n%s", code, out)
		}
		if p, until := groupPaused(t, g.nodes[0]); !p || until == "" {
			t.Fatalf("status: paused %v until %q", p, until)
		}
		for _, n := range g.nodes {
			testutil.WaitUntil(t, 15*time.Second, fmt.Sprintf("node %d resumed by itself", n.i), func() bool {
				return metric(n, "redis_ha_paused") == "0" && g.priority(n) == "100"
			})
		}
	})

	t.Run("resume with the master gone: the replicas resume and fail over", func(t *testing.T) {
		if out, code := cli(t, "pause", "--config", g.nodes[1].confPath()); code != 0 {
			t.Fatalf("pause: exit %d\n%s", code, out)
		}
		redisPid, sentPid := master.pid(t, "redis"), master.pid(t, "sentinel")
		master.kill(t) // the agent first: nobody restarts redis
		defer func() {
			if t.Failed() { // no agent left to stop the sentinel it outlived
				_ = syscall.Kill(sentPid, syscall.SIGKILL)
			}
		}()
		_ = syscall.Kill(redisPid, syscall.SIGKILL)
		time.Sleep(5 * time.Second) // down_after 2 s: a failover would be under way
		for _, n := range g.nodes {
			if n != master && g.role(n) == "master" {
				t.Fatalf("node %d promoted while paused", n.i)
			}
		}
		out, code := cli(t, "resume", "--config", g.nodes[1].confPath())
		t.Logf("%s", strings.TrimSpace(out))
		if code != 0 {
			t.Fatalf("resume without a master: exit %d", code)
		}
		next := g.waitNewMaster(t, master, 30*time.Second, "a new master after the resume")
		master.start(t)
		if m := g.waitConverged(60 * time.Second); m != next {
			t.Fatalf("converged on node %d, want node %d", m.i, next.i)
		}
		if p, _ := groupPaused(t, master); p {
			t.Error("the returning old master brought the pause back")
		}
	})
}

// TestRollingRestart: restart --rolling restarts every redis, the master
// last after one switchover, and loses nothing; restart --rolling --pending
// restarts only the boxes whose redis binary was replaced on disk.
func TestRollingRestart(t *testing.T) {
	g := newGroup(t, 6480, "5s")
	// Each box its own copy of redis-server, to replace on some boxes only.
	real, err := filepath.EvalSymlinks("/usr/bin/redis-server")
	if err != nil {
		t.Fatal(err)
	}
	bin := func(n *agentProc) string { return filepath.Join(n.dir, "redis-server") }
	for _, n := range g.nodes {
		copyFile(t, real, bin(n))
		dropin := fmt.Sprintf("[redis]\nbinary = %q\n", bin(n))
		if err := os.WriteFile(filepath.Join(n.dir, "conf.d", "20-binary.conf"), []byte(dropin), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g.startAll()
	master := g.waitConverged(60 * time.Second)
	pids := func() map[int]int {
		m := map[int]int{}
		for _, n := range g.nodes {
			m[n.i] = n.pid(t, "redis")
		}
		return m
	}

	t.Run("rolling", func(t *testing.T) {
		before := pids()
		w := startWriter(t, g)
		testutil.WaitUntil(t, 10*time.Second, "writes flowing", func() bool { return w.ackedCount() > 200 })
		began := time.Now()
		out, code := cli(t, "restart", "--rolling", "--config", g.nodes[1].confPath())
		t.Logf("restart --rolling (%s):\n%s", time.Since(began).Round(time.Millisecond), strings.TrimSpace(out))
		if code != 0 {
			t.Fatalf("restart --rolling: exit %d", code)
		}
		m := g.waitConverged(30 * time.Second)
		if m == master {
			t.Errorf("the master is still node %d: it should have switched over before its restart", m.i)
		}
		after := pids()
		for i, p := range before {
			if after[i] == p {
				t.Errorf("node %d: redis pid %d unchanged: not restarted", i, p)
			}
		}
		before2 := w.ackedCount()
		testutil.WaitUntil(t, 10*time.Second, "writes on the new master", func() bool { return w.ackedCount() > before2+100 })
		w.halt()
		lost := w.lost(t, g.client(m))
		t.Logf("acknowledged writes: %d, lost: %d, errors: %d", w.ackedCount(), len(lost), w.errors)
		if len(lost) > 0 {
			t.Fatalf("restart --rolling lost %d acknowledged writes", len(lost))
		}
		master = m
	})

	t.Run("pending", func(t *testing.T) {
		out, code := cli(t, "restart", "--rolling", "--pending", "--config", g.nodes[0].confPath())
		if code != 0 || strings.Contains(out, "restarted") {
			t.Fatalf("restart --pending with nothing pending: exit %d\n%s", code, out)
		}
		// An upgrade of redis-server on two boxes, the master's among them.
		var replaced []*agentProc
		for _, n := range g.nodes {
			if n == master || len(replaced) == 0 {
				replaced = append(replaced, n)
			}
		}
		for _, n := range replaced {
			copyFile(t, real, bin(n)+".dpkg-new")
			if err := os.Rename(bin(n)+".dpkg-new", bin(n)); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range g.nodes {
			want := "0"
			if slices.Contains(replaced, n) {
				want = "1"
			}
			testutil.WaitUntil(t, 5*time.Second, fmt.Sprintf("node %d: redis_ha_pending_restart %s", n.i, want), func() bool {
				return metric(n, "redis_ha_pending_restart") == want
			})
		}
		st, _ := cli(t, "status", "--config", g.nodes[1].confPath())
		if strings.Count(st, "restart pending on") != 2 {
			t.Errorf("status does not list the two pending restarts:\n%s", st)
		}
		before := pids()
		out, code = cli(t, "restart", "--rolling", "--pending", "--config", g.nodes[1].confPath())
		t.Logf("restart --rolling --pending:\n%s", strings.TrimSpace(out))
		if code != 0 {
			t.Fatalf("restart --rolling --pending: exit %d", code)
		}
		after := pids()
		for _, n := range g.nodes {
			if restarted := after[n.i] != before[n.i]; restarted != slices.Contains(replaced, n) {
				t.Errorf("node %d: restarted %v, replaced binary %v", n.i, restarted, slices.Contains(replaced, n))
			}
			testutil.WaitUntil(t, 5*time.Second, fmt.Sprintf("node %d: nothing pending", n.i), func() bool {
				return metric(n, "redis_ha_pending_restart") == "0"
			})
		}
		g.waitConverged(30 * time.Second)
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestDrain: the master's box drained hands its role over and is never
// promoted, across an agent restart, until undrained; draining a second box
// of three is refused, since the group would have nobody to fail over to.
func TestDrain(t *testing.T) {
	g := newGroup(t, 6480, "2s")
	g.startAll()
	master := g.waitConverged(60 * time.Second)

	w := startWriter(t, g)
	testutil.WaitUntil(t, 10*time.Second, "writes flowing", func() bool { return w.ackedCount() > 200 })
	out, code := cli(t, "drain", "--config", master.confPath())
	t.Logf("drain on the master's box: %s", strings.TrimSpace(out))
	if code != 0 {
		t.Fatalf("drain: exit %d", code)
	}
	next := g.waitConverged(30 * time.Second)
	if next == master {
		t.Fatal("the drained box is still the master")
	}
	if p := g.priority(master); p != "0" || metric(master, "redis_ha_drained") != "1" {
		t.Errorf("drained box: replica-priority %s, redis_ha_drained %s", p, metric(master, "redis_ha_drained"))
	}
	w.halt()
	if lost := w.lost(t, g.client(next)); len(lost) > 0 {
		t.Errorf("drain lost %d acknowledged writes", len(lost))
	}

	var third *agentProc
	for _, n := range g.nodes {
		if n != master && n != next {
			third = n
		}
	}
	out, code = cli(t, "drain", "--config", third.confPath())
	if code != 1 || !strings.Contains(out, "promotable") {
		t.Errorf("draining a second box of three: exit %d, want 1 and a refusal naming the promotable replicas:\n%s", code, out)
	}
	t.Logf("second drain: %s", strings.TrimSpace(out))

	master.kill(t)
	master.start(t)
	testutil.WaitUntil(t, 30*time.Second, "the drained box's agent back", func() bool { return metric(master, "redis_ha_up") == "1" })
	if p := g.priority(master); p != "0" || metric(master, "redis_ha_drained") != "1" {
		t.Errorf("drained box after an agent restart: replica-priority %s, redis_ha_drained %s", p, metric(master, "redis_ha_drained"))
	}

	// The master fails: the drained box is passed over for the third.
	if err := syscall.Kill(next.pid(t, "redis"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if m := g.waitConverged(60 * time.Second); m != third {
		t.Fatalf("after the master's redis died the group converged on node %d, want node %d (the other is drained)", m.i, third.i)
	}

	out, code = cli(t, "undrain", "--config", master.confPath())
	if code != 0 {
		t.Fatalf("undrain: exit %d\n%s", code, out)
	}
	testutil.WaitUntil(t, 5*time.Second, "priority back", func() bool {
		return g.priority(master) == "100" && metric(master, "redis_ha_drained") == "0"
	})

	// check compares the boxes' peer lists.
	out, _ = cli(t, "check", "--config", g.nodes[0].confPath())
	if !strings.Contains(out, "every box lists the same 3 peers") {
		t.Errorf("check with every peer list alike:\n%s", out)
	}
	odd := g.nodes[2]
	dropin := filepath.Join(odd.dir, "conf.d", "30-peers.conf")
	peers := `[cluster]
peers = ["127.0.0.1:6481", "127.0.0.1:6482", "127.0.0.1:6483", "127.0.0.1:6484"]
`
	if err := os.WriteFile(dropin, []byte(peers), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.WaitUntil(t, 10*time.Second, "check to see the odd peer list", func() bool {
		out, code = cli(t, "check", "--config", g.nodes[0].confPath())
		return code == 1 && strings.Contains(out, "FAIL  peer 127.0.0.1:6483 lists peers [127.0.0.1:6481, 127.0.0.1:6482, 127.0.0.1:6483, 127.0.0.1:6484]")
	})
	t.Logf("check with one box's peer list edited:\n%s", out)
}
