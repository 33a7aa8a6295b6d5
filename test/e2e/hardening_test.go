package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestHardening checks issue #13's findings on the box bench, under the
// shipped unit: its sandbox (systemd-analyze's score, seccomp on redis and
// sentinel), a flood of the HTTP API that must not move the VIP, fence the
// master or fail it over, files the redis user plants in the state
// directory, and the modes of the files redis and sentinel rewrite.
func TestHardening(t *testing.T) {
	requireDeb(t, "RHA_DEB")
	ctx := ctxFor(t, 12*time.Minute)
	fg := newFaultGroupWith(t, ctx, vipConf+hookConf)
	n1 := fg.boxes[0]

	t.Run("sandbox", func(t *testing.T) {
		out := shIn(t, ctx, n1, "systemd-analyze security redis-ha-agent.service 2>&1 | tail -1; "+
			"systemd-analyze security redis-server.service 2>&1 | tail -1")
		t.Logf("box %s:\n%s", n1.Name, out)
		m := regexp.MustCompile(`redis-ha-agent\.service: ([0-9.]+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no exposure level in:\n%s", out)
		}
		// 5.3 MEDIUM before issue #13; Debian's own redis-server.service
		// scores 1.2 (it runs redis alone, as its user, with no VIP to move).
		if score, _ := strconv.ParseFloat(m[1], 64); score > 3.5 {
			t.Errorf("exposure level %.1f, want 3.5 or less", score)
		}
		for _, pidFile := range []string{"redis.pid", "sentinel.pid"} {
			st := shIn(t, ctx, n1, `grep -E '^(Seccomp|NoNewPrivs|Uid):' /proc/$(cat /run/redis-ha/`+pidFile+`)/status`)
			if !strings.Contains(st, "Seccomp:\t2") || !strings.Contains(st, "NoNewPrivs:\t1") || strings.Contains(st, "Uid:\t0") {
				t.Errorf("%s's process is not sandboxed or runs as root:\n%s", pidFile, st)
			}
		}
	})

	t.Run("an HTTP flood moves nothing", func(t *testing.T) {
		flood(t, ctx, fg)
	})

	t.Run("plants of the redis user in the state directory", func(t *testing.T) {
		plants(t, ctx, fg)
	})

	t.Run("files redis and sentinel rewrite stay private", func(t *testing.T) {
		for _, bx := range fg.boxes {
			out := shIn(t, ctx, bx, `redis-cli -a "$(cat /etc/redis-ha/password)" --no-auth-warning config rewrite >/dev/null
redis-cli -p 26379 -a "$(cat /etc/redis-ha/password)" --no-auth-warning sentinel flushconfig >/dev/null
stat -c '%a %U %n' /var/lib/redis-ha/redis.conf /var/lib/redis-ha/sentinel.conf`)
			for _, l := range strings.Split(out, "\n") {
				if !strings.HasPrefix(l, "600 redis ") {
					t.Errorf("box %s: %s", bx.Name, l)
				}
			}
		}
	})
}

// flood asks the master's /primary from 128 keep-alive clients and each
// replica's from 32, as fast as they go, and holds 400 connections that
// send nothing, for 30 s, while it samples where the VIP is, whether the
// master fenced itself and what the sentinels name.
func flood(t *testing.T, ctx context.Context, fg *faultGroup) {
	const floodFor = 30 * time.Second
	master, err := fg.settled(ctx, "", settleLimit)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := fg.box(t, master)
	fctx, stop := context.WithTimeout(ctx, floodFor)
	defer stop()
	var wg sync.WaitGroup
	var ok, unavailable, wrong, errs atomic.Int64
	for _, bx := range fg.boxes {
		workers := 32
		if bx == m {
			workers = 128
		}
		for range workers {
			wg.Go(func() {
				c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: fg.b.ClientDial, MaxIdleConnsPerHost: 1}}
				defer c.CloseIdleConnections()
				for fctx.Err() == nil {
					req, _ := http.NewRequestWithContext(fctx, http.MethodGet, "http://"+bx.Addr+":"+httpPort+"/primary", nil)
					r, err := c.Do(req)
					if err != nil {
						if fctx.Err() == nil {
							errs.Add(1)
						}
						continue
					}
					_, _ = io.Copy(io.Discard, r.Body)
					r.Body.Close()
					switch {
					case r.StatusCode == 200 && bx == m, r.StatusCode == 503 && bx != m:
						ok.Add(1)
					case r.StatusCode == 503:
						unavailable.Add(1)
					default:
						wrong.Add(1)
					}
				}
			})
		}
	}
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range 400 {
		dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		if c, err := fg.b.ClientDial(dctx, "tcp", m.Addr+":"+httpPort); err == nil {
			idle = append(idle, c)
		}
		cancel()
	}
	rc := redis.NewClient(&redis.Options{Addr: master, Password: password, Dialer: fg.b.ClientDial, MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: time.Second})
	defer rc.Close()
	var samples, moved, fenced int
	for fctx.Err() == nil {
		time.Sleep(250 * time.Millisecond)
		samples++
		for _, bx := range fg.boxes {
			held, err := holdsVIP(ctx, bx)
			if err == nil && held != (bx == m) {
				moved++
				t.Errorf("%s: box %s holds the VIP: %v", time.Now().Format(time.StampMilli), bx.Name, held)
			}
		}
		if v, err := rc.ConfigGet(ctx, "min-replicas-to-write").Result(); err == nil && v["min-replicas-to-write"] != "1" {
			fenced++
			t.Errorf("%s: the master fenced itself (min-replicas-to-write %s)", time.Now().Format(time.StampMilli), v["min-replicas-to-write"])
		}
	}
	wg.Wait()
	t.Logf("30 s flood: /primary right %d, 503 on the master %d, wrong %d, errors %d; %d samples: VIP moved %d, fenced %d",
		ok.Load(), unavailable.Load(), wrong.Load(), errs.Load(), samples, moved, fenced)
	if wrong.Load() > 0 || unavailable.Load()*100 > ok.Load() {
		t.Errorf("/primary answered wrong %d times, 503 on the master %d times", wrong.Load(), unavailable.Load())
	}
	if after, err := fg.settled(ctx, "", settleLimit); err != nil || after != master {
		t.Errorf("after the flood: master %q, %v; was %s", after, err, master)
	}
}

// plants replays finding M1 as the redis user: a history.jsonl and a
// sentinel.myid linked to /etc/shadow, then a history.jsonl that is a FIFO.
// Root must write nothing there, copy nothing of it into sentinel.conf, and
// start regardless.
func plants(t *testing.T, ctx context.Context, fg *faultGroup) {
	master, err := fg.settled(ctx, "", settleLimit)
	if err != nil {
		t.Fatal(err)
	}
	m, others := fg.box(t, master)
	shadow := shIn(t, ctx, m, "sha256sum /etc/shadow")
	id := shIn(t, ctx, m, `redis-cli -p 26379 -a "$(cat /etc/redis-ha/password)" --no-auth-warning sentinel myid`)
	shIn(t, ctx, m, `cd /var/lib/redis-ha && runuser -u redis -- sh -ec '
mv history.jsonl history.jsonl.kept
ln -s /etc/shadow history.jsonl
rm sentinel.myid
ln -s /etc/shadow sentinel.myid'`)
	// A role change to record: the master is switched over.
	t.Logf("box %s: %s", others[0].Name, shIn(t, ctx, others[0], "redis-ha-agent switchover 2>&1"))
	if _, err := fg.settled(ctx, master, settleLimit); err != nil {
		t.Fatal(err)
	}
	shIn(t, ctx, m, "systemctl restart redis-ha-agent")
	if _, err := fg.settled(ctx, "", settleLimit); err != nil {
		t.Fatal(err)
	}
	if got := shIn(t, ctx, m, "sha256sum /etc/shadow"); got != shadow {
		t.Errorf("/etc/shadow changed: %s, was %s", got, shadow)
	}
	if n := shIn(t, ctx, m, "grep -c 'root:' /var/lib/redis-ha/sentinel.conf || true"); n != "0" {
		t.Errorf("sentinel.conf holds %s lines of /etc/shadow", n)
	}
	if got := shIn(t, ctx, m, `redis-cli -p 26379 -a "$(cat /etc/redis-ha/password)" --no-auth-warning sentinel myid`); got != id {
		t.Errorf("sentinel id %q after the plant, was %q", got, id)
	}
	t.Logf("box %s: the agent's word on the plants:\n%s", m.Name,
		shIn(t, ctx, m, "journalctl -u redis-ha-agent --no-pager -o cat | grep -E 'record role change|sentinel id file' | tail -3"))

	shIn(t, ctx, m, `cd /var/lib/redis-ha && runuser -u redis -- sh -ec 'rm history.jsonl; mkfifo history.jsonl'`)
	start := time.Now()
	shIn(t, ctx, m, "timeout 60 systemctl restart redis-ha-agent")
	t.Logf("box %s: restarted over a FIFO history in %s", m.Name, time.Since(start).Round(100*time.Millisecond))
	if _, err := fg.settled(ctx, "", settleLimit); err != nil {
		t.Fatal(err)
	}
	shIn(t, ctx, m, `cd /var/lib/redis-ha && rm history.jsonl && mv history.jsonl.kept history.jsonl`)
}
