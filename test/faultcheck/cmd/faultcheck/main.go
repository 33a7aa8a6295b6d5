// Command faultcheck writes to a Sentinel-managed group for a while, marks
// when the operator injects a fault, then checks what the client lost:
//
//	faultcheck write --sentinels h:p,h:p,h:p --redis h:p,h:p,h:p --password-file F \
//	    [--master-name main] [--rate 200] [--duration 30s] [--fault-at 10s --fault-name NAME]
//
// It injects nothing itself: --fault-at only records the instant the bench
// (or a person) is told to act. The report goes to stdout as JSON, then as a
// one-row table.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9/logging"

	"github.com/redis-ha-agent/redis-ha-agent/test/faultcheck"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "write" {
		fmt.Fprintln(stderr, "usage: faultcheck write --sentinels h:p,... --redis h:p,... --password-file F [flags]")
		return 2
	}
	fs := flag.NewFlagSet("faultcheck write", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sentinels := fs.String("sentinels", "", "sentinel host:port list, comma-separated")
	redisAddrs := fs.String("redis", "", "every box's redis host:port, comma-separated")
	name := fs.String("master-name", "main", "sentinel master group name")
	pwFile := fs.String("password-file", "", "file holding the redis and sentinel password")
	rate := fs.Int("rate", 200, "writes per second")
	duration := fs.Duration("duration", 30*time.Second, "how long to write")
	faultAt := fs.Duration("fault-at", 0, "mark the fault this long after writing starts (0 = no mark)")
	faultName := fs.String("fault-name", "fault", "name of the fault in the report")
	checkTimeout := fs.Duration("check-timeout", 60*time.Second, "how long to wait for the group to converge")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *sentinels == "" || *redisAddrs == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "faultcheck write: --sentinels and --redis are required; no positional arguments")
		return 2
	}
	var password string
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			fmt.Fprintf(stderr, "faultcheck: password file: %v\n", err)
			return 1
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	logging.Disable() // go-redis reconnect noise is expected during the fault

	t := faultcheck.Target{
		MasterName: *name,
		Sentinels:  split(*sentinels),
		Redis:      split(*redisAddrs),
		Password:   password,
	}
	w := faultcheck.Start(ctx, t, *rate)
	start := time.Now()
	if *faultAt > 0 && *faultAt < *duration {
		if sleep(ctx, *faultAt) {
			w.MarkFault(*faultName)
			fmt.Fprintf(stderr, "faultcheck: fault %q marked at %s\n", *faultName, time.Now().Format(time.RFC3339Nano))
		}
	}
	sleep(ctx, *duration-time.Since(start))
	log := w.Stop()
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "faultcheck: interrupted; checking what was written so far")
		// The check still needs a live context of its own.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), *checkTimeout+30*time.Second)
		defer cancel()
	}
	rep, err := faultcheck.Check(ctx, t, log, *checkTimeout)
	fmt.Fprintf(stdout, "%s\n%s", rep.JSON(), faultcheck.Table([]faultcheck.Report{rep}))
	if err != nil {
		fmt.Fprintf(stderr, "faultcheck: %v\n", err)
		return 1
	}
	return 0
}

// sleep waits d or until ctx ends; it reports whether the full d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
