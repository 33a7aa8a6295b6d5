// Command redis-ha-agent turns a few Linux boxes into one self-healing Redis.
// Everything lives in package agent; main only owns the process: the root
// context and the exit code.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis-ha-agent/redis-ha-agent/agent"
)

func main() {
	// Only the daemon turns SIGINT and SIGTERM into a clean shutdown. A CLI
	// verb keeps the default action, so Ctrl-C or timeout(1) end it wherever
	// it is, even in a read that would never return.
	ctx, stop := context.Background(), func() {}
	if len(os.Args) > 1 && os.Args[1] == "run" {
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	}
	code := agent.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
