package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false}, {"1048576", 1048576, false}, {"512kB", 512 << 10, false},
		{"10MB", 10 << 20, false}, {"1GB", 1 << 30, false}, {"-1", 0, true}, {"lots", 0, true},
		// Wrapped to -2^63 ("no bound") and to 0 before (review L3).
		{"8589934592GB", 0, true}, {"17179869184GB", 0, true}, {"8589934591GB", 8589934591 << 30, false},
	}
	for _, tt := range tests {
		got, err := parseBytes(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// TestHTTPEndpoints drives the handler over a node whose state is set by
// hand: the endpoints must answer from that state alone.
func TestHTTPEndpoints(t *testing.T) {
	self := wire.Addr{Host: "10.0.0.11", Port: 6379}
	other := wire.Addr{Host: "10.0.0.12", Port: 6379}
	now := time.Now()
	master := ha.Snapshot{Self: self, Peers: 3, RedisUp: true, Role: wire.Role{Kind: "master"}, Named: self, Usable: 3}
	replica := ha.Snapshot{Self: self, Peers: 3, RedisUp: true, Role: wire.Role{Kind: "slave", Master: other, Link: "connected"}, Named: other, Usable: 3}
	fenced := master
	fenced.Fenced = true
	tests := []struct {
		name   string
		s      ha.Snapshot
		q      ha.Quorum
		lag    int64
		at     time.Time
		path   string
		method string
		live   string // what the local redis answers to ROLE now ("": nothing listens)
		want   int
		inBody string
	}{
		{name: "primary on the agreed master", s: master, q: ha.Quorum{Master: self, At: now}, live: "master", path: "/primary", want: 200},
		{name: "HEAD primary", s: master, q: ha.Quorum{Master: self, At: now}, live: "master", path: "/primary", method: "HEAD", want: 200},
		{name: "no primary once demoted, before the next observation", s: master, q: ha.Quorum{Master: self, At: now}, live: "slave", path: "/primary", want: 503},
		{name: "no primary when the local redis does not answer", s: master, q: ha.Quorum{Master: self, At: now}, path: "/primary", want: 503},
		{name: "no primary without quorum agreement", s: master, q: ha.Quorum{At: now}, path: "/primary", want: 503},
		{name: "no primary when fenced", s: fenced, q: ha.Quorum{Master: self, At: now}, path: "/primary", want: 503},
		{name: "no primary on stale state", s: master, q: ha.Quorum{Master: self, At: now}, at: now.Add(-time.Minute), path: "/primary", want: 503},
		{name: "replica", s: replica, q: ha.Quorum{Master: other, At: now}, path: "/replica", want: 200},
		{name: "replica within lag", s: replica, lag: 100, path: "/replica?lag=1kB", want: 200},
		{name: "replica behind", s: replica, lag: 4096, path: "/replica?lag=1kB", want: 503},
		{name: "replica lag unknown", s: replica, lag: -1, path: "/replica?lag=1kB", want: 503},
		{name: "replica lag unknown, no bound", s: replica, lag: -1, path: "/replica", want: 200},
		{name: "bad lag", s: replica, path: "/replica?lag=x", want: 400},
		{name: "master is no replica", s: master, path: "/replica", want: 503},
		{name: "health", s: replica, path: "/health", want: 200},
		{name: "health with redis down", s: ha.Snapshot{Self: self, Peers: 3}, path: "/health", want: 503},
		{name: "status", s: fenced, path: "/status", want: 200, inBody: `"fenced":true`},
		{name: "read-only", s: master, path: "/status", method: "POST", want: 405},
		{name: "metrics", s: master, q: ha.Quorum{Master: self, At: now, Reachable: 3}, path: "/metrics", want: 200, inBody: "redis_ha_primary 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := tt.at
			if at.IsZero() {
				at = now
			}
			cfg := &config.Config{Self: wire.Addr{Host: "127.0.0.1", Port: testutil.ClosedPort(t)}}
			if tt.live != "" {
				cfg.Self.Port = fakeRole(t, tt.live)
			}
			n := &node{log: slog.New(slog.DiscardHandler)}
			n.setConfig(cfg)
			n.pub.Store(&published{cfg: cfg, view: ha.View{S: tt.s, Q: tt.q, Lag: tt.lag, At: at}})
			defer n.local.Close()
			defer n.api.redis.Close()
			method := tt.method
			if method == "" {
				method = "GET"
			}
			rec := httptest.NewRecorder()
			n.httpHandler().ServeHTTP(rec, httptest.NewRequest(method, tt.path, nil))
			if rec.Code != tt.want {
				t.Fatalf("%s %s = %d, want %d: %s", method, tt.path, rec.Code, tt.want, rec.Body)
			}
			if method == "HEAD" && rec.Body.Len() > 0 {
				t.Errorf("HEAD returned a body")
			}
			if tt.inBody != "" && !strings.Contains(rec.Body.String(), tt.inBody) {
				t.Errorf("body lacks %q:\n%s", tt.inBody, rec.Body)
			}
		})
	}
}

// fakeRole serves ROLE on a loopback port as a redis whose role is kind
// would (and refuses anything else), and returns the port.
func fakeRole(t *testing.T, kind string) int {
	t.Helper()
	reply := "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n"
	if kind == "slave" {
		reply = "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:0\r\n"
	}
	return testutil.ServeRESP(t, func(args []string) string {
		if len(args) > 0 && strings.EqualFold(args[0], "ROLE") {
			return reply
		}
		return "-ERR unknown command\r\n" // HELLO and the like: an old server, to go-redis
	}).Port()
}

// TestMetricsFormat checks the exposition format line by line: HELP and TYPE
// before each family, samples named after it, numeric values.
func TestMetricsFormat(t *testing.T) {
	n := &node{}
	n.pub.Store(&published{cfg: &config.Config{}, view: ha.View{At: time.Now()}})
	rec := httptest.NewRecorder()
	n.httpHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	sample := regexp.MustCompile(`^([a-z_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9]+(\.[0-9]+)?(e[+-][0-9]+)?$`)
	family := ""
	for _, line := range strings.Split(strings.TrimSpace(rec.Body.String()), "\n") {
		switch {
		case strings.HasPrefix(line, "# HELP "):
			family = strings.Fields(line)[2]
		case strings.HasPrefix(line, "# TYPE "):
			if f := strings.Fields(line); f[2] != family || (f[3] != "gauge" && f[3] != "counter") {
				t.Errorf("bad TYPE line %q", line)
			}
		default:
			m := sample.FindStringSubmatch(line)
			if m == nil || m[1] != family {
				t.Errorf("bad sample %q (family %q)", line, family)
			}
		}
	}
}

// TestMetricsUnknown: what the agent does not know is absent, with a
// *_known gauge at 0, never -1 (which "lag > X" would read as small).
func TestMetricsUnknown(t *testing.T) {
	self := wire.Addr{Host: "10.0.0.12", Port: 6379}
	for _, tc := range []struct {
		name      string
		s         ha.Snapshot
		lag       int64
		want, not []string
	}{
		{name: "replica whose master does not answer", s: ha.Snapshot{Self: self, RedisUp: true, Role: wire.Role{Kind: "slave", Offset: 10}}, lag: -1,
			want: []string{"redis_ha_replication_lag_known 0", "redis_ha_replication_offset_bytes 10"}, not: []string{"redis_ha_replication_lag_bytes "}},
		{name: "replica in sync", s: ha.Snapshot{Self: self, RedisUp: true, Role: wire.Role{Kind: "slave", Offset: 10}}, lag: 0,
			want: []string{"redis_ha_replication_lag_known 1", "redis_ha_replication_lag_bytes 0"}},
		{name: "redis down", s: ha.Snapshot{Self: self}, lag: -1,
			want: []string{"redis_ha_replication_lag_known 0", "redis_ha_up 0"}, not: []string{"redis_ha_replication_offset_bytes ", "redis_ha_replication_lag_bytes "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body strings.Builder
			v := view{View: ha.View{At: time.Now(), S: tc.s, Lag: tc.lag}, cfg: &config.Config{}, now: time.Now()}
			writeMetrics(&body, v, -1, procStats{})
			for _, w := range append(tc.want, "redis_ha_tuning_known 0") {
				if !strings.Contains(body.String(), w+"\n") {
					t.Errorf("no %q in\n%s", w, body.String())
				}
			}
			for _, l := range strings.Split(body.String(), "\n") {
				if strings.HasSuffix(l, " -1") {
					t.Errorf("sample %q: -1 for unknown", l)
				}
				for _, no := range append(tc.not, "redis_ha_tuning_drift ") {
					if strings.HasPrefix(l, no) {
						t.Errorf("sample %q present although unknown", l)
					}
				}
			}
		})
	}
}

// TestMetricsPromtool runs Prometheus' own linter over /metrics (make deps
// installs promtool; the test skips where it is missing).
func TestMetricsPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (make deps installs it)")
	}
	self := wire.Addr{Host: "10.0.0.11", Port: 6379}
	n := &node{}
	n.pub.Store(&published{cfg: &config.Config{}, view: ha.View{At: time.Now(), S: ha.Snapshot{Self: self, Peers: 3, RedisUp: true, Role: wire.Role{Kind: "master", Offset: 1234}, Named: self, Usable: 3},
		Q: ha.Quorum{Master: self, Reachable: 3, At: time.Now()}}})
	rec := httptest.NewRecorder()
	n.httpHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = rec.Body
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestHTTPFollowsReload: a reload that changes http.listen moves the API,
// as the user's first drop-in does (single-box on 127.0.0.1, then the box's
// own address).
func TestHTTPFollowsReload(t *testing.T) {
	first, second := testutil.FreeAddr(t), testutil.FreeAddr(t)
	n := &node{log: slog.New(slog.DiscardHandler)}
	n.setConfig(&config.Config{HTTPListen: first})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.serveHTTP(ctx, first, n.log) }()
	defer func() { cancel(); <-done }()

	answers := func(addr string) bool {
		resp, err := http.Get("http://" + addr + "/status")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	testutil.WaitUntil(t, 5*time.Second, "the api on "+first, func() bool { return answers(first) })
	n.setConfig(&config.Config{HTTPListen: second})
	testutil.WaitUntil(t, 5*time.Second, "the api moved to "+second, func() bool { return answers(second) && !answers(first) })
	n.setConfig(&config.Config{HTTPListen: ""})
	testutil.WaitUntil(t, 5*time.Second, "the api off", func() bool { return !answers(second) })
}

// TestLimitListener: connections beyond the cap wait for one to close
// (review M2: 1000 idle keep-alive connections held 1000 descriptors).
func TestLimitListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := limitListener(raw, 2)
	defer l.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for i := range 3 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = i
	}
	first := <-accepted
	<-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted over a cap of 2")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(2 * time.Second):
		t.Fatal("the third connection was not accepted once one closed")
	}
}

// TestAPIProbeBatches: requests arriving together share one ROLE, and a
// request never gets the answer of a probe sent before it arrived.
func TestAPIProbeBatches(t *testing.T) {
	var p apiProbe
	var probes atomic.Int64
	release := make(chan struct{})
	started := make(chan struct{}, 100)
	probe := func(context.Context) (string, error) {
		probes.Add(1)
		started <- struct{}{}
		<-release
		return "master", nil
	}
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = p.role(context.Background(), probe) }) // the first batch, held in its probe
	<-started
	for range 100 { // arrive while the first probe is out: one more batch
		wg.Go(func() { _, _ = p.role(context.Background(), probe) })
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	if got := probes.Load(); got != 2 {
		t.Errorf("101 requests sent %d probes; want 2 (one batch out, one that waited for it)", got)
	}
}

// TestHTTPServerBounds: an oversized header is refused.
func TestHTTPServerBounds(t *testing.T) {
	cfg := &config.Config{Self: wire.Addr{Host: "127.0.0.1", Port: testutil.ClosedPort(t)}}
	n := &node{log: slog.New(slog.DiscardHandler)}
	n.setConfig(cfg)
	n.pub.Store(&published{cfg: cfg})
	port := testutil.ClosedPort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.serveHTTPOn(ctx, fmt.Sprintf("127.0.0.1:%d", port), n.log) }()
	defer func() { cancel(); <-done }()
	url := fmt.Sprintf("http://127.0.0.1:%d/health", port)
	testutil.WaitUntil(t, 5*time.Second, "api up", func() bool {
		r, err := http.Get(url)
		if err == nil {
			r.Body.Close()
		}
		return err == nil
	})
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-Big", strings.Repeat("x", 16<<10))
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("16 KiB header: %d; want 431", r.StatusCode)
	}
}
