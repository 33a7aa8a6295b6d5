package sentinel

import (
	"bytes"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update refreshes it)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestRenderRedis(t *testing.T) {
	tests := []struct {
		golden string
		conf   RedisConf
	}{
		{"redis-master-aof.conf", RedisConf{
			Port: 6379, Bind: []string{"127.0.0.1", "10.0.0.5"},
			Announce: wire.Addr{Host: "10.0.0.5", Port: 6379},
			Dir:      "/var/lib/redis-ha", Password: `pa"ss\word`,
			Persistence: "aof", Priority: 100,
			Settings: map[string]string{
				"maxmemory":                  "1gb",
				"client-output-buffer-limit": "replica 256mb 64mb 60",
				"notify-keyspace-events":     "",
				"Port":                       "1",                   // owned: dropped
				"maxmemory-policy":           "allkeys-lru\nport 1", // quoted, not a second line
			},
		}},
		{"redis-replica-rdb.conf", RedisConf{
			Port: 6380, Bind: []string{"0.0.0.0"}, Dir: "/data", Password: "secret",
			Persistence: "rdb", Priority: 0, ReplicaOf: &wire.Addr{Host: "10.0.0.6", Port: 6379},
		}},
		{"redis-none.conf", RedisConf{Port: 6379, Dir: "/data", Persistence: "none", Priority: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got := RenderRedis(tt.conf)
			golden(t, tt.golden, got)
			if !bytes.Equal(got, RenderRedis(tt.conf)) {
				t.Error("two renders of the same config differ")
			}
		})
	}
}

func TestRenderSentinel(t *testing.T) {
	base := SentinelConf{
		Name: "mym", Port: 26379, Bind: []string{"127.0.0.1", "10.0.0.5"},
		Announce: wire.Addr{Host: "10.0.0.5", Port: 26379}, Dir: "/var/lib/redis-ha/sentinel",
		Master: wire.Addr{Host: "10.0.0.6", Port: 6379}, Quorum: 2,
		DownAfter: 5 * time.Second, FailoverTimeout: time.Minute,
		Password: "s3cret", MyID: "0123456789abcdef0123456789abcdef01234567",
	}
	withState := base
	withState.Master = wire.Addr{Host: "redis-b.example", Port: 6379}
	withState.State = []string{
		"sentinel config-epoch mym 3",
		"sentinel leader-epoch mym 3",
		"sentinel known-replica mym 10.0.0.5 6379",
		"sentinel known-sentinel mym 10.0.0.7 26379 1123456789abcdef0123456789abcdef01234567",
		"sentinel current-epoch 3",
	}
	// A box that was master, off through a failover to 10.0.0.6: its state
	// names the new master as a replica (and itself not at all).
	rejoin := base
	rejoin.State = []string{
		"sentinel config-epoch mym 3",
		"sentinel known-replica mym 10.0.0.6 6379",
		"sentinel known-slave mym 10.0.0.6 6379",
		"sentinel known-replica mym 10.0.0.7 6379",
		"sentinel current-epoch 3",
	}
	rejoin.KnownReplicas = []wire.Addr{{Host: "10.0.0.5", Port: 6379}, {Host: "10.0.0.6", Port: 6379}, {Host: "10.0.0.7", Port: 6379}}
	// 10.0.0.7 was replaced by 10.0.0.8 in cluster.peers: its replica and
	// its sentinel are no members any more and are not loaded again; a
	// remembered member is kept, the new box announced.
	removed := base
	removed.State = []string{
		"sentinel config-epoch mym 3",
		"sentinel known-replica mym 10.0.0.7 6379",
		"sentinel known-slave mym 10.0.0.7 6379",
		"sentinel known-replica mym 10.0.0.5 6379",
		"sentinel known-sentinel mym 10.0.0.7 26379 1123456789abcdef0123456789abcdef01234567",
		"sentinel known-sentinel mym 10.0.0.7 0 2123456789abcdef0123456789abcdef01234567",
		"sentinel known-sentinel mym 10.0.0.6 26379 3123456789abcdef0123456789abcdef01234567",
		"sentinel current-epoch 3",
	}
	removed.KnownReplicas = []wire.Addr{{Host: "10.0.0.5", Port: 6379}, {Host: "10.0.0.6", Port: 6379}, {Host: "10.0.0.8", Port: 6379}}
	removed.Sentinels = []wire.Addr{{Host: "10.0.0.5", Port: 26379}, {Host: "10.0.0.6", Port: 26379}, {Host: "10.0.0.8", Port: 26379}}
	tests := []struct {
		golden string
		conf   SentinelConf
	}{
		{"sentinel-ip.conf", base},
		{"sentinel-hostname-state.conf", withState},
		{"sentinel-rejoin.conf", rejoin},
		{"sentinel-removed.conf", removed},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got := RenderSentinel(tt.conf)
			golden(t, tt.golden, got)
			resolve := strings.Index(string(got), "sentinel resolve-hostnames yes")
			monitor := strings.Index(string(got), "sentinel monitor ")
			if isIP(tt.conf.Master.Host) != (resolve < 0) {
				t.Errorf("resolve-hostnames present=%v for master host %q", resolve >= 0, tt.conf.Master.Host)
			}
			if resolve > monitor {
				t.Error("resolve-hostnames comes after the monitor line")
			}
			for _, l := range strings.Split(string(got), "\n") {
				if replicaLineOf(l, tt.conf.Master) {
					t.Errorf("the master %s is rendered as its own replica: %q", tt.conf.Master, l)
				}
			}
			for _, opt := range []string{"auth-pass", "down-after-milliseconds", "failover-timeout", "parallel-syncs", "known-replica", "config-epoch"} {
				if i := strings.Index(string(got), "sentinel "+opt+" "); i >= 0 && i < monitor {
					t.Errorf("sentinel %s precedes the monitor line", opt)
				}
			}
		})
	}
}

func TestQuoteRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "with space", `q"uote`, `back\slash`, "new\nline", "tab\tcr\r",
		"bell\a\b\x00\x1f\x7f", "ünïcødé", `\x41`, "'single'", `"`, `\`} {
		t.Run(s, func(t *testing.T) {
			q := quote(s)
			if strings.ContainsAny(q, "\n\r") {
				t.Fatalf("quote(%q) = %q spans lines", s, q)
			}
			args, ok := splitArgs("requirepass " + q)
			if !ok || len(args) != 2 || args[1] != s {
				t.Fatalf("splitArgs(quote(%q)) = %q, %v", s, args, ok)
			}
		})
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string // nil = unparseable
	}{
		{"a b  c", []string{"a", "b", "c"}},
		{`dir "/tmp/x y"`, []string{"dir", "/tmp/x y"}},
		{`logfile ""`, []string{"logfile", ""}},
		{`x 'it\'s' "\x41\n"`, []string{"x", "it's", "A\n"}},
		{`a\b c`, []string{`a\b`, "c"}}, // backslash outside quotes is literal
		{`ab"cd"`, []string{"abcd"}},    // a quote mid-word opens a quoted part
		{`sentinel auth-pass mym p w"q\z`, nil},
		{`"abc"def`, nil},
		{`'abc`, nil},
		{"", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := splitArgs(tt.in)
			if tt.want == nil {
				if ok {
					t.Fatalf("splitArgs(%q) = %q, want failure", tt.in, got)
				}
				return
			}
			if !ok || strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Fatalf("splitArgs(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		pw string
		ok bool
	}{
		{"Secret_1.x", true},
		{`a\b#c$!%&()*+,-./:;<=>?@[]^{|}~`, true},
		{"", false},
		{"with space", false},
		{`quo"te`, false},
		{"it's", false},
		{"new\nline", false},
		{"ünï", false},
	}
	for _, tt := range tests {
		t.Run(tt.pw, func(t *testing.T) {
			if err := CheckPassword(tt.pw); (err == nil) != tt.ok {
				t.Errorf("CheckPassword(%q) = %v, want ok=%v", tt.pw, err, tt.ok)
			}
		})
	}
}

// TestDiff: what a reload can change at runtime, and what needs a restart,
// read off the same directives the files are rendered from.
func TestDiff(t *testing.T) {
	redis := RedisConf{Port: 6379, Bind: []string{"127.0.0.1", "10.0.0.5"}, Announce: wire.Addr{Host: "10.0.0.5", Port: 6379},
		Dir: "/data", Password: "old", Persistence: "aof", Priority: 100, MinReplicas: 1, MinReplicasMaxLag: 10,
		Settings: map[string]string{"maxmemory": "1gb"}}
	sent := SentinelConf{Name: "main", Port: 26379, Dir: "/data", Master: wire.Addr{Host: "10.0.0.5", Port: 6379}, Quorum: 2,
		DownAfter: 5 * time.Second, FailoverTimeout: time.Minute, ParallelSyncs: 2, Password: "pw", MyID: "x"}
	type change struct {
		name    string
		cur     []Directive
		next    []Directive
		set     [][2]string
		restart string
	}
	r := func(f func(*RedisConf)) []Directive {
		c := redis
		c.Settings = maps.Clone(c.Settings)
		f(&c)
		return c.Directives()
	}
	s := func(f func(*SentinelConf)) []Directive { c := sent; f(&c); return c.Directives() }
	tests := []change{
		{name: "unchanged", cur: r(func(*RedisConf) {}), next: r(func(*RedisConf) {})},
		{name: "a setting changed", cur: r(func(*RedisConf) {}), next: r(func(c *RedisConf) { c.Settings["maxmemory"] = "2gb" }),
			set: [][2]string{{"maxmemory", "2gb"}}},
		{name: "a setting added", cur: r(func(*RedisConf) {}), next: r(func(c *RedisConf) { c.Settings["hz"] = "20" }),
			set: [][2]string{{"hz", "20"}}},
		{name: "a setting removed", cur: r(func(*RedisConf) {}), next: r(func(c *RedisConf) { delete(c.Settings, "maxmemory") }),
			restart: "maxmemory removed from redis.settings"},
		{name: "password", cur: r(func(*RedisConf) {}), next: r(func(c *RedisConf) { c.Password = "new" }),
			set: [][2]string{{"requirepass", "new"}, {"masterauth", "new"}}},
		{name: "priority", cur: r(func(*RedisConf) {}), next: r(func(c *RedisConf) { c.Priority = 0 }),
			set: [][2]string{{"replica-priority", "0"}}},
		{name: "aof to none", cur: r(func(*RedisConf) {}), next: r(func(c *RedisConf) { c.Persistence = "none" }),
			set: [][2]string{{"appendonly", "no"}, {"save", ""}}},
		{name: "rdb to aof", cur: r(func(c *RedisConf) { c.Persistence = "rdb" }), next: r(func(*RedisConf) {}),
			set: [][2]string{{"appendonly", "yes"}, {"appendfsync", "everysec"}}},
		{name: "port", cur: r(func(*RedisConf) {}), next: r(func(c *RedisConf) { c.Port = 6380 }), restart: "port changed"},
		{name: "address", cur: r(func(*RedisConf) {}), next: r(func(c *RedisConf) { c.Announce.Host = "10.0.0.9"; c.Bind[1] = "10.0.0.9" }),
			restart: "bind changed"},
		{name: "state directory", cur: r(func(*RedisConf) {}), next: r(func(c *RedisConf) { c.Dir = "/elsewhere" }), restart: "dir changed"},
		{name: "role and fence are not the reload's", cur: r(func(*RedisConf) {}),
			next: r(func(c *RedisConf) { c.ReplicaOf = &wire.Addr{Host: "10.0.0.6", Port: 6379}; c.MinReplicas = 2 })},
		{name: "sentinel timings and quorum", cur: s(func(*SentinelConf) {}),
			next: s(func(c *SentinelConf) { c.DownAfter = 2 * time.Second; c.Quorum = 3; c.ParallelSyncs = 4 }),
			set:  [][2]string{{"quorum", "3"}, {"down-after-milliseconds", "2000"}, {"parallel-syncs", "4"}}},
		{name: "sentinel master and state are its own", cur: s(func(*SentinelConf) {}),
			next: s(func(c *SentinelConf) {
				c.Master = wire.Addr{Host: "h", Port: 1}
				c.State = []string{"sentinel current-epoch 3"}
			})},
		{name: "sentinel password", cur: s(func(*SentinelConf) {}), next: s(func(c *SentinelConf) { c.Password = "x" }), restart: "requirepass changed"},
		{name: "sentinel group name", cur: s(func(*SentinelConf) {}), next: s(func(c *SentinelConf) { c.Name = "other" }), restart: "group name changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, restart := Diff(tt.cur, tt.next)
			if restart != tt.restart || !slices.Equal(set, tt.set) {
				t.Errorf("Diff = %q, %q; want %q, %q", set, restart, tt.set, tt.restart)
			}
		})
	}
}

// TestRenderTLS: with TLS the plain port is closed, and a renewed
// certificate (same paths, another digest) is a CONFIG SET for redis and a
// restart for sentinel, which cannot reload it.
func TestRenderTLS(t *testing.T) {
	files := &TLSFiles{Cert: "/d/tls.crt", Key: "/d/tls.key", CA: "/d/tls-ca.crt", Digest: "one"}
	rc := RedisConf{Port: 6379, Dir: "/d", Password: "pw", Persistence: "aof", TLS: files}
	conf := string(RenderRedis(rc))
	for _, want := range []string{"\nport 0\n", "\ntls-port 6379\n", "\ntls-cert-file \"/d/tls.crt\"\n", "\ntls-replication yes\n", "\ntls-auth-clients optional\n"} {
		if !strings.Contains("\n"+conf, want) {
			t.Errorf("redis.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "tls material") || strings.Contains(conf, "port 6379\n") && !strings.Contains(conf, "tls-port 6379\n") {
		t.Errorf("redis.conf:\n%s", conf)
	}
	renewed := rc
	renewed.TLS = &TLSFiles{Cert: files.Cert, Key: files.Key, CA: files.CA, Digest: "two"}
	set, restart := Diff(rc.Directives(), renewed.Directives())
	if restart != "" || len(set) != 1 || set[0] != [2]string{"tls-cert-file", "/d/tls.crt"} {
		t.Errorf("redis: set %v, restart %q; want CONFIG SET tls-cert-file", set, restart)
	}
	plain := rc
	plain.TLS = nil
	if _, restart := Diff(plain.Directives(), rc.Directives()); restart == "" {
		t.Error("turning TLS on needs no restart")
	}
	sc := SentinelConf{Name: "main", Port: 26379, Dir: "/d", Master: wire.Addr{Host: "10.0.0.1", Port: 6379}, Quorum: 2, TLS: files}
	sr := sc
	sr.TLS = renewed.TLS
	if _, restart := Diff(sc.Directives(), sr.Directives()); restart == "" {
		t.Error("sentinel: a renewed certificate needs no restart")
	}
	if s := string(RenderSentinel(sc)); !strings.Contains(s, "\ntls-port 26379\n") || !strings.HasPrefix(strings.SplitN(s, "\n", 3)[1], "port 0") {
		t.Errorf("sentinel.conf:\n%s", s)
	}
}

func TestRestartOnly(t *testing.T) {
	base := RedisConf{Port: 6379, Dir: "/var/lib/redis-ha", Password: "pw", Persistence: "aof", Priority: 100,
		Settings: map[string]string{"maxmemory": "1gb"}}
	got := RestartOnly(base.Directives())
	for _, l := range got {
		if strings.Contains(l, "pw") {
			t.Errorf("RestartOnly carries the password: %q", l)
		}
	}
	if !slices.Contains(got, "port 6379") || !slices.Contains(got, "setting maxmemory") || slices.Contains(got, "replica-priority 100") {
		t.Errorf("RestartOnly = %q", got)
	}
	same := base
	same.Priority, same.Password = 0, "other"
	same.Settings = map[string]string{"maxmemory": "2gb"}
	if !slices.Equal(RestartOnly(same.Directives()), got) {
		t.Error("runtime changes (priority, password, a setting's value) count as restart-only")
	}
	moved := base
	moved.Port = 6380
	if slices.Equal(RestartOnly(moved.Directives()), got) {
		t.Error("a new port does not count as restart-only")
	}
}
