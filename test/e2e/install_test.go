package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestFreshInstall: `apt install` of the package and nothing else gives an
// active unit and a Redis on 127.0.0.1:6379, run by the agent; Debian's own
// redis units, running before, are stopped and masked; and systemd finds
// nothing wrong with the unit.
func TestFreshInstall(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	b := newBench(t)
	bx := b.Boxes("fresh")[0]
	ctx := ctxFor(t, 5*time.Minute)

	debianRedisRunning(t, ctx, bx)
	start := time.Now()
	out := install(t, ctx, bx, distNew)
	t.Logf("apt install took %s:\n%s", time.Since(start).Round(100*time.Millisecond), out)

	t.Run("unit active", func(t *testing.T) {
		p := show(t, ctx, bx, unit, "ActiveState", "SubState", "UnitFileState", "NRestarts", "StatusText")
		if p["ActiveState"] != "active" || p["SubState"] != "running" || p["UnitFileState"] != "enabled" || p["NRestarts"] != "0" {
			t.Errorf("unit after apt install: %v", p)
		}
		if p["StatusText"] == "" {
			t.Errorf("no STATUS= from a Type=notify unit: %v", p)
		}
		t.Logf("StatusText: %s", p["StatusText"])
	})

	t.Run("redis answers on 127.0.0.1:6379", func(t *testing.T) {
		if out, err := redisCLI(ctx, bx, "-h", "127.0.0.1", "-p", "6379", "PING"); err != nil || out != "PONG" {
			t.Fatalf("PING: %q, %v", out, err)
		}
		if out, err := redisCLI(ctx, bx, "SET", "e2e:fresh", "1"); err != nil || out != "OK" {
			t.Errorf("SET: %q, %v", out, err)
		}
		// The redis answering is the agent's, not Debian's: its process is in
		// the agent's cgroup; and it listens on loopback only.
		ss := must(t, ctx, bx, "ss -Hltnp 'sport = :6379'")
		lines := strings.Split(strings.TrimSpace(ss), "\n")
		pidRe := regexp.MustCompile(`pid=(\d+)`)
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) < 4 || !(strings.HasPrefix(f[3], "127.0.0.1:") || strings.HasPrefix(f[3], "[::1]:")) {
				t.Errorf("redis listens beyond loopback: %s", l)
			}
			m := pidRe.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("no pid for listener: %s", l)
				continue
			}
			cg := must(t, ctx, bx, "cat /proc/"+m[1]+"/cgroup")
			if !strings.Contains(cg, "/system.slice/"+unit) {
				t.Errorf("6379 is held by pid %s outside %s:\n%s", m[1], unit, cg)
			}
		}
	})

	t.Run("debian units inactive and masked", func(t *testing.T) {
		for _, u := range debianUnits {
			if a, e := isActive(ctx, bx, u), isEnabled(ctx, bx, u); a != "inactive" || e != "masked" {
				t.Errorf("%s: %s and %s, want inactive and masked", u, a, e)
			}
		}
	})

	t.Run("systemd-analyze verify", func(t *testing.T) {
		path := show(t, ctx, bx, unit, "FragmentPath")["FragmentPath"]
		out, errOut, err := bx.Exec(ctx, "systemd-analyze", "verify", path)
		t.Logf("systemd-analyze verify %s: %v\n%s%s", path, err, out, errOut)
		if err != nil {
			t.Errorf("systemd-analyze verify %s: %v", path, err)
		}
		for _, l := range strings.Split(out+errOut, "\n") {
			if strings.Contains(l, "redis-ha-agent") {
				t.Errorf("systemd-analyze verify: %s", l)
			}
		}
	})

	t.Run("man pages and completion", func(t *testing.T) {
		// man as a user runs it (MANWIDTH: no terminal here), and the
		// completion the binary writes is the one installed.
		out := must(t, ctx, bx, `MANWIDTH=100 man redis-ha-agent 2>&1 | grep -c '^       redis-ha-agent '
MANWIDTH=100 man 5 redis-ha.conf 2>&1 | grep -c '^   \['
redis-ha-agent completion bash | cmp - /usr/share/bash-completion/completions/redis-ha-agent && echo same
redis-ha-agent completion zsh | cmp - /usr/share/zsh/vendor-completions/_redis-ha-agent && echo same
systemctl show -P Documentation redis-ha-agent.service`)
		t.Logf("box %s: verbs in man redis-ha-agent, tables in man 5 redis-ha.conf, completions, Documentation=:\n%s", bx.Name, out)
		t.Logf("box %s: man redis-ha-agent | head -20:\n%s", bx.Name, must(t, ctx, bx, "MANWIDTH=100 man redis-ha-agent 2>&1 | head -20"))
		f := strings.Split(strings.TrimSpace(out), "\n")
		if len(f) != 5 || f[0] == "0" || f[1] == "0" || f[2] != "same" || f[3] != "same" || !strings.Contains(f[4], "man:redis-ha-agent(8)") {
			t.Errorf("man pages, completions or Documentation= not as installed:\n%s", out)
		}
	})
}

// TestReadyAfterLoad: READY=1 is not sent before redis has loaded its data.
// With a dataset that takes seconds to load, every sample of the unit's
// state taken before redis stopped answering LOADING says "activating".
func TestReadyAfterLoad(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	b := newBench(t)
	bx := b.Boxes("load")[0]
	ctx := ctxFor(t, 8*time.Minute)
	install(t, ctx, bx, distNew)

	// Server-side generation: no 400 MB file through the test.
	const keys = 3_000_000
	start := time.Now()
	gen := fmt.Sprintf(`for i=1,%d do redis.call('SET','k:'..i,string.rep('v',100)) end return redis.call('DBSIZE')`, keys)
	if out, err := redisCLI(ctx, bx, "EVAL", gen, "0"); err != nil || out != fmt.Sprint(keys) {
		t.Fatalf("populate: %q, %v", out, err)
	}
	t.Logf("%d keys written in %s", keys, time.Since(start).Round(100*time.Millisecond))

	// Stop, then start without waiting, then sample: state first, then
	// redis. "active" followed by a LOADING answer can only mean READY came
	// before the data. (A restart would let the old instance's "active" be
	// sampled before the new redis' LOADING.)
	must(t, ctx, bx, "systemctl stop "+unit)
	script := `systemctl start --no-block ` + unit + `
export REDISCLI_AUTH="$(cat /etc/redis-ha/password)"
end=$(( $(date +%s) + 240 ))
while [ "$(date +%s)" -lt "$end" ]; do
	a=$(systemctl is-active ` + unit + `)
	p=$(redis-cli -h 127.0.0.1 ping 2>&1 | head -n1 | cut -d' ' -f1)
	echo "$a $p"
	case "$a $p" in "active PONG" | failed*) break ;; esac
done`
	start = time.Now()
	out := must(t, ctx, bx, script)
	elapsed := time.Since(start)
	samples := strings.Split(strings.TrimSpace(out), "\n")

	loading := 0
	firstActive := -1
	for i, s := range samples {
		state, answer, _ := strings.Cut(s, " ")
		if answer == "LOADING" {
			loading++
			if state != "activating" {
				t.Errorf("sample %d: unit %s while redis is still loading", i, state)
			}
		}
		if state == "active" && firstActive < 0 {
			firstActive = i
		}
	}
	t.Logf("%d samples in %s: %d while loading; first active at sample %d; last: %q",
		len(samples), elapsed.Round(100*time.Millisecond), loading, firstActive, samples[len(samples)-1])
	if loading == 0 {
		t.Fatalf("never saw redis LOADING: the dataset loads too fast to test the ordering; samples:\n%s", summarize(samples))
	}
	if samples[len(samples)-1] != "active PONG" {
		t.Fatalf("unit did not become active with redis answering:\n%s", summarize(samples))
	}
	if out, err := redisCLI(ctx, bx, "DBSIZE"); err != nil || out != fmt.Sprint(keys) {
		t.Errorf("after start: DBSIZE %q, %v; want %d", out, err, keys)
	}
}

// summarize collapses runs of equal samples: "activating LOADING ×120".
func summarize(samples []string) string {
	var b strings.Builder
	for i := 0; i < len(samples); {
		j := i
		for j < len(samples) && samples[j] == samples[i] {
			j++
		}
		fmt.Fprintf(&b, "%s ×%d\n", samples[i], j-i)
		i = j
	}
	return b.String()
}
