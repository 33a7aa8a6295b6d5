package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// TestACL: a group with auth.acl and tls.enabled. Replication, the
// sentinels and the agents each use a user of their own, allowed only what
// it needs: a failover and a switchover go through with no command refused
// (ACL LOG stays empty on every redis and sentinel), the clients' password
// still works, and the users cannot do more.
func TestACL(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: three real agents")
	}
	ca := testutil.NewCA(t)
	g := newGroupTLS(t, 6750, "2s", ca)
	for _, n := range g.nodes {
		if err := os.WriteFile(filepath.Join(n.dir, "conf.d", "20-acl.conf"), []byte("[auth]\nacl = true\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g.startAll()
	master := g.waitConverged(90 * time.Second)
	ctx := context.Background()

	aclLogs := func(t *testing.T) {
		t.Helper()
		for _, n := range g.nodes {
			if v, err := g.client(n).Do(ctx, "ACL", "LOG").Slice(); err != nil || len(v) > 0 {
				t.Errorf("node %d: redis ACL LOG: %v %v", n.i, v, err)
			}
			cmd := redis.NewSliceCmd(ctx, "ACL", "LOG")
			_ = g.sentinelClient(n).Process(ctx, cmd)
			if v, err := cmd.Result(); err != nil || len(v) > 0 {
				t.Errorf("node %d: sentinel ACL LOG: %v %v", n.i, v, err)
			}
		}
	}

	t.Run("users and what they may do", func(t *testing.T) {
		users, err := g.client(master).Do(ctx, "ACL", "USERS").StringSlice()
		if err != nil || strings.Join(users, " ") != "agent default replica sentinel" {
			t.Fatalf("ACL USERS: %v, %v", users, err)
		}
		rc := g.client(master)
		for _, c := range []struct {
			user string
			cmd  []any
		}{{"replica", []any{"SET", "k", "v"}}, {"replica", []any{"CONFIG", "SET", "maxmemory", "1"}},
			{"sentinel", []any{"FLUSHALL"}}, {"sentinel", []any{"CONFIG", "SET", "dir", "/tmp"}},
			{"agent", []any{"GET", "k"}}, {"agent", []any{"ACL", "SETUSER", "x"}}, {"agent", []any{"MODULE", "LIST"}}} {
			v, err := rc.Do(ctx, append([]any{"ACL", "DRYRUN", c.user}, c.cmd...)...).Text()
			if err != nil || v == "OK" {
				t.Errorf("%s may run %v: %q %v", c.user, c.cmd, v, err)
			}
		}
		if v, _ := rc.Do(ctx, "ACL", "DRYRUN", "replica", "PSYNC", "?", "-1").Text(); v != "OK" {
			t.Errorf("replica may not PSYNC: %q", v)
		}
		// Each user in use where it should be: the replicas, the sentinels
		// and the agents on the master; the other sentinels and the agent on
		// each sentinel.
		testutil.WaitUntil(t, 10*time.Second, "every user connected", func() bool {
			list, _ := rc.ClientList(ctx).Result()
			cmd := redis.NewStringCmd(ctx, "CLIENT", "LIST")
			_ = g.sentinelClient(master).Process(ctx, cmd)
			slist, _ := cmd.Result()
			return strings.Count(list, "user=replica ") == 2 && strings.Count(list, "user=sentinel ") >= 3 &&
				strings.Contains(list, "user=agent ") && strings.Count(slist, "user=sentinel ") >= 2 && strings.Contains(slist, "user=agent ")
		})
	})

	t.Run("kill -9 of the master's redis, then a switchover: nothing refused", func(t *testing.T) {
		w := startWriter(t, g)
		testutil.WaitUntil(t, 10*time.Second, "writes flowing", func() bool { return w.ackedCount() > 200 })
		if err := syscall.Kill(master.pid(t, "redis"), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		next := master
		testutil.WaitUntil(t, 60*time.Second, "a new master", func() bool {
			m, _ := g.converged()
			if m != nil && m != master {
				next = m
				return true
			}
			return false
		})
		out, code := cli(t, "switchover", "--config", next.confPath())
		t.Logf("switchover: %s", strings.TrimSpace(out))
		if code != 0 {
			t.Fatalf("switchover: exit %d", code)
		}
		last := g.waitConverged(60 * time.Second)
		time.Sleep(time.Second)
		w.halt()
		lost := w.lost(t, g.client(last))
		t.Logf("node %d → %d → %d; acknowledged writes: %d, lost: %d, errors: %d", master.i, next.i, last.i, w.ackedCount(), len(lost), w.errors)
		if len(lost) > 10 {
			t.Errorf("%d acknowledged writes lost", len(lost))
		}
		aclLogs(t)
	})

	t.Run("the secrets are nowhere but the generated files", func(t *testing.T) {
		for _, n := range g.nodes {
			for _, f := range []string{"redis.conf", "sentinel.conf"} {
				fi, err := os.Stat(filepath.Join(n.dir, "data", f))
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("node %d: %s: %v %v", n.i, f, fi.Mode(), err)
				}
			}
			if strings.Contains(n.log(), "masterauth") || strings.Contains(n.log(), "auth-pass") {
				t.Errorf("node %d's log mentions a secret's directive", n.i)
			}
		}
	})
}
