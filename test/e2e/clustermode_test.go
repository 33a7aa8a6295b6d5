package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
	"github.com/redis-ha-agent/redis-ha-agent/test/faultcheck"
)

// clusterStory is the user's story with `mode = "cluster"` added to its
// drop-in, as PRODUCT.md's "Redis Cluster mode" asks of a user.
var clusterStory = strings.Replace(story, "bootstrap_primary = \"10.88.0.11\"\n",
	"bootstrap_primary = \"10.88.0.11\"\nmode = \"cluster\"\n", 1)

// clusterGroup is three boxes in cluster mode, two instances each: box i's
// 6379 the master of shard i, its 6380 the replica of the previous box's.
type clusterGroup struct {
	b      *box.Bench
	boxes  []*box.Box
	target faultcheck.ClusterTarget
}

// clusterStatusJSON is `status --json` in cluster mode, the fields read here.
type clusterStatusJSON struct {
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
		NodeID   string `json:"node_id"`
	} `json:"instances"`
}

func (cg *clusterGroup) status(ctx context.Context, bx *box.Box) (clusterStatusJSON, error) {
	var cs clusterStatusJSON
	out, _, err := bx.Exec(ctx, "redis-ha-agent", "status", "--json")
	if c := box.ExitCode(err); c != 0 && c != 1 {
		return cs, err
	}
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		return cs, fmt.Errorf("status --json on %s: %v: %q", bx.Name, err, out)
	}
	return cs, nil
}

// planned is nil when, in the view of the first box of boxes that answers,
// the cluster is healthy and laid out as planned.
func (cg *clusterGroup) planned(ctx context.Context) error {
	var cs clusterStatusJSON
	var err error
	for _, bx := range cg.boxes {
		if cs, err = cg.status(ctx, bx); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	if !cs.Healthy || len(cs.Notes) > 0 {
		return fmt.Errorf("healthy %v, problems %q, notes %q", cs.Healthy, cs.Problems, cs.Notes)
	}
	role := map[string][2]string{}
	for _, is := range cs.Instances {
		role[is.Instance] = [2]string{is.Role, is.Master}
	}
	for i, bx := range cg.boxes {
		m, r := bx.Addr+":6379", bx.Addr+":6380"
		prev := cg.boxes[(i+2)%3].Addr + ":6379"
		if role[m][0] != "master" || role[r] != [2]string{"replica", prev} {
			return fmt.Errorf("%s is %v, %s is %v", m, role[m], r, role[r])
		}
	}
	return nil
}

func (cg *clusterGroup) waitPlanned(t *testing.T, ctx context.Context, timeout time.Duration) {
	t.Helper()
	if err := eventually(ctx, timeout, cg.planned); err != nil {
		t.Fatalf("cluster not as planned after %s: %v", timeout, err)
	}
}

func newClusterGroup(t *testing.T, ctx context.Context) *clusterGroup {
	t.Helper()
	b := newBench(t)
	cg := &clusterGroup{b: b, boxes: b.Boxes("n1", "n2", "n3")}
	for _, bx := range cg.boxes {
		debianRedisRunning(t, ctx, bx)
	}
	for _, bx := range cg.boxes {
		start := time.Now()
		if out, errOut, err := bx.ExecInput(ctx, []byte(clusterStory), nil, "sh", "-ex"); err != nil {
			t.Fatalf("box %s: the story failed: %v\n%s%s", bx.Name, err, out, errOut)
		}
		t.Logf("box %s: story done in %s", bx.Name, time.Since(start).Round(100*time.Millisecond))
		cg.target.Addrs = append(cg.target.Addrs, bx.Addr+":6379", bx.Addr+":6380")
	}
	cg.target.Password, cg.target.Dialer = password, b.ClientDial
	start := time.Now()
	cg.waitPlanned(t, ctx, 2*time.Minute)
	t.Logf("cluster as planned %s after the last story", time.Since(start).Round(100*time.Millisecond))
	return cg
}

// clusterFault is one fault of the cluster table: what it may lose, the
// owner changes it needs (a failover and the failback that restores the
// plan count two), and how it is done.
type clusterFault struct {
	name      string
	lost      int
	failovers int
	bound     time.Duration // the hit shard's outage (tuned client), reported
	inject    func(t *testing.T, ctx context.Context, cg *clusterGroup)
}

// clusterRow is one line of the cluster table.
type clusterRow struct {
	name                          string
	failover                      time.Duration // fault to the first owner change a majority of instances showed
	defOut, tunedOut, others      time.Duration
	defLost, tunedLost, failovers int
	bound                         time.Duration
}

// run writes through two cluster clients in the client namespace (go-redis
// defaults, and one tuned to see the servers), from 5 s before the fault
// until 30 s after the cluster is back as planned, and asserts what must
// hold: lost within bounds, the other shards writing throughout, exactly
// the owner changes needed, the plan back.
func (cg *clusterGroup) run(t *testing.T, ctx context.Context, f clusterFault) clusterRow {
	watch := faultcheck.WatchOwners(ctx, cg.target)
	def := faultcheck.StartCluster(ctx, cg.target, 200)
	tuned := faultcheck.StartClusterTuned(ctx, cg.target, 200)
	time.Sleep(5 * time.Second)
	def.MarkFault(f.name)
	tuned.MarkFault(f.name)
	faultAt := time.Now()
	f.inject(t, ctx, cg)
	back := time.Now()
	cg.waitPlanned(t, ctx, 3*time.Minute)
	t.Logf("%s: planned layout back %s after the fault's end", f.name, time.Since(back).Round(100*time.Millisecond))
	time.Sleep(30 * time.Second)
	logs := []*faultcheck.WriteLog{def.Stop(), tuned.Stop()}
	changes := watch.Stop()
	row := clusterRow{name: f.name, failovers: len(changes), bound: f.bound}
	if first := watch.First(); !first.IsZero() {
		row.failover = first.Sub(faultAt)
	}
	for _, l := range logs {
		rep, err := faultcheck.ClusterCheck(ctx, cg.target, l, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		worst, others := rep.Worst()
		t.Logf("%s, %s client: acked %d, failed %d, lost %d, shard %d-%d out %s, others %s, converged %v (%s)",
			f.name, l.Client, rep.Acked, rep.Failed, rep.Lost, worst.From, worst.To, worst.LongestOutage.Round(time.Millisecond),
			others.Round(time.Millisecond), rep.Converged, rep.ConvergeDetail)
		if rep.Lost > f.lost {
			t.Errorf("%s, %s client: lost %d acknowledged writes (%q), want ≤ %d", f.name, l.Client, rep.Lost, rep.LostKeys, f.lost)
		}
		if l.Client == faultcheck.ClientDefault && others > time.Second { // the tuned client's short timeouts trip on stalls
			t.Errorf("%s, %s client: the shards not hit had no write acknowledged for %s", f.name, l.Client, others)
		}
		if !rep.Converged {
			t.Errorf("%s: not converged: %s", f.name, rep.ConvergeDetail)
		}
		if l.Client == faultcheck.ClientTuned {
			row.tunedOut, row.tunedLost, row.others = worst.LongestOutage, rep.Lost, max(row.others, others)
		} else {
			row.defOut, row.defLost, row.others = worst.LongestOutage, rep.Lost, max(row.others, others)
		}
	}
	t.Logf("%s: owner changes %q", f.name, changes)
	if len(changes) != f.failovers {
		t.Errorf("%s: %d owner changes %q, want %d", f.name, len(changes), changes, f.failovers)
	}
	return row
}

func clusterTable(rows []clusterRow) string {
	var b strings.Builder
	b.WriteString("| fault | new master seen | hit shard, tuned client | hit shard, default client | other shards | lost (default / tuned) | owner changes | goal |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		goal := "—"
		if r.bound > 0 {
			goal = "≤ " + r.bound.String()
		}
		seen := "—"
		if r.failover > 0 {
			seen = fmt.Sprintf("%.2f s", r.failover.Seconds())
		}
		fmt.Fprintf(&b, "| %s | %s | %.2f s | %.2f s | %.2f s | %d / %d | %d | %s |\n", r.name, seen,
			r.tunedOut.Seconds(), r.defOut.Seconds(), r.others.Seconds(), r.defLost, r.tunedLost, r.failovers, goal)
	}
	return b.String()
}

// pidOf is the pid in an instance's pid file on bx.
func pidOf(t *testing.T, ctx context.Context, bx *box.Box, port int) string {
	return shIn(t, ctx, bx, fmt.Sprintf("cat /run/redis-ha/redis-%d.pid", port))
}

// TestClusterMode is the user's story with mode = "cluster" on three boxes,
// then the faults of issue #14 with a cluster writer running, a switchover
// of every shard, and every box restarted at once.
func TestClusterMode(t *testing.T) {
	requireDeb(t, "RHA_DEB")
	logging.Disable()
	ctx := ctxFor(t, 30*time.Minute)
	cg := newClusterGroup(t, ctx)
	var rows []clusterRow
	t.Cleanup(func() { t.Logf("cluster mode faults:\n%s", clusterTable(rows)) })

	t.Run("story: redis-cli -c across slots, --cluster check", func(t *testing.T) {
		env := []string{"REDISCLI_AUTH=" + password}
		for i := range 20 {
			k := fmt.Sprintf("story:%d", i)
			if out, _, err := cg.b.Client(ctx, env, "redis-cli", "-c", "-h", "10.88.0.11", "SET", k, k); err != nil || strings.TrimSpace(out) != "OK" {
				t.Fatalf("redis-cli -c SET %s: %q, %v", k, out, err)
			}
		}
		for i := range 20 {
			k := fmt.Sprintf("story:%d", i)
			if out, _, err := cg.b.Client(ctx, env, "redis-cli", "-c", "-h", "10.88.0.13", "GET", k); err != nil || strings.TrimSpace(out) != k {
				t.Fatalf("redis-cli -c GET %s: %q, %v", k, out, err)
			}
		}
		out, _, err := cg.b.Client(ctx, env, "redis-cli", "--cluster", "check", "10.88.0.12:6379")
		t.Logf("redis-cli --cluster check 10.88.0.12:6379:\n%s", out)
		if err != nil || !strings.Contains(out, "[OK] All 16384 slots covered.") || strings.Contains(out, "[ERR]") {
			t.Errorf("redis-cli --cluster check: %v", err)
		}
		if m, s := len(regexp.MustCompile(`(?m)^M: `).FindAllString(out, -1)), len(regexp.MustCompile(`(?m)^S: `).FindAllString(out, -1)); m != 3 || s != 3 {
			t.Errorf("redis-cli --cluster check lists %d masters and %d replicas, want 3 and 3", m, s)
		}
		cs, err := cg.status(ctx, cg.boxes[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range cs.Instances {
			if is.Role == "replica" && strings.Split(is.Master, ":")[0] == strings.Split(is.Instance, ":")[0] {
				t.Errorf("%s replicates %s on its own box", is.Instance, is.Master)
			}
		}
		st, _, _ := cg.boxes[1].Exec(ctx, "redis-ha-agent", "status")
		t.Logf("redis-ha-agent status on n2:\n%s", st)
		for _, bx := range cg.boxes {
			p := show(t, ctx, bx, unit, "ActiveState", "SubState", "NRestarts", "StatusText")
			if p["ActiveState"] != "active" || p["NRestarts"] != "0" {
				t.Errorf("box %s: %v", bx.Name, p)
			}
			t.Logf("box %s: STATUS=%s", bx.Name, p["StatusText"])
		}
	})
	if t.Failed() {
		return
	}

	faults := []clusterFault{
		{name: "master instance killed (-9)", lost: 10, failovers: 2, bound: downAfter + time.Second,
			inject: func(t *testing.T, ctx context.Context, cg *clusterGroup) {
				shIn(t, ctx, cg.boxes[0], "kill -9 "+pidOf(t, ctx, cg.boxes[0], 6379))
			}},
		{name: "box powered off (booted again)", lost: 10, failovers: 2, bound: downAfter + time.Second,
			inject: func(t *testing.T, ctx context.Context, cg *clusterGroup) {
				m := cg.boxes[2]
				if err := m.PowerOff(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(offFor)
				if err := box.BootAll(ctx, m); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "box cut off 15 s; client on the majority side", lost: 10, failovers: 2, bound: downAfter + time.Second,
			inject: func(t *testing.T, ctx context.Context, cg *clusterGroup) {
				if err := cg.b.Cut([]string{"n2"}, []string{"n1", "n3", "client"}); err != nil {
					t.Fatal(err)
				}
				time.Sleep(partition)
				if err := cg.b.Heal(); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "agent killed (-9)", lost: 0, failovers: 0,
			inject: func(t *testing.T, ctx context.Context, cg *clusterGroup) {
				killAgent(t, ctx, nil, cg.boxes[1], nil)
			}},
	}
	for i := range cg.boxes {
		replica := cg.boxes[(i+1)%3].Addr + ":6380"
		master := cg.boxes[i].Addr + ":6379"
		faults = append(faults, clusterFault{name: fmt.Sprintf("switchover --to %s and back", replica), lost: 0, failovers: 2, bound: time.Second,
			inject: func(t *testing.T, ctx context.Context, cg *clusterGroup) {
				for _, to := range []string{replica, master} {
					out := shIn(t, ctx, cg.boxes[0], "redis-ha-agent switchover --to "+to+" 2>&1")
					t.Logf("switchover --to %s: %s", to, strings.TrimSpace(out))
					if strings.Contains(out, "already") { // the agents undid the switchover before
						t.Errorf("switchover --to %s: %s", to, out)
					}
					time.Sleep(5 * time.Second)
				}
			}})
	}
	for _, f := range faults {
		if !t.Run(f.name, func(t *testing.T) { rows = append(rows, cg.run(t, ctx, f)) }) {
			return
		}
	}

	t.Run("every box restarted at once", func(t *testing.T) {
		before := map[string]string{}
		cs, err := cg.status(ctx, cg.boxes[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range cs.Instances {
			before[is.Instance] = is.NodeID
		}
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cg.target.Addrs, Password: password, Dialer: cg.b.ClientDial})
		defer c.Close()
		for i := range 1000 {
			if err := c.Set(ctx, fmt.Sprintf("restart:%d", i), i, 0).Err(); err != nil {
				t.Fatalf("set: %v", err)
			}
		}
		done := make(chan error, len(cg.boxes))
		for _, bx := range cg.boxes {
			go func() { done <- bx.Stop(time.Minute) }()
		}
		for range cg.boxes {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
		start := time.Now()
		if err := box.BootAll(ctx, cg.boxes...); err != nil {
			t.Fatal(err)
		}
		cg.waitPlanned(t, ctx, 3*time.Minute)
		t.Logf("all three boxes rebooted: cluster as planned %s after boot began", time.Since(start).Round(100*time.Millisecond))
		cs, err = cg.status(ctx, cg.boxes[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range cs.Instances {
			if before[is.Instance] != is.NodeID {
				t.Errorf("%s: node id %s, was %s: not the same cluster", is.Instance, is.NodeID, before[is.Instance])
			}
		}
		c2 := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cg.target.Addrs, Password: password, Dialer: cg.b.ClientDial})
		defer c2.Close()
		for i := range 1000 {
			if v, err := c2.Get(ctx, fmt.Sprintf("restart:%d", i)).Int(); err != nil || v != i {
				t.Fatalf("after the reboot, restart:%d: %d, %v", i, v, err)
			}
		}
	})
}

// TestClusterModeOverData: a sentinel group that holds data, switched to
// cluster mode by its drop-in, refuses to start (exit 78, the reason in the
// journal) instead of creating an empty cluster beside the data; switched
// back, the group serves its data again.
func TestClusterModeOverData(t *testing.T) {
	requireDeb(t, "RHA_DEB")
	logging.Disable()
	ctx := ctxFor(t, 15*time.Minute)
	fg := newFaultGroup(t, ctx)
	const master = "10.88.0.11:6379"
	for i := range 100 {
		if out, err := fg.client(ctx, master, "SET", fmt.Sprintf("kept:%d", i), "v"); err != nil || out != "OK" {
			t.Fatalf("SET: %q, %v", out, err)
		}
	}
	toMode := func(mode string) {
		for _, bx := range fg.boxes {
			shIn(t, ctx, bx, `sed -i '/^mode = /d' /etc/redis-ha/conf.d/10-cluster.conf && sed -i 's/^bootstrap_primary = .*/&\nmode = "`+mode+`"/' /etc/redis-ha/conf.d/10-cluster.conf`)
		}
		done := make(chan error, len(fg.boxes))
		for _, bx := range fg.boxes {
			go func() { _, _, err := bx.Exec(ctx, "systemctl", "restart", unit); done <- err }()
		}
		for range fg.boxes {
			<-done // a refusal fails the restart: read the unit below
		}
	}
	toMode("cluster")
	for _, bx := range fg.boxes {
		err := eventually(ctx, time.Minute, func(ctx context.Context) error {
			p, err := props(ctx, bx, unit, "ActiveState", "ExecMainStatus")
			if err != nil {
				return err
			}
			if p["ActiveState"] != "failed" || p["ExecMainStatus"] != "78" {
				return fmt.Errorf("box %s: unit %v, want failed with status 78", bx.Name, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ok, journal := journalHas(ctx, bx, regexp.MustCompile(`holds sentinel mode's data`))
		if !ok {
			t.Errorf("box %s: the journal does not say why:\n%s", bx.Name, journal)
		}
	}
	line, _, _ := fg.boxes[0].Sh(ctx, "journalctl -u "+unit+" -b --no-pager -o cat | grep -m1 'refusing to start'")
	t.Logf("n1's journal: %s", strings.TrimSpace(line))

	toMode("sentinel")
	m, err := fg.settled(ctx, "", settleLimit)
	if err != nil {
		t.Fatal(err)
	}
	n, err := fg.client(ctx, m, "DBSIZE")
	if err != nil || n != "100" {
		t.Errorf("back in sentinel mode, master %s holds %q keys (%v), want 100", m, n, err)
	}
}
