package box

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if any test left a box, mount or namespace behind.
func TestMain(m *testing.M) {
	code := m.Run()
	// Only a run that booted boxes can have left any: another bench running
	// on this host at the same time is not this run's leftover.
	if os.Getenv("RHA_E2E") != "1" || !Locked() {
		os.Exit(code)
	}
	if left := Leftovers(Prefix); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "box bench left behind: %s\n", strings.Join(left, "; "))
		code = 1
	}
	os.Exit(code)
}

// TestBench checks what the e2e tests rely on: boxes boot systemd with their
// own hostname, reach each other and the client and nothing else, cuts drop
// exactly the cut pairs, and a power-off keeps the disk but not processes.
func TestBench(t *testing.T) {
	b := New(t, Options{Diagnose: []string{"systemctl --failed --no-pager"}})
	boxes := b.Boxes("a", "b")
	a, bb := boxes[0], boxes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	for _, bx := range boxes {
		if out, _, err := bx.Exec(ctx, "hostname"); err != nil || strings.TrimSpace(out) != bx.Name {
			t.Errorf("box %s: hostname = %q, %v", bx.Name, out, err)
		}
		// One link besides lo, one route: the box reaches the switch only.
		routes, _, err := bx.Exec(ctx, "ip", "-4", "route", "show")
		if err != nil || strings.TrimSpace(routes) != "10.88.0.0/24 dev eth0 proto kernel scope link src "+bx.Addr {
			t.Errorf("box %s: routes = %q, %v", bx.Name, routes, err)
		}
	}
	ida, _, _ := a.Exec(ctx, "cat", "/etc/machine-id")
	idb, _, _ := bb.Exec(ctx, "cat", "/etc/machine-id")
	if ida == idb {
		t.Errorf("boxes share machine-id %q", ida)
	}

	// A throwaway listener in box a: Debian's redis-server, not the agent.
	if _, _, err := a.Sh(ctx, "echo disk > /root/mark && redis-server --port 7000 --protected-mode no --daemonize yes"); err != nil {
		t.Fatal(err)
	}
	ping := func(from string) error {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		args := []string{"redis-cli", "-h", a.Addr, "-p", "7000", "ping"}
		var out string
		var err error
		if from == "client" {
			out, _, err = b.Client(c, nil, args...)
		} else {
			out, _, err = bb.Exec(c, args...)
		}
		if err == nil && strings.TrimSpace(out) != "PONG" {
			err = fmt.Errorf("answer %q", out)
		}
		return err
	}
	waitPing := func(from string) error {
		var err error
		for range 50 {
			if err = ping(from); err == nil {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return err
	}
	if err := waitPing("client"); err != nil {
		t.Fatalf("client → a: %v", err)
	}
	if err := waitPing("b"); err != nil {
		t.Fatalf("b → a: %v", err)
	}

	if err := b.Cut([]string{"client"}, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if err := ping("client"); err == nil {
		t.Error("client → a answers across a cut")
	}
	if err := ping("b"); err != nil {
		t.Errorf("b → a (not cut): %v", err)
	}
	if err := b.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := waitPing("client"); err != nil {
		t.Errorf("client → a after heal: %v", err)
	}

	if err := a.PowerOff(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Exec(ctx, "true"); err == nil {
		t.Error("exec in a box that is off succeeded")
	}
	if err := ping("client"); err == nil {
		t.Error("a answers while off")
	}
	// A machine that is off does not refuse connections: nothing answers.
	dctx, dcancel := context.WithTimeout(ctx, time.Second)
	c, err := b.ClientDial(dctx, "tcp", a.Addr+":7000")
	dcancel()
	if err == nil {
		c.Close()
		t.Error("dial to a box that is off succeeded")
	} else if !errors.Is(err, context.DeadlineExceeded) && !os.IsTimeout(err) {
		t.Errorf("dial to a box that is off: %v, want silence (a timeout)", err)
	}
	if err := BootAll(ctx, a); err != nil {
		t.Fatal(err)
	}
	if out, _, err := a.Exec(ctx, "cat", "/root/mark"); err != nil || out != "disk\n" {
		t.Errorf("disk after power-off: %q, %v", out, err)
	}
	if err := ping("client"); err == nil {
		t.Error("a process survived the power-off")
	}
	boots, _, err := a.Exec(ctx, "journalctl", "--list-boots", "--no-pager", "-q")
	if n := len(strings.Split(strings.TrimSpace(boots), "\n")); err != nil || n != 2 {
		t.Errorf("journal keeps %d boots (%v), want 2:\n%s", n, err, boots)
	}

	start := time.Now()
	if err := bb.Stop(time.Minute); err != nil {
		t.Error(err)
	}
	t.Logf("clean shutdown of %s took %s", bb.Name, time.Since(start).Round(100*time.Millisecond))
	if bb.Running() {
		t.Error("box still running after Stop")
	}
}
