package box

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// ClientDial dials from the client namespace, for a client that runs in the
// test process (go-redis) but must meet the group as the client box does,
// cuts included. Its signature is net.Dialer.DialContext's.
func (b *Bench) ClientDial(ctx context.Context, network, addr string) (net.Conn, error) {
	return dialIn(ctx, filepath.Join(netnsDir, b.Net.Namespace("client")), network, addr)
}

// dialIn dials from the network namespace at nsPath. A socket belongs to the
// namespace of the thread that created it, for good: so a thread of its own
// enters the namespace, creates and connects the socket, and is then thrown
// away (a locked goroutine that exits takes its thread with it) rather than
// carrying the namespace back to the rest of the process.
func dialIn(ctx context.Context, nsPath, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		ns, err := os.Open(nsPath)
		if err != nil {
			done <- result{err: fmt.Errorf("dial %s from %s: %w", addr, nsPath, err)}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("dial %s: setns %s: %w", addr, nsPath, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}
