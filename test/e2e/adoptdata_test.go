package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// debianKeys is the dataset Debian's redis holds before the package comes.
const debianKeys = 10000

// TestAdoptData: a box whose Debian redis-server holds 10 000 keys. The
// package leaves it serving them and does not start (postinst says so);
// the user then hands the data to the group as README says — Debian's
// units disabled, adopt-data, the agent started — and the other boxes
// join: the 10 000 keys are the group's data on every box. Once the group
// has formed, adopt-data refuses.
func TestAdoptData(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	b := newBench(t)
	boxes := b.Boxes("n1", "n2", "n3")
	ctx := ctxFor(t, 15*time.Minute)
	g := &group{b: b, boxes: boxes}
	n1 := boxes[0]
	for _, bx := range boxes {
		debianRedisRunning(t, ctx, bx)
	}
	// What a user of Debian's redis has: keys, in memory and in the
	// snapshot the next stop writes.
	fill := fmt.Sprintf(`redis-cli EVAL "for i = 1, %d do redis.call('SET', 'debian:' .. i, 'value-' .. i) end" 0 >/dev/null
redis-cli DBSIZE`, debianKeys)
	if got := shIn(t, ctx, n1, fill); got != fmt.Sprint(debianKeys) {
		t.Fatalf("Debian's redis holds %s keys, want %d", got, debianKeys)
	}

	t.Run("the package does not hide them", func(t *testing.T) {
		out := install(t, ctx, n1, distNew)
		t.Logf("apt install on a box whose redis holds %d keys:\n%s", debianKeys, grepLines(out, "redis-ha-agent:"))
		for _, want := range []string{fmt.Sprintf("redis-server holds %d keys (/var/lib/redis)", debianKeys),
			"redis-ha-agent adopt-data /var/lib/redis"} {
			if !strings.Contains(out, want) {
				t.Errorf("postinst does not say %q", want)
			}
		}
		if a, e := isActive(ctx, n1, unit), isEnabled(ctx, n1, unit); a != "inactive" || e != "disabled" {
			t.Errorf("%s %s and %s; want it left disabled and stopped", unit, e, a)
		}
		if a, e := isActive(ctx, n1, "redis-server.service"), isEnabled(ctx, n1, "redis-server.service"); a != "active" || e != "enabled" {
			t.Errorf("redis-server.service %s and %s; want it left as it was, serving", e, a)
		}
		if got := shIn(t, ctx, n1, "redis-cli DBSIZE"); got != fmt.Sprint(debianKeys) {
			t.Errorf("Debian's redis serves %s keys after the install, want %d", got, debianKeys)
		}
	})
	if t.Failed() {
		return
	}

	// README's steps on the bootstrap primary, then the story's last line.
	config := strings.Join(strings.Split(story, "\n")[2:8], "\n") + "\n"
	adopt := config + `systemctl disable --now redis-server.service redis-sentinel.service
redis-ha-agent adopt-data /var/lib/redis
`
	start := time.Now()
	out := shIn(t, ctx, n1, adopt)
	took := time.Since(start)
	t.Logf("box n1: adopt-data in %s (with stopping Debian's redis):\n%s", took.Round(100*time.Millisecond), out)
	if !strings.Contains(out, fmt.Sprintf("adopt-data: %d keys from the RDB snapshot (dump.rdb) in /var/lib/redis", debianKeys)) {
		t.Errorf("adopt-data says: %q", out)
	}
	shIn(t, ctx, n1, "systemctl enable --now "+unit)
	for _, bx := range boxes[1:] {
		if out, errOut, err := bx.ExecInput(ctx, []byte(story), nil, "sh", "-ex"); err != nil {
			t.Fatalf("box %s: the story failed: %v\n%s%s", bx.Name, err, out, errOut)
		}
	}
	const first = "10.88.0.11:6379"
	if err := g.converged(ctx, boxes, first, 2*time.Minute); err != nil {
		t.Fatal(err)
	}

	t.Run("the keys are the group's on every box", func(t *testing.T) {
		var counts []string
		err := eventually(ctx, time.Minute, func(ctx context.Context) error {
			counts = counts[:0]
			for _, bx := range boxes {
				n, err := g.client(ctx, bx.Addr+":6379", "DBSIZE")
				v, verr := g.client(ctx, bx.Addr+":6379", "GET", fmt.Sprintf("debian:%d", debianKeys))
				if err != nil || verr != nil || n != fmt.Sprint(debianKeys) || v != fmt.Sprintf("value-%d", debianKeys) {
					return fmt.Errorf("box %s: DBSIZE %q (%v), last key %q (%v)", bx.Name, n, err, v, verr)
				}
				counts = append(counts, bx.Name+" "+n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("keys on each box: %s (adopt-data took %s)", strings.Join(counts, ", "), took.Round(100*time.Millisecond))
	})

	t.Run("refused once the group has formed", func(t *testing.T) {
		refused := func(bx string, out string, err error, want string) {
			t.Helper()
			t.Logf("box %s: adopt-data: %s", bx, strings.TrimSpace(out))
			if err == nil || !strings.Contains(out, want) {
				t.Errorf("box %s: adopt-data %v; want a refusal saying %q", bx, err, want)
			}
		}
		out, errOut, err := n1.Sh(ctx, "redis-ha-agent adopt-data /var/lib/redis")
		refused("n1", out+errOut, err, "redis-ha-agent runs on this box")
		out, errOut, err = boxes[1].Sh(ctx, "redis-ha-agent adopt-data /var/lib/redis")
		refused("n2", out+errOut, err, "not the bootstrap primary")
		// Stopped, the master hands its role over: the group goes on
		// without it, and its sentinels name another master.
		shIn(t, ctx, n1, "systemctl stop "+unit)
		out, errOut, err = n1.Sh(ctx, "redis-ha-agent adopt-data /var/lib/redis")
		refused("n1, agent stopped", out+errOut, err, "the group has formed")
		shIn(t, ctx, n1, "systemctl start "+unit)
	})
}

// grepLines keeps the lines of s that hold sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, strings.TrimRight(l, "\n"))
		}
	}
	return strings.Join(out, "\n")
}
