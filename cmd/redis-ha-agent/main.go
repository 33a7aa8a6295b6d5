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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := agent.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
