//go:build linux

package sysctl

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

const realSomaxconn = "/proc/sys/net/core/somaxconn"

func readIntFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// TestSomaxconnInNetns drives Plan → Apply → Verify against the real kernel. somaxconn is
// per network namespace, so doing it in a throwaway netns touches nothing global; the
// want is always above the namespace's current value, so even a misdirected write could
// only raise the host's value, never lower it.
func TestSomaxconnInNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: unshare(CLONE_NEWNET) and writes to /proc/sys")
	}
	hostBefore, err := readIntFile(realSomaxconn)
	if err != nil {
		t.Fatal(err)
	}
	r := Roots{Proc: "/proc", Sys: "/sys"}

	// /proc/sys/net resolves against the netns of the reading thread, so fn
	// sees and writes the namespace's private copy of every net.* sysctl.
	skip, err := testutil.InNewNetns(func() error {
		cur, err := readIntFile(realSomaxconn)
		if err != nil {
			return err
		}
		want := cur + 1
		plan, err := Plan(r, Desired{Somaxconn: want, OvercommitMemory: -1})
		if err != nil {
			return fmt.Errorf("Plan: %w", err)
		}
		if len(plan) != 1 || !plan[0].Change || plan[0].Current != strconv.Itoa(cur) || plan[0].Path != realSomaxconn {
			return fmt.Errorf("plan:%s\nwant one change of %s from %d", format(plan), realSomaxconn, cur)
		}
		changed, err := Apply(r, plan)
		if err != nil || len(changed) != 1 {
			return fmt.Errorf("Apply: changed%s, err %v", format(changed), err)
		}
		if got, err := readIntFile(realSomaxconn); err != nil || got != want {
			return fmt.Errorf("somaxconn in netns = %d (%v), want %d", got, err, want)
		}
		if drift, err := Verify(r, Desired{Somaxconn: want, OvercommitMemory: -1}); err != nil || drift != nil {
			return fmt.Errorf("Verify: drift%s, err %v; want none", format(drift), err)
		}
		// The real kernel now holds more than this floor: raise-only must leave it.
		plan, err = Plan(r, Desired{Somaxconn: cur, OvercommitMemory: -1})
		if err != nil || len(plan) != 1 || plan[0].Change {
			return fmt.Errorf("Plan below current: %s, err %v; want one item without change", format(plan), err)
		}
		return nil
	})
	if skip != "" {
		t.Skip(skip)
	}
	if err != nil {
		t.Error(err)
	}
	if hostAfter, err := readIntFile(realSomaxconn); err != nil || hostAfter != hostBefore {
		t.Errorf("host somaxconn = %d (%v), was %d: the test leaked out of its netns", hostAfter, err, hostBefore)
	}
}
