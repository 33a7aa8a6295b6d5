//go:build linux

package testutil

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// InNewNetns runs fn on an OS thread moved into a fresh network namespace:
// /proc/sys/net, netlink sockets opened on that thread and raw sockets all
// live there and never touch the host. The thread is never unlocked: when
// the goroutine ends the runtime destroys it, and the namespace with it,
// instead of handing a poisoned thread to other goroutines. fn must not
// start goroutines that use the network: they would run in the host's.
// A non-empty skip says unshare is not permitted here (a container without
// CAP_SYS_ADMIN).
func InNewNetns(fn func() error) (skip string, err error) {
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
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{skip: fmt.Sprintf("unshare(CLONE_NEWNET): %v", err)}
			return
		}
		// Guard against touching the host if the unshare somehow did not take.
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
