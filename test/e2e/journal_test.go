package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
)

// TestJournal: the journal gets each line at its priority, with one
// timestamp (journald's): redis' own warnings as warnings, the agent's
// "redis exited" as an error, so that `journalctl -p warning` shows what
// went wrong and nothing else of the normal run.
func TestJournal(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	b := newBench(t)
	bx := b.Boxes("journal")[0]
	ctx := ctxFor(t, 5*time.Minute)
	install(t, ctx, bx, distNew)
	if out, err := redisCLI(ctx, bx, "PING"); err != nil || out != "PONG" {
		t.Fatalf("PING after install: %q, %v", out, err)
	}

	// A warning of redis' own: a replication link that cannot connect.
	if out, err := redisCLI(ctx, bx, "REPLICAOF", "127.0.0.1", "9"); err != nil || out != "OK" {
		t.Fatalf("REPLICAOF: %q, %v", out, err)
	}
	sync := regexp.MustCompile(`(?i)error condition on socket for sync|connecting to master`)
	err := eventually(ctx, 20*time.Second, func(ctx context.Context) error {
		if e := findEntry(ctx, t, bx, 4, sync); e == nil {
			return fmt.Errorf("no warning of redis' about its replication link yet")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if out, err := redisCLI(ctx, bx, "REPLICAOF", "NO", "ONE"); err != nil || out != "OK" {
		t.Fatalf("REPLICAOF NO ONE: %q, %v", out, err)
	}

	// The agent's error when redis dies.
	must(t, ctx, bx, "pkill -KILL -x redis-server")
	exited := regexp.MustCompile(`redis exited`)
	err = eventually(ctx, 20*time.Second, func(ctx context.Context) error {
		if e := findEntry(ctx, t, bx, 3, exited); e == nil {
			return fmt.Errorf("no \"redis exited\" entry at priority err yet")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	warnings := must(t, ctx, bx, "journalctl -b -u "+unit+" -p warning --no-pager")
	t.Logf("journalctl -p warning -u %s:\n%s", unit, warnings)
	if !exited.MatchString(warnings) {
		t.Errorf("journalctl -p warning does not show the redis-exited line")
	}
	for _, l := range strings.Split(warnings, "\n") {
		if strings.Contains(l, "Ready to accept connections") {
			t.Errorf("a routine line at warning: %s", l)
		}
	}

	// One timestamp: journald's. Neither the agent's time= nor redis' own.
	all := must(t, ctx, bx, "journalctl -b -u "+unit+" --no-pager -o cat")
	redisStamp := regexp.MustCompile(`\d+:[A-Z] \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d\.\d{3}`)
	for _, l := range strings.Split(all, "\n") {
		if strings.Contains(l, "time=") || redisStamp.MatchString(l) {
			t.Errorf("a second timestamp: %s", l)
		}
	}
	if e := findEntry(ctx, t, bx, 6, regexp.MustCompile(`Ready to accept connections`)); e == nil {
		t.Errorf("redis' own notice \"Ready to accept connections\" is not in the journal at priority info")
	}
}

// findEntry returns the first entry of the unit's journal this boot at
// priority prio whose message matches re.
func findEntry(ctx context.Context, t *testing.T, bx *box.Box, prio int, re *regexp.Regexp) map[string]any {
	t.Helper()
	out, _, _ := bx.Exec(ctx, "journalctl", "-b", "-u", unit, "--no-pager", "-o", "json", "--output-fields=MESSAGE,PRIORITY")
	for _, line := range strings.Split(out, "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		msg, _ := e["MESSAGE"].(string)
		if e["PRIORITY"] == fmt.Sprint(prio) && re.MatchString(msg) {
			return e
		}
	}
	return nil
}
