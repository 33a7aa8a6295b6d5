package cluster

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHTTPFlood: a flood of requests on the HTTP API must not starve the
// agent's loop (review M2 and its untested /primary flood). The agents run
// with one P (their default, GOMAXPROCS=1) while the master's API takes
// 128 keep-alive clients asking /primary as fast as they can, each replica's
// 32 more, and 400 connections that never send a request (beyond the cap).
// Throughout, the master must not fence itself or lose its role, the
// sentinels must not fail over, /primary must answer 200 on the master and
// never on a replica.
func TestHTTPFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: three real agents")
	}
	g := newGroup(t, 6730, "5s")
	g.startAll()
	master := g.waitConverged(90 * time.Second)
	ctx := context.Background()
	mc := g.client(master)
	fence := func() string {
		v, _ := mc.ConfigGet(ctx, "min-replicas-to-write").Result()
		return v["min-replicas-to-write"]
	}
	baseFence := fence()
	historyLen := func(n *agentProc) int {
		b, _ := os.ReadFile(filepath.Join(n.dir, "data", "history.jsonl"))
		return strings.Count(string(b), "\n")
	}
	baseHistory := map[int]int{}
	for _, n := range g.nodes {
		baseHistory[n.i] = historyLen(n)
	}

	const floodFor = 20 * time.Second
	fctx, stop := context.WithTimeout(ctx, floodFor)
	defer stop()
	type tally struct{ ok, unavailable, other, errs atomic.Int64 }
	tallies := map[int]*tally{}
	var wg sync.WaitGroup
	for _, n := range g.nodes {
		tl := &tally{}
		tallies[n.i] = tl
		workers := 32
		if n == master {
			workers = 128
		}
		for range workers {
			wg.Go(func() {
				c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
				defer c.CloseIdleConnections()
				for fctx.Err() == nil {
					req, _ := http.NewRequestWithContext(fctx, http.MethodGet, n.httpURL()+"/primary", nil)
					r, err := c.Do(req)
					if err != nil {
						if fctx.Err() == nil {
							tl.errs.Add(1)
						}
						continue
					}
					_, _ = io.Copy(io.Discard, r.Body)
					r.Body.Close()
					switch r.StatusCode {
					case 200:
						tl.ok.Add(1)
					case 503:
						tl.unavailable.Add(1)
					default:
						tl.other.Add(1)
					}
				}
			})
		}
	}
	var idle []net.Conn
	for range 400 {
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		if c, err := d.Dial("tcp", strings.TrimPrefix(master.httpURL(), "http://")); err == nil {
			idle = append(idle, c)
		}
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()

	var samples, fenced, failovers int
	for fctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		samples++
		if f := fence(); f != baseFence {
			fenced++
			t.Errorf("%s: the master fenced itself under the flood (min-replicas-to-write %s, was %s)", time.Now().Format(time.StampMilli), f, baseFence)
		}
		for _, n := range g.nodes {
			if s := g.sentinelMaster(n); s != master.addr() {
				failovers++
				t.Errorf("sentinel of node %d names %q under the flood", n.i, s)
			}
		}
	}
	wg.Wait()
	for _, n := range g.nodes {
		tl := tallies[n.i]
		t.Logf("node %d (master %v): /primary 200 %d, 503 %d, other %d, errors %d in %v",
			n.i, n == master, tl.ok.Load(), tl.unavailable.Load(), tl.other.Load(), tl.errs.Load(), floodFor)
		if got := historyLen(n); got != baseHistory[n.i] {
			t.Errorf("node %d recorded %d role changes under the flood", n.i, got-baseHistory[n.i])
		}
		if n == master {
			if tl.ok.Load() == 0 || tl.unavailable.Load()*100 > tl.ok.Load() {
				t.Errorf("the master answered /primary 200 %d times and 503 %d times", tl.ok.Load(), tl.unavailable.Load())
			}
		} else if tl.ok.Load() > 0 {
			t.Errorf("replica node %d answered /primary 200 %d times", n.i, tl.ok.Load())
		}
	}
	t.Logf("%d samples: fenced %d, sentinels naming another master %d", samples, fenced, failovers)
	if m := g.waitConverged(30 * time.Second); m != master {
		t.Errorf("master moved from node %d to node %d", master.i, m.i)
	}
}
