package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
	"github.com/redis-ha-agent/redis-ha-agent/test/faultcheck"
)

// forgetLimit is issue #12's bound: from the last box's edit of its peers
// until every sentinel lists exactly the current boxes.
const forgetLimit = 60 * time.Second

// TestMembership: membership changes by editing cluster.peers on every box,
// each measured like a fault (faultGroup.run: the default client writing
// throughout, every sentinel's +switch-master counted, every acknowledged
// key read back): a replica box powered off for good and replaced by a
// fresh box at a new address, then the group grown from three boxes to
// five, then shrunk back to three. Each time: nothing lost, no failover,
// and within forgetLimit of the last edit every sentinel lists exactly the
// current boxes, with the quorum and the master's min-replicas-to-write of
// the new size.
func TestMembership(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	lockBench(t)
	ctx := ctxFor(t, 40*time.Minute)
	fg := newFaultGroup(t, ctx)
	var reps []faultcheck.Report
	var took []string
	step := func(name string, change func(t *testing.T, ctx context.Context, m *box.Box, others []*box.Box) time.Time) {
		rep := fg.run(t, ctx, fault{name: name, outage: time.Second,
			inject: func(t *testing.T, ctx context.Context, fg *faultGroup, m *box.Box, others []*box.Box) {
				edited := change(t, ctx, m, others)
				if err := fg.exactly(ctx, m.Addr+":6379", 2*forgetLimit); err != nil {
					t.Fatalf("%s: the sentinels do not list exactly the current boxes %s after the last edit: %v",
						name, time.Since(edited).Round(100*time.Millisecond), err)
				}
				d := time.Since(edited)
				took = append(took, fmt.Sprintf("%-28s %5.1f s", name, d.Seconds()))
				if d > forgetLimit {
					t.Errorf("%s: the sentinels listed exactly the current boxes %s after the last edit; issue #12 says within %s",
						name, d.Round(100*time.Millisecond), forgetLimit)
				}
			}})
		reps = append(reps, rep)
	}

	// n3, a replica, is powered off for good; n4, a fresh box, takes its
	// place at another address.
	step("replace a box (n3 → n4)", func(t *testing.T, ctx context.Context, m *box.Box, others []*box.Box) time.Time {
		gone := fg.named(t, "n3")
		if gone == m {
			t.Fatalf("n3 is the master; the step replaces a replica")
		}
		if err := gone.PowerOff(); err != nil {
			t.Fatal(err)
		}
		fg.dropBoxes(t, gone)
		n4 := fg.addBoxes(t, ctx, []string{"n4"}, []string{"10.88.0.14"})
		return fg.setPeersOn(t, ctx, fg.boxes, n4...)
	})
	step("grow 3 → 5 (n5, n6)", func(t *testing.T, ctx context.Context, m *box.Box, others []*box.Box) time.Time {
		added := fg.addBoxes(t, ctx, []string{"n5", "n6"}, []string{"10.88.0.15", "10.88.0.16"})
		return fg.setPeersOn(t, ctx, fg.boxes, added...)
	})
	step("shrink 5 → 3 (n5, n6 off)", func(t *testing.T, ctx context.Context, m *box.Box, others []*box.Box) time.Time {
		gone := []*box.Box{fg.named(t, "n5"), fg.named(t, "n6")}
		for _, bx := range gone {
			if bx == m {
				t.Fatalf("%s is the master; the step removes replicas", bx.Name)
			}
			if err := bx.PowerOff(); err != nil {
				t.Fatal(err)
			}
		}
		fg.dropBoxes(t, gone...)
		return fg.setPeersOn(t, ctx, fg.boxes)
	})
	t.Logf("membership changes, default client (every sentinel listed when it started):\n%s", faultcheck.Table(reps))
	t.Logf("from the last edit of cluster.peers until every sentinel listed exactly the current boxes:\n  %s", strings.Join(took, "\n  "))
}

// named returns the current box called name.
func (fg *faultGroup) named(t *testing.T, name string) *box.Box {
	t.Helper()
	for _, bx := range fg.boxes {
		if bx.Name == name {
			return bx
		}
	}
	t.Fatalf("no box %s in the group", name)
	return nil
}

// peersOf is cluster.peers for boxes.
func peersOf(boxes []*box.Box) string {
	q := make([]string, len(boxes))
	for i, bx := range boxes {
		q[i] = `"` + bx.Addr + `"`
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// clusterConf is the story's drop-in with the peers of boxes.
func clusterConf(boxes []*box.Box) string {
	return "[cluster]\npeers = " + peersOf(boxes) + "\nbootstrap_primary = \"10.88.0.11\"\n"
}

// addBoxes boots fresh boxes (empty disks, Debian's redis running, as apt
// leaves it) at addrs and replays the user's story on each with the group's
// peers and theirs; the group's boxes, the checker's target and the
// sentinel clients then include them. It returns them.
func (fg *faultGroup) addBoxes(t *testing.T, ctx context.Context, names, addrs []string) []*box.Box {
	t.Helper()
	var added []*box.Box
	for i, name := range names {
		bx, err := fg.b.AddBox(name, addrs[i])
		if err != nil {
			t.Fatal(err)
		}
		added = append(added, bx)
	}
	if err := box.BootAll(ctx, added...); err != nil {
		t.Fatal(err)
	}
	fg.boxes = append(fg.boxes, added...)
	script := strings.Replace(story, `peers = ["10.88.0.11", "10.88.0.12", "10.88.0.13"]`, "peers = "+peersOf(fg.boxes), 1)
	for _, bx := range added {
		debianRedisRunning(t, ctx, bx)
		start := time.Now()
		if out, errOut, err := bx.ExecInput(ctx, []byte(script), nil, "sh", "-ex"); err != nil {
			t.Fatalf("box %s: the story failed: %v\n%s%s", bx.Name, err, out, errOut)
		}
		t.Logf("box %s at %s: installed and started with peers %s in %s", bx.Name, bx.Addr, peersOf(fg.boxes),
			time.Since(start).Round(100*time.Millisecond))
	}
	fg.retarget(t)
	return added
}

// dropBoxes takes boxes out of the group as the test sees it.
func (fg *faultGroup) dropBoxes(t *testing.T, gone ...*box.Box) {
	fg.boxes = slices.DeleteFunc(fg.boxes, func(bx *box.Box) bool { return slices.Contains(gone, bx) })
	for _, bx := range gone {
		if sc, ok := fg.sentinels[bx.Name]; ok {
			sc.Close()
			delete(fg.sentinels, bx.Name)
		}
	}
	fg.retarget(t)
}

// retarget points the checker at the current boxes, and gives the new ones
// a sentinel client.
func (fg *faultGroup) retarget(t *testing.T) {
	fg.target.Sentinels, fg.target.Redis = nil, nil
	for _, bx := range fg.boxes {
		fg.target.Sentinels = append(fg.target.Sentinels, bx.Addr+":26379")
		fg.target.Redis = append(fg.target.Redis, bx.Addr+":6379")
		if _, ok := fg.sentinels[bx.Name]; !ok {
			sc := redis.NewSentinelClient(&redis.Options{
				Addr: bx.Addr + ":26379", Password: password, Dialer: fg.b.ClientDial,
				MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second,
			})
			t.Cleanup(func() { sc.Close() })
			fg.sentinels[bx.Name] = sc
		}
	}
}

// setPeersOn writes the group's current boxes as cluster.peers on every box
// of boxes but skip (whose story wrote them already), as the user edits the
// drop-in, and returns when the last edit was written. The agents reload by
// themselves (the file watch).
func (fg *faultGroup) setPeersOn(t *testing.T, ctx context.Context, boxes []*box.Box, skip ...*box.Box) time.Time {
	t.Helper()
	conf := clusterConf(fg.boxes)
	for _, bx := range boxes {
		if slices.Contains(skip, bx) {
			continue
		}
		if out, errOut, err := bx.ExecInput(ctx, []byte(conf), nil, "sh", "-c", "cat > /etc/redis-ha/conf.d/10-cluster.conf"); err != nil {
			t.Fatalf("box %s: edit peers: %v\n%s%s", bx.Name, err, out, errOut)
		}
	}
	t.Logf("cluster.peers = %s on %d boxes", peersOf(fg.boxes), len(boxes)-len(skip))
	return time.Now()
}

// exactly waits until every current box's sentinel lists exactly the
// current boxes — the others' redis as replicas, the others' sentinels as
// sentinels, whatever their flags — with the quorum of cluster.quorum's
// default, and the master's min-replicas-to-write is that of the group's
// size.
func (fg *faultGroup) exactly(ctx context.Context, master string, timeout time.Duration) error {
	n := len(fg.boxes)
	return eventually(ctx, timeout, func(ctx context.Context) error {
		var errs []error
		for _, bx := range fg.boxes {
			if err := fg.listsExactly(ctx, bx, master, n); err != nil {
				errs = append(errs, fmt.Errorf("sentinel on %s: %v", bx.Name, err))
			}
		}
		out, err := fg.client(ctx, master, "CONFIG", "GET", "min-replicas-to-write")
		if want := fmt.Sprintf("min-replicas-to-write\n%d", n/2); err != nil || out != want {
			errs = append(errs, fmt.Errorf("master: %q, %v; want %q", out, err, want))
		}
		return errors.Join(errs...)
	})
}

func (fg *faultGroup) listsExactly(ctx context.Context, bx *box.Box, master string, n int) error {
	sc := fg.sentinels[bx.Name]
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	m, err := sc.Master(ctx, "main").Result()
	if err != nil {
		return err
	}
	if got := m["ip"] + ":" + m["port"]; got != master || m["quorum"] != fmt.Sprint(n/2+1) {
		return fmt.Errorf("master %s quorum %s; want %s quorum %d", got, m["quorum"], master, n/2+1)
	}
	var wantReps, wantSens []string
	for _, o := range fg.boxes {
		if o.Addr+":6379" != master {
			wantReps = append(wantReps, o.Addr+":6379")
		}
		if o != bx {
			wantSens = append(wantSens, o.Addr+":26379")
		}
	}
	slices.Sort(wantReps)
	slices.Sort(wantSens)
	list := func(entries []map[string]string) []string {
		var out []string
		for _, e := range entries {
			out = append(out, e["ip"]+":"+e["port"])
		}
		slices.Sort(out)
		return out
	}
	reps, err := sc.Replicas(ctx, "main").Result()
	if err != nil {
		return err
	}
	sens, err := sc.Sentinels(ctx, "main").Result()
	if err != nil {
		return err
	}
	if got := list(reps); !slices.Equal(got, wantReps) {
		return fmt.Errorf("replicas %v, want %v", got, wantReps)
	}
	if got := list(sens); !slices.Equal(got, wantSens) {
		return fmt.Errorf("sentinels %v, want %v", got, wantSens)
	}
	return nil
}
