// Package e2e checks the packaged agent the way a user meets it: a .deb
// installed with apt on Debian boxes booting systemd (test/box), configured
// with files, driven with systemctl, looked at with redis-cli from a client
// box. It never imports the agent.
//
// `make e2e` builds the package under test (RHA_DEB) and the same build
// under a lower version (RHA_DEB_PREV, for the upgrade) and runs these with
// RHA_E2E=1.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
)

const unit = "redis-ha-agent.service"

// debianUnits are Debian's own redis units, which the package must stop and
// mask: they would hold the ports the agent's redis and sentinel need.
var debianUnits = []string{"redis-server.service", "redis-sentinel.service"}

// TestMain fails the run if any test left a box, mount or namespace behind.
func TestMain(m *testing.M) {
	code := m.Run()
	// Only a run that booted boxes can have left any: another bench running
	// on this host at the same time is not this run's leftover.
	if os.Getenv("RHA_E2E") != "1" || !box.Locked() {
		os.Exit(code)
	}
	if left := box.Leftovers(box.Prefix); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: the bench left behind: %s\n", strings.Join(left, "; "))
		code = 1
	}
	os.Exit(code)
}

// Package versions under test, staged for the boxes: /dist/new holds the
// package under test, /dist/prev the previous build.
const (
	distNew  = "/dist/new"
	distPrev = "/dist/prev"
)

// newBench starts a bench whose boxes see the packages under /dist, and
// which logs the agent's side of the story when the test fails.
func newBench(t *testing.T) *box.Bench {
	t.Helper()
	return newBenchOf(t, box.ImageSpec{})
}

// newBenchOf is newBench on boxes of another image (zero: the default).
func newBenchOf(t *testing.T, image box.ImageSpec) *box.Bench {
	t.Helper()
	b := box.New(t, box.Options{
		Image: image,
		Diagnose: []string{
			"systemctl status " + unit + " --no-pager -n 0",
			"journalctl -b -u " + unit + " --no-pager -n 80 -o short-monotonic",
			"redis-ha-agent status",
		},
	})
	// In the bench's directory, so that it goes with the bench.
	stage := filepath.Join(b.Dir(), ".dist") // not a box name
	for dir, env := range map[string]string{"new": "RHA_DEB", "prev": "RHA_DEB_PREV"} {
		if err := os.MkdirAll(filepath.Join(stage, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		deb := os.Getenv(env)
		if deb == "" {
			continue
		}
		data, err := os.ReadFile(deb)
		if err != nil {
			t.Fatalf("%s: %v (make e2e builds it)", env, err)
		}
		if err := os.WriteFile(filepath.Join(stage, dir, filepath.Base(deb)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.AddBind(box.Bind{Host: stage, Box: "/dist"})
	return b
}

// requireDeb skips t where the bench cannot run, and fails it where the
// package under test was not built.
func requireDeb(t *testing.T, env string) {
	t.Helper()
	box.Require(t)
	if os.Getenv(env) == "" {
		t.Fatalf("%s is not set: run the e2e tests with make e2e, which builds the packages", env)
	}
}

// ctxFor bounds one test's work.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// must runs a shell script in a box and fails the test when it fails.
func must(t *testing.T, ctx context.Context, bx *box.Box, script string) string {
	t.Helper()
	out, errOut, err := bx.Sh(ctx, script)
	if err != nil {
		t.Fatalf("box %s: %s: %v\nstdout:\n%s\nstderr:\n%s", bx.Name, script, err, out, errOut)
	}
	return out
}

// debianRedisRunning puts a box in the state apt leaves it in after pulling
// in Debian's redis (its postinst starts it), with redis-sentinel besides, as
// the tutorial-following operator has it: the package must take both over.
func debianRedisRunning(t *testing.T, ctx context.Context, bx *box.Box) {
	t.Helper()
	unitsRunning(t, ctx, bx, debianUnits)
}

// unitsRunning enables and starts the distribution's units on bx.
func unitsRunning(t *testing.T, ctx context.Context, bx *box.Box, units []string) {
	t.Helper()
	must(t, ctx, bx, "systemctl enable --now --quiet "+strings.Join(units, " "))
	for _, u := range units {
		if state := isActive(ctx, bx, u); state != "active" {
			t.Fatalf("box %s: precondition: %s is %s, want active", bx.Name, u, state)
		}
	}
}

// install runs the user's apt command on the one package in dir.
func install(t *testing.T, ctx context.Context, bx *box.Box, dir string) string {
	t.Helper()
	return must(t, ctx, bx, "cd "+dir+" && apt install -y ./redis-ha-agent_*.deb 2>&1")
}

func isActive(ctx context.Context, bx *box.Box, u string) string {
	out, _, _ := bx.Exec(ctx, "systemctl", "is-active", u)
	return strings.TrimSpace(out)
}

func isEnabled(ctx context.Context, bx *box.Box, u string) string {
	out, _, _ := bx.Exec(ctx, "systemctl", "is-enabled", u)
	return strings.TrimSpace(out)
}

// show returns systemd properties of a unit, failing the test if it cannot.
func show(t *testing.T, ctx context.Context, bx *box.Box, u string, names ...string) map[string]string {
	t.Helper()
	p, err := props(ctx, bx, u, names...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// props returns systemd properties of a unit.
func props(ctx context.Context, bx *box.Box, u string, names ...string) (map[string]string, error) {
	args := []string{"systemctl", "show", u}
	for _, p := range names {
		args = append(args, "-p", p)
	}
	out, _, err := bx.Exec(ctx, args...)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// redisCLI runs redis-cli in a box with the box's own password, which goes
// through the environment, never argv.
func redisCLI(ctx context.Context, bx *box.Box, args ...string) (string, error) {
	script := `REDISCLI_AUTH="$(cat /etc/redis-ha/password 2>/dev/null)" exec redis-cli "$@"`
	out, _, err := bx.Exec(ctx, append([]string{"sh", "-c", script, "sh"}, args...)...)
	return strings.TrimSpace(out), err
}

// eventually retries check every 500 ms until it returns nil or timeout
// passes (box.Eventually).
func eventually(ctx context.Context, timeout time.Duration, check func(context.Context) error) error {
	return box.Eventually(ctx, timeout, 500*time.Millisecond, check)
}

// statusJSON is `redis-ha-agent status --json`, the fields the tests read.
type statusJSON struct {
	Name           string   `json:"name"`
	Quorum         int      `json:"quorum"`
	Master         string   `json:"master"`
	SentinelsAgree int      `json:"sentinels_agree"`
	Sentinels      int      `json:"sentinels"`
	Healthy        bool     `json:"healthy"`
	Problems       []string `json:"problems"`
	VIPHolders     []string `json:"vip_holders"`
	Peers          []struct {
		Member         string `json:"member"`
		Role           string `json:"role"`
		Reachable      bool   `json:"reachable"`
		ReplicaOf      string `json:"replica_of"`
		Link           string `json:"link"`
		SentinelUp     bool   `json:"sentinel_up"`
		SentinelMaster string `json:"sentinel_master"`
		Fenced         bool   `json:"fenced"`
	} `json:"peers"`
}

// agentStatus runs `redis-ha-agent status --json` in a box and returns what
// it says and its exit code.
func agentStatus(ctx context.Context, bx *box.Box) (statusJSON, int, error) {
	var st statusJSON
	out, _, err := bx.Exec(ctx, "redis-ha-agent", "status", "--json")
	code := box.ExitCode(err)
	if code != 0 && code != 1 {
		return st, code, err
	}
	if jerr := json.Unmarshal([]byte(out), &st); jerr != nil {
		return st, code, fmt.Errorf("status --json: %v: %q", jerr, out)
	}
	return st, code, nil
}

// journalHas reports whether the unit's journal of this boot matches re.
func journalHas(ctx context.Context, bx *box.Box, re *regexp.Regexp) (bool, string) {
	out, _, _ := bx.Exec(ctx, "journalctl", "-b", "-u", unit, "--no-pager", "-o", "cat")
	return re.MatchString(out), out
}
