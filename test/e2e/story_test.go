package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
)

const password = "s3cret-pass"

// story is PRODUCT.md's user story on one box, word for word but for the
// addresses (the bench's subnet) and apt's -y (no one at the keyboard).
// `redis-ha-agent status`, its last line, runs separately: on the first
// boxes the group is not complete yet.
const story = `cd ` + distNew + `
apt install -y ./redis-ha-agent_*.deb
printf '%s\n' 's3cret-pass' > /etc/redis-ha/password  # mode 0640, group of the agent's service user
cat > /etc/redis-ha/conf.d/10-cluster.conf <<'EOF'
[cluster]
peers = ["10.88.0.11", "10.88.0.12", "10.88.0.13"]
bootstrap_primary = "10.88.0.11"
EOF
systemctl enable --now redis-ha-agent
`

// TestThreeBoxStory replays the user's story on three boxes and checks what
// the user is promised; then powers the master's box off (a new master is
// elected, clients write) and on again (it rejoins as a replica), with no
// human step.
func TestThreeBoxStory(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	b := newBench(t)
	boxes := b.Boxes("n1", "n2", "n3")
	ctx := ctxFor(t, 10*time.Minute)
	g := &group{b: b, boxes: boxes}

	for _, bx := range boxes {
		debianRedisRunning(t, ctx, bx)
	}
	for _, bx := range boxes {
		start := time.Now()
		out, errOut, err := bx.ExecInput(ctx, []byte(story), nil, "sh", "-ex")
		if err != nil {
			t.Fatalf("box %s: the story failed: %v\n%s%s", bx.Name, err, out, errOut)
		}
		t.Logf("box %s: story done in %s", bx.Name, time.Since(start).Round(100*time.Millisecond))
		st, _, _ := bx.Exec(ctx, "redis-ha-agent", "status")
		t.Logf("box %s: redis-ha-agent status, as the user sees it now:\n%s", bx.Name, st)
	}

	const first = "10.88.0.11:6379"
	start := time.Now()
	if err := g.converged(ctx, boxes, first, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("group healthy %s after the last story", time.Since(start).Round(100*time.Millisecond))

	t.Run("units active", func(t *testing.T) {
		for _, bx := range boxes {
			p := show(t, ctx, bx, unit, "ActiveState", "SubState", "NRestarts", "UnitFileState")
			if p["ActiveState"] != "active" || p["SubState"] != "running" || p["NRestarts"] != "0" || p["UnitFileState"] != "enabled" {
				t.Errorf("box %s: %v", bx.Name, p)
			}
		}
	})
	t.Run("StatusText honest", func(t *testing.T) {
		if err := g.statusTexts(ctx, boxes, first, 30*time.Second); err != nil {
			t.Error(err)
		}
	})
	t.Run("exactly one master", func(t *testing.T) {
		if m, err := g.oneMaster(ctx, boxes); err != nil || m != first {
			t.Errorf("master %q, %v; want %s", m, err, first)
		}
		for _, bx := range boxes {
			out, err := g.client(ctx, bx.Addr+":26379", "SENTINEL", "get-master-addr-by-name", "main")
			if err != nil || out != "10.88.0.11\n6379" {
				t.Errorf("sentinel on %s names %q, %v", bx.Name, out, err)
			}
		}
	})
	t.Run("status on every box", func(t *testing.T) {
		for _, bx := range boxes {
			out, _, err := bx.Exec(ctx, "redis-ha-agent", "status")
			t.Logf("box %s:\n%s", bx.Name, out)
			if err != nil || !strings.Contains(out, "master "+first) {
				t.Errorf("box %s: status %v, want exit 0 naming master %s", bx.Name, err, first)
			}
		}
	})
	if t.Failed() {
		return
	}

	// No wait for the sentinels to learn the replicas (every 10 s from the
	// master's INFO): a replica Sentinel did not reconfigure in the failover
	// must be re-pointed by its agent.
	t.Run("power off the master", func(t *testing.T) {
		n1, rest := boxes[0], boxes[1:]
		if out, err := g.client(ctx, first, "SET", "e2e:before", "1"); err != nil || out != "OK" {
			t.Fatalf("write before power-off: %q, %v", out, err)
		}
		off := time.Now()
		if err := n1.PowerOff(); err != nil {
			t.Fatal(err)
		}
		// A Sentinel-aware client: ask the sentinels still up, write there.
		var master string
		err := eventually(ctx, 60*time.Second, func(ctx context.Context) error {
			var named []string
			for _, bx := range rest {
				out, err := g.client(ctx, bx.Addr+":26379", "SENTINEL", "get-master-addr-by-name", "main")
				if err != nil {
					return err
				}
				named = append(named, strings.Replace(out, "\n", ":", 1))
			}
			if named[0] != named[1] || named[0] == first {
				return fmt.Errorf("sentinels name %v", named)
			}
			master = named[0]
			out, err := g.client(ctx, master, "SET", "e2e:after", "written")
			if err != nil || out != "OK" {
				return fmt.Errorf("write to %s: %q, %v", master, out, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("new master %s took a write %s after the power-off", master, time.Since(off).Round(100*time.Millisecond))
		if m, err := g.oneMaster(ctx, rest); err != nil || m != master {
			t.Errorf("with n1 off: master %q, %v; want %s", m, err, master)
		}

		boot := time.Now()
		if err := box.BootAll(ctx, n1); err != nil {
			t.Fatal(err)
		}
		t.Logf("n1 booted in %s", time.Since(boot).Round(100*time.Millisecond))
		if err := g.converged(ctx, boxes, master, 120*time.Second); err != nil {
			t.Fatal(err)
		}
		t.Logf("n1 rejoined %s after boot", time.Since(boot).Round(100*time.Millisecond))
		if r, err := g.role(ctx, n1.Addr+":6379"); err != nil || r.kind != "slave" || r.master != master {
			t.Errorf("n1 after reboot: %+v, %v; want a replica of %s", r, err, master)
		}
		if out, err := g.client(ctx, n1.Addr+":6379", "GET", "e2e:after"); err != nil || out != "written" {
			t.Errorf("n1 has not the write made while it was off: %q, %v", out, err)
		}
		if m, err := g.oneMaster(ctx, boxes); err != nil || m != master {
			t.Errorf("after rejoin: master %q, %v; want %s", m, err, master)
		}
		if err := g.statusTexts(ctx, boxes, master, 30*time.Second); err != nil {
			t.Error(err)
		}
	})
}

// group is the three boxes as the client namespace sees them.
type group struct {
	b      *box.Bench
	boxes  []*box.Box
	cliTLS []string // redis-cli's TLS flags when the group has tls.enabled
}

// client runs redis-cli against addr ("host:port") from the client
// namespace, with the group's password in the environment.
func (g *group) client(ctx context.Context, addr string, args ...string) (string, error) {
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	out, _, err := g.b.Client(ctx, []string{"REDISCLI_AUTH=" + password},
		append(append([]string{"redis-cli", "-h", host, "-p", port}, g.cliTLS...), args...)...)
	out = strings.TrimSpace(out)
	// redis-cli prints an error reply on stdout; not every version exits 1.
	for _, e := range []string{"ERR", "READONLY", "NOAUTH", "WRONGPASS", "LOADING", "MASTERDOWN", "NOREPLICAS"} {
		if err == nil && strings.HasPrefix(out, e+" ") {
			err = errors.New(out)
		}
	}
	return out, err
}

type role struct {
	kind   string // master, slave
	master string // for a slave: host:port
	link   string // for a slave: connected, connecting, …
}

func (g *group) role(ctx context.Context, addr string) (role, error) {
	out, err := g.client(ctx, addr, "ROLE")
	if err != nil {
		return role{}, err
	}
	f := strings.Split(out, "\n")
	switch {
	case len(f) >= 1 && f[0] == "master":
		return role{kind: "master"}, nil
	case len(f) >= 4 && f[0] == "slave":
		return role{kind: "slave", master: f[1] + ":" + f[2], link: f[3]}, nil
	}
	return role{}, fmt.Errorf("ROLE of %s: %q", addr, out)
}

// oneMaster returns the one box among boxes whose redis says master.
func (g *group) oneMaster(ctx context.Context, boxes []*box.Box) (string, error) {
	var masters []string
	for _, bx := range boxes {
		addr := bx.Addr + ":6379"
		r, err := g.role(ctx, addr)
		if err != nil {
			return "", err
		}
		if r.kind == "master" {
			masters = append(masters, addr)
		}
	}
	if len(masters) != 1 {
		return "", fmt.Errorf("masters: %v", masters)
	}
	return masters[0], nil
}

// converged waits until `redis-ha-agent status` is healthy on every box,
// naming master, with every box reachable, its sentinel up and agreeing.
func (g *group) converged(ctx context.Context, boxes []*box.Box, master string, timeout time.Duration) error {
	return eventually(ctx, timeout, func(ctx context.Context) error {
		var errs []error
		for _, bx := range boxes {
			if a := isActive(ctx, bx, unit); a != "active" {
				errs = append(errs, fmt.Errorf("box %s: unit %s", bx.Name, a))
				continue
			}
			st, code, err := agentStatus(ctx, bx)
			if err != nil {
				errs = append(errs, fmt.Errorf("box %s: %v", bx.Name, err))
				continue
			}
			if e := statusCorrect(st, code, master, len(boxes)); e != nil {
				errs = append(errs, fmt.Errorf("box %s: %v", bx.Name, e))
			}
		}
		return errors.Join(errs...)
	})
}

// statusCorrect checks a box's `status --json` against the group's truth.
func statusCorrect(st statusJSON, code int, master string, n int) error {
	var bad []string
	if code != 0 || !st.Healthy || len(st.Problems) > 0 {
		bad = append(bad, fmt.Sprintf("exit %d, healthy %v, problems %q", code, st.Healthy, st.Problems))
	}
	if st.Master != master || st.Name != "main" || st.Sentinels != n || st.SentinelsAgree != n || st.Quorum != n/2+1 {
		bad = append(bad, fmt.Sprintf("name %s master %s sentinels %d/%d quorum %d", st.Name, st.Master, st.SentinelsAgree, st.Sentinels, st.Quorum))
	}
	if len(st.Peers) != n {
		bad = append(bad, fmt.Sprintf("%d peers", len(st.Peers)))
	}
	for _, p := range st.Peers {
		want := "replica"
		if p.Member == master {
			want = "master"
		}
		if !p.Reachable || p.Role != want || !p.SentinelUp || p.SentinelMaster != master ||
			(want == "replica" && (p.ReplicaOf != master || p.Link != "connected")) {
			bad = append(bad, fmt.Sprintf("peer %+v", p))
		}
	}
	if bad != nil {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// statusTexts waits until every box's StatusText says what the group is:
// the role its redis really has, the replicas in sync, the sentinels up.
func (g *group) statusTexts(ctx context.Context, boxes []*box.Box, master string, timeout time.Duration) error {
	return eventually(ctx, timeout, func(ctx context.Context) error {
		var errs []error
		for _, bx := range boxes {
			p, err := props(ctx, bx, unit, "StatusText")
			if err != nil {
				return err
			}
			text := p["StatusText"]
			r, err := g.role(ctx, bx.Addr+":6379")
			if err != nil {
				return err
			}
			var want []string
			if r.kind == "master" {
				want = []string{fmt.Sprintf("master · %d/%d replicas in sync", len(boxes)-1, len(boxes)-1)}
			} else {
				want = []string{"replica of " + r.master + " · link up"}
			}
			want = append(want, fmt.Sprintf("sentinels %d/%d", len(boxes), len(boxes)))
			if strings.Join(want, " · ") != text {
				errs = append(errs, fmt.Errorf("box %s: StatusText %q, redis says %s (of %s): want %q",
					bx.Name, text, r.kind, r.master, strings.Join(want, " · ")))
			}
		}
		return errors.Join(errs...)
	})
}
