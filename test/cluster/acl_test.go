package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
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
		// A password file per box, so that a new password can roll
		// through the group box by box as it would on real boxes.
		pw := filepath.Join(n.dir, "password")
		if err := os.WriteFile(pw, []byte(password+"\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.dir, "conf.d", "20-acl.conf"), []byte("[auth]\nacl = true\npassword_file = \""+pw+"\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g.startAll()
	master := g.waitConverged(90 * time.Second)
	ctx := context.Background()

	// aclLogs fails the test for every command refused since the last
	// call, but the agents' tries of a new secret while it rolls (a box
	// that has not reloaded yet refuses it: that is what they ask).
	aclLogs := func(t *testing.T) {
		t.Helper()
		for _, n := range g.nodes {
			for what, do := range map[string]func(...any) ([]any, error){
				"redis": func(a ...any) ([]any, error) { return g.client(n).Do(ctx, a...).Slice() },
				"sentinel": func(a ...any) ([]any, error) {
					cmd := redis.NewSliceCmd(ctx, a...)
					_ = g.sentinelClient(n).Process(ctx, cmd)
					return cmd.Result()
				},
			} {
				v, err := do("ACL", "LOG")
				for _, e := range v {
					if s := fmt.Sprint(e); !strings.Contains(s, "reason:auth") || !strings.Contains(s, "username:agent") {
						t.Errorf("node %d: %s refused: %s", n.i, what, s)
					}
				}
				if err != nil {
					t.Errorf("node %d: %s ACL LOG: %v", n.i, what, err)
				}
				_, _ = do("ACL", "LOG", "RESET")
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
			{"agent", []any{"GET", "k"}}, {"agent", []any{"FLUSHALL"}}, {"agent", []any{"MODULE", "LIST"}}} {
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

	t.Run("a new password rolls through the group box by box without an outage", func(t *testing.T) {
		rollPassword(t, g, aclLogs)
	})

	t.Run("the secrets are nowhere but the generated files", func(t *testing.T) {
		var secrets []string
		for _, pw := range []string{password, newPassword} {
			secrets = append(secrets, pw)
			for _, u := range []string{sentinel.ReplicaUser, sentinel.SentinelUser, sentinel.AgentUser} {
				secrets = append(secrets, sentinel.DeriveSecret(pw, "main", u))
			}
		}
		for _, n := range g.nodes {
			for _, f := range []string{"redis.conf", "sentinel.conf"} {
				fi, err := os.Stat(filepath.Join(n.dir, "data", f))
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("node %d: %s: %v %v", n.i, f, fi.Mode(), err)
				}
			}
			for _, s := range secrets {
				if strings.Contains(n.log(), s) {
					t.Errorf("node %d's log holds a secret or password", n.i)
				}
			}
		}
	})
}

// rollPassword writes a new password file on each box in turn, five seconds
// apart, while a client writes with the old password, and samples every
// 200 ms that every replica's link is up, every sentinel counts all three
// and the master is not fenced. Once the rotation is done the old password
// is refused and the new one works.
const newPassword = "n3w-s3cret"

func rollPassword(t *testing.T, g *group, aclLogs func(*testing.T)) {
	ctx := context.Background()
	w := startWriter(t, g)
	testutil.WaitUntil(t, 10*time.Second, "writes flowing", func() bool { return w.ackedCount() > 200 })
	stop := make(chan struct{})
	done := make(chan []string)
	go func() {
		var bad []string
		for {
			select {
			case <-stop:
				done <- bad
				return
			case <-time.After(200 * time.Millisecond):
			}
			m, why := g.converged()
			if m == nil {
				bad = append(bad, time.Now().Format("15:04:05.000 ")+why)
				continue
			}
			if v, _ := g.client(m).ConfigGet(ctx, "min-replicas-to-write").Result(); v["min-replicas-to-write"] != "1" {
				bad = append(bad, time.Now().Format("15:04:05.000 ")+"master fenced")
			}
		}
	}()
	for _, n := range g.nodes {
		if err := os.WriteFile(filepath.Join(n.dir, "password"), []byte(newPassword+"\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
	}
	testutil.WaitUntil(t, 30*time.Second, "every agent uses the new secrets", func() bool {
		for _, n := range g.nodes {
			if !strings.Contains(n.log(), "every box accepts the new secrets") {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second)
	close(stop)
	bad := <-done
	w.halt()
	t.Logf("writes with the old password through the roll: %d acknowledged, %d errors %q; %d samples not converged", w.ackedCount(), w.errors, w.firstErrs, len(bad))
	if len(bad) > 0 {
		t.Errorf("the group was not whole during the roll:\n%s", strings.Join(bad[:min(len(bad), 20)], "\n"))
	}
	if w.errors > 0 {
		for _, n := range g.nodes {
			t.Logf("node %d:\n%s", n.i, testutil.Tail(n.log(), 60))
		}
	}
	aclLogs(t)
	testutil.WaitUntil(t, 60*time.Second, "the old password refused", func() bool {
		return g.client(g.nodes[0]).Ping(ctx).Err() != nil
	})
	for _, n := range g.nodes {
		c := redis.NewClient(&redis.Options{Addr: n.addr(), Password: newPassword, TLSConfig: g.tls, MaxRetries: -1})
		if err := c.Ping(ctx).Err(); err != nil {
			t.Errorf("node %d: the new password: %v", n.i, err)
		}
		c.Close()
		if !strings.Contains(n.log(), "password rotation done") {
			t.Errorf("node %d: rotation not done", n.i)
		}
	}
}
