//go:build linux

package sysctl

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const realSomaxconn = "/proc/sys/net/core/somaxconn"

func readIntFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// inNewNetns runs fn on an OS thread moved into a fresh network namespace. /proc/sys/net
// resolves against the netns of the reading thread, so fn sees and writes the private
// copy of every net.* sysctl while the rest of the process and the host keep theirs.
// The thread is never unlocked: when the goroutine ends the runtime destroys it, and the
// namespace with it, instead of handing a poisoned thread to other goroutines.
// A non-empty skip says unshare is not permitted here (e.g. a container without CAP_SYS_ADMIN).
func inNewNetns(fn func() error) (skip string, err error) {
	type result struct {
		skip string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		before, err := os.Readlink("/proc/thread-self/ns/net")
		if err != nil {
			done <- result{err: err}
			return
		}
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			done <- result{skip: fmt.Sprintf("unshare(CLONE_NEWNET): %v", err)}
			return
		}
		// Guard against writing the host's knob if the unshare somehow did not take.
		after, err := os.Readlink("/proc/thread-self/ns/net")
		if err != nil || after == before {
			done <- result{err: fmt.Errorf("thread netns %q -> %q (%v): unshare did not take", before, after, err)}
			return
		}
		done <- result{err: fn()}
	}()
	r := <-done
	return r.skip, r.err
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

	skip, err := inNewNetns(func() error {
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
