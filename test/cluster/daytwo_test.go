package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
		redisPid := master.pid(t, "redis")
		master.kill(t) // the agent first: nobody restarts redis
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
		var next *agentProc
		testutil.WaitUntil(t, 30*time.Second, "a new master after the resume", func() bool {
			for _, n := range g.nodes {
				if n != master && g.role(n) == "master" && g.sentinelMaster(n) == n.addr() {
					next = n
					return true
				}
			}
			return false
		})
		master.start(t)
		if m := g.waitConverged(60 * time.Second); m != next {
			t.Fatalf("converged on node %d, want node %d", m.i, next.i)
		}
		if p, _ := groupPaused(t, master); p {
			t.Error("the returning old master brought the pause back")
		}
	})
}
