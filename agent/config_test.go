package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

const cfgTestPassword = "s3cret-pass"

// cfgTestTree copies testdata/config/<name> into a temp dir, replacing @DIR@
// with that dir (paths in the config must be absolute), and adds the password
// file plus conf.d/00-test-password.conf pointing at it: git keeps neither
// absolute paths nor file modes.
func cfgTestTree(t *testing.T, name, password string, mode fs.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("testdata", "config", name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if rel == "want.txt" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, bytes.ReplaceAll(b, []byte("@DIR@"), []byte(dir)), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "password")
	cfgTestWrite(t, pw, password, mode)
	cfgTestWrite(t, filepath.Join(dir, "conf.d", "00-test-password.conf"),
		fmt.Sprintf("[auth]\npassword_file = %q\n", pw), 0o644)
	return dir
}

func cfgTestWrite(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode passes through the umask and is ignored for an
	// existing file; the password checks depend on the exact mode.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func cfgTestEnv(local []string, lookup map[string][]string) ConfigEnv {
	ips := func(ss []string) []net.IP {
		var out []net.IP
		for _, s := range ss {
			out = append(out, net.ParseIP(s))
		}
		return out
	}
	return ConfigEnv{
		LocalAddrs: func() ([]net.IP, error) { return ips(local), nil },
		LookupIP: func(host string) ([]net.IP, error) {
			if a, ok := lookup[host]; ok {
				return ips(a), nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		},
	}
}

// cfgTestProblems renders err one problem per line with the temp dir
// replaced by @DIR@ and stripped from the file names.
func cfgTestProblems(t *testing.T, err error, dir string) []string {
	t.Helper()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *ConfigError", err, err)
	}
	var out []string
	for _, line := range strings.Split(strings.ReplaceAll(ce.Error(), dir, "@DIR@"), "\n") {
		out = append(out, strings.TrimPrefix(line, "@DIR@/"))
	}
	if len(out) != len(ce.Problems) {
		t.Errorf("Error() has %d lines for %d problems", len(out), len(ce.Problems))
	}
	return out
}

func TestConfigFixtures(t *testing.T) {
	defaults := configDefaults()
	cases := []struct {
		name     string // directory under testdata/config; want.txt there = expected problems
		local    []string
		lookup   map[string][]string
		password string // "" = cfgTestPassword + "\n"
		mode     fs.FileMode
		setup    func(t *testing.T, dir string)
		check    func(t *testing.T, c *Config, dir string)
	}{
		{name: "single-box", local: []string{"127.0.0.1", "10.0.0.5"}, check: func(t *testing.T, c *Config, dir string) {
			cfgTestEqual(t, "Peers", c.Peers, []Peer{})
			cfgTestEqual(t, "Self", c.Self, Peer{"127.0.0.1", 6379})
			cfgTestEqual(t, "Bootstrap", c.Bootstrap, Peer{"127.0.0.1", 6379})
			cfgTestEqual(t, "Quorum", c.Quorum, 1)
			cfgTestEqual(t, "SentinelPort", c.SentinelPort, 26379)
			cfgTestEqual(t, "HTTPListen", c.HTTPListen, "127.0.0.1:8008")
			cfgTestEqual(t, "Password", c.Password, cfgTestPassword)
			cfgTestEqual(t, "Redis", c.Redis, defaults.Redis)
			cfgTestEqual(t, "Tuning", c.Tuning, defaults.Tuning)
		}},
		{name: "three-peers", local: []string{"127.0.0.1", "10.0.0.12", "fe80::1"}, check: func(t *testing.T, c *Config, dir string) {
			cfgTestEqual(t, "Peers", c.Peers, []Peer{{"10.0.0.11", 6379}, {"10.0.0.12", 6379}, {"10.0.0.13", 6379}})
			cfgTestEqual(t, "Self", c.Self, Peer{"10.0.0.12", 6379})
			cfgTestEqual(t, "Bootstrap", c.Bootstrap, Peer{"10.0.0.11", 6379})
			cfgTestEqual(t, "Quorum", c.Quorum, 2)
			cfgTestEqual(t, "SentinelPort", c.SentinelPort, 26379)
			cfgTestEqual(t, "HTTPListen", c.HTTPListen, "10.0.0.12:8008")
			cfgTestEqual(t, "Cluster.Name", c.Cluster.Name, "main")
		}},
		{name: "dropin-merge", check: func(t *testing.T, c *Config, dir string) {
			cfgTestEqual(t, "Cluster.Name", c.Cluster.Name, "base")
			cfgTestEqual(t, "Redis", c.Redis, RedisConfig{
				Port:        6380,                          // base, untouched by the drop-ins
				Binary:      "/opt/redis/bin/redis-server", // inline table in 20-inline.conf
				Persistence: "aof",                         // 10-override.conf over base
				Settings: map[string]string{
					"maxmemory":        "1gb",         // base
					"maxmemory-policy": "allkeys-lru", // overridden entry
					"hz":               "20",          // added entry
				},
			})
			cfgTestEqual(t, "Tuning.Somaxconn", c.Tuning.Somaxconn, 4096)
			cfgTestEqual(t, "Sentinel.DownAfter", c.Sentinel.DownAfter, Duration(1500*time.Millisecond))
			cfgTestEqual(t, "Sentinel.FailoverTimeout", c.Sentinel.FailoverTimeout, defaults.Sentinel.FailoverTimeout)
			cfgTestEqual(t, "SentinelPort", c.SentinelPort, 26380)
			cfgTestEqual(t, "Self", c.Self, Peer{"127.0.0.1", 6380})
		}},
		{name: "lexical-order", setup: func(t *testing.T, dir string) {
			// Leftovers that must never be read; git would not keep most of them.
			bad := "this is not TOML [\n"
			for _, f := range []string{"99-z.conf~", ".hidden.conf", "50-x.conf.dpkg-new", "51-x.conf.dpkg-old",
				"52-x.dpkg-dist.conf", "60-y.conf.rpmnew", "61-y.conf.rpmsave", ".62-y.conf.swp", "63-y.conf.swp"} {
				cfgTestWrite(t, filepath.Join(dir, "conf.d", f), bad, 0o644)
			}
			if err := os.Mkdir(filepath.Join(dir, "conf.d", "70-dir.conf"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, c *Config, dir string) {
			// "9-c" sorts after "20-b": lexical, not numeric.
			cfgTestEqual(t, "Cluster.Name", c.Cluster.Name, "nine")
			cfgTestEqual(t, "Node.Priority", c.Node.Priority, 20)
			var rel []string
			for _, f := range c.Files {
				r, _ := filepath.Rel(dir, f)
				rel = append(rel, r)
			}
			cfgTestEqual(t, "Files", rel, []string{"redis-ha.conf", "conf.d/00-test-password.conf",
				"conf.d/10-a.conf", "conf.d/20-b.conf", "conf.d/9-c.conf"})
		}},
		{name: "announce", check: func(t *testing.T, c *Config, dir string) {
			cfgTestEqual(t, "Self", c.Self, Peer{"10.0.0.13", 6390})
			cfgTestEqual(t, "Bootstrap", c.Bootstrap, Peer{"10.0.0.12", 6390})
			cfgTestEqual(t, "Quorum", c.Quorum, 3)
			cfgTestEqual(t, "SentinelPort", c.SentinelPort, 26390)
			cfgTestEqual(t, "HTTPListen", c.HTTPListen, "") // explicitly off
		}},
		{name: "hostnames", local: []string{"127.0.0.1", "10.0.0.12"},
			lookup: map[string][]string{"redis-a.example.net": {"10.0.0.11"}, "redis-b.example.net": {"10.0.0.12"}},
			check: func(t *testing.T, c *Config, dir string) {
				cfgTestEqual(t, "Peers", c.Peers, []Peer{
					{"redis-a.example.net", 6379}, {"redis-b.example.net", 6379}, {"redis-c.example.net", 6379}})
				cfgTestEqual(t, "Self", c.Self, Peer{"redis-b.example.net", 6379})
				cfgTestEqual(t, "Bootstrap", c.Bootstrap, Peer{"redis-a.example.net", 6379})
				cfgTestEqual(t, "HTTPListen", c.HTTPListen, "redis-b.example.net:8008")
			}},
		{name: "hook", setup: func(t *testing.T, dir string) {
			cfgTestWrite(t, filepath.Join(dir, "hook.sh"), "#!/bin/sh\n", 0o755)
		}, check: func(t *testing.T, c *Config, dir string) {
			cfgTestEqual(t, "Hooks.OnRoleChange", c.Hooks.OnRoleChange, filepath.Join(dir, "hook.sh"))
			cfgTestEqual(t, "VIP.Address", c.VIP.Address, "10.0.0.100/24")
		}},
		{name: "unknown-key"},
		{name: "wrong-type"},
		{name: "syntax-error"},
		{name: "duplicate-key"},
		{name: "all-problems"},
		{name: "no-local", local: []string{"127.0.0.1", "192.168.1.5"}},
		{name: "sentinel-port-default"},
		{name: "password-world-readable", mode: 0o644},
		{name: "password-missing"},
		{name: "password-multiline", password: "line one\nline two\n"},
		{name: "base-missing", setup: func(t *testing.T, dir string) {
			if _, err := os.Stat(filepath.Join(dir, "redis-ha.conf")); err == nil {
				t.Fatal("fixture has a base file")
			}
		}},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			pw, mode := tc.password, tc.mode
			if pw == "" {
				pw = cfgTestPassword + "\n"
			}
			if mode == 0 {
				mode = 0o640
			}
			dir := cfgTestTree(t, tc.name, pw, mode)
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			c, err := LoadConfig(filepath.Join(dir, "redis-ha.conf"), cfgTestEnv(tc.local, tc.lookup))

			want, rerr := os.ReadFile(filepath.Join("testdata", "config", tc.name, "want.txt"))
			if errors.Is(rerr, fs.ErrNotExist) {
				if err != nil {
					t.Fatalf("LoadConfig: %v", err)
				}
				tc.check(t, c, dir)
				return
			}
			if rerr != nil {
				t.Fatal(rerr)
			}
			if err == nil {
				t.Fatalf("LoadConfig succeeded; want problems:\n%s", want)
			}
			if c != nil {
				t.Errorf("LoadConfig returned a config with its error")
			}
			got := cfgTestProblems(t, err, dir)
			t.Logf("problems:\n  %s", strings.Join(got, "\n  "))
			wantLines := strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")
			ok := len(got) == len(wantLines)
			for i := 0; ok && i < len(got); i++ {
				ok = strings.HasPrefix(got[i], wantLines[i])
			}
			if !ok {
				t.Errorf("problems:\n  %s\nwant (prefixes):\n  %s", strings.Join(got, "\n  "), strings.Join(wantLines, "\n  "))
			}
		})
	}
	// A fixture nobody runs is a test that cannot fail.
	entries, err := os.ReadDir(filepath.Join("testdata", "config"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !seen[e.Name()] {
			t.Errorf("testdata/config/%s has no test case", e.Name())
		}
	}
}

func cfgTestEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// cfgShippedFile is the base file the package installs.
var cfgShippedFile = filepath.Join("..", "rootfs", "etc", "redis-ha", "redis-ha.conf")

// TestConfigShippedFileLoads: the shipped file, as installed, gives the
// documented defaults.
func TestConfigShippedFileLoads(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(cfgShippedFile)
	if err != nil {
		t.Fatal(err)
	}
	cfgTestWrite(t, filepath.Join(dir, "redis-ha.conf"), string(b), 0o644)
	pw := filepath.Join(dir, "password")
	cfgTestWrite(t, pw, cfgTestPassword+"\n", 0o640)
	cfgTestWrite(t, filepath.Join(dir, "conf.d", "99-test.conf"), fmt.Sprintf("auth.password_file = %q\n", pw), 0o644)

	c, err := LoadConfig(filepath.Join(dir, "redis-ha.conf"), cfgTestEnv(nil, nil))
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	want := configDefaults()
	want.Auth.PasswordFile = pw
	got := *c
	got.Peers, got.Self, got.Bootstrap, got.SentinelPort, got.Quorum = nil, Peer{}, Peer{}, 0, 0
	got.HTTPListen, got.Password, got.Files, got.Sum = "", "", nil, [32]byte{}
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("shipped file loads as\n%#v\nwant the defaults\n%#v", cfgTestFields(&got), cfgTestFields(want))
	}
	cfgTestEqual(t, "Self", c.Self, Peer{"127.0.0.1", 6379})
	cfgTestEqual(t, "SentinelPort", c.SentinelPort, 26379)
	cfgTestEqual(t, "HTTPListen", c.HTTPListen, "127.0.0.1:8008")
}

// cfgTestFields prints the file-backed part of c (Config's own String hides it).
func cfgTestFields(c *Config) string {
	return fmt.Sprintf("%+v %+v %+v %+v %+v %+v %+v %+v %+v",
		c.Cluster, c.Node, c.Redis, c.Sentinel, c.Auth, c.Tuning, c.HTTP, c.VIP, c.Hooks)
}

// Keys whose default is computed from others: the shipped file shows an
// example and says what the default is.
var cfgComputedDefaults = map[string]bool{
	"cluster.bootstrap_primary": true, "cluster.quorum": true, "node.announce": true,
	"sentinel.port": true, "http.listen": true, "vip.interface": true,
}

// TestConfigShippedFileListsEveryKey keeps the shipped file and the model
// from drifting: every key of Config appears there, under its table, and
// every literal shown is the real default.
func TestConfigShippedFileListsEveryKey(t *testing.T) {
	b, err := os.ReadFile(cfgShippedFile)
	if err != nil {
		t.Fatal(err)
	}
	tableRe := regexp.MustCompile(`^#\[([a-z_.]+)\]$`)
	keyRe := regexp.MustCompile(`^#([a-z_]+) = (.+)$`)
	shown := map[string]string{} // dotted key → value text
	var uncommented strings.Builder
	table := ""
	for i, line := range strings.Split(string(b), "\n") {
		switch {
		case tableRe.MatchString(line):
			table = tableRe.FindStringSubmatch(line)[1]
		case keyRe.MatchString(line):
			m := keyRe.FindStringSubmatch(line)
			if table == "" {
				t.Errorf("line %d: key %s outside a #[table]", i+1, m[1])
			}
			shown[table+"."+m[1]] = m[2]
		case line == "" || strings.HasPrefix(line, "# ") || line == "#":
			uncommented.WriteString("\n")
			continue
		default:
			t.Errorf("line %d: %q is neither prose (\"# ...\"), a #[table] nor a #key = value", i+1, line)
		}
		uncommented.WriteString(strings.TrimPrefix(line, "#") + "\n")
	}

	schema := configSchemaOf(reflect.TypeOf(Config{}))
	for key, kind := range schema {
		if kind == configTable {
			continue
		}
		if _, ok := shown[key]; !ok {
			t.Errorf("key %s is missing from the shipped file", key)
		}
	}
	for key := range shown {
		if k, ok := schema[key]; !ok || k == configTable {
			t.Errorf("the shipped file shows %s, which is not a key of Config", key)
		}
	}

	// Uncommented, the file must be valid and every non-computed value must
	// decode to the default.
	c := configDefaults()
	probs := decodeConfigFile("shipped", []byte(uncommented.String()), schema, c, configOrigins{})
	for _, p := range probs {
		t.Errorf("uncommented shipped file: %s", p)
	}
	for key, val := range shown {
		if cfgComputedDefaults[key] {
			continue
		}
		table, name, _ := strings.Cut(key, ".")
		d := configDefaults()
		doc := fmt.Sprintf("[%s]\n%s = %s\n", table, name, val)
		if probs := decodeConfigFile("shipped", []byte(doc), schema, d, configOrigins{}); len(probs) > 0 {
			t.Errorf("%s = %s: %v", key, val, probs)
			continue
		}
		if !reflect.DeepEqual(d, configDefaults()) {
			t.Errorf("the shipped file shows %s = %s, but the default differs:\n got %s\nwant %s",
				key, val, cfgTestFields(d), cfgTestFields(configDefaults()))
		}
	}
}

// TestConfigSchemaMatchesDecoder: every key the schema accepts, go-toml
// decodes into a field (so the walker and the struct agree).
func TestConfigSchemaMatchesDecoder(t *testing.T) {
	samples := map[configKind]string{
		configString: `"x"`, configInt: `7`, configBool: `false`, configStrings: `["a"]`,
		configDuration: `"2s"`, configStringMap: `{ k = "v" }`,
	}
	schema := configSchemaOf(reflect.TypeOf(Config{}))
	for key, kind := range schema {
		if kind == configTable {
			continue
		}
		table, name, _ := strings.Cut(key, ".")
		c := configDefaults()
		before := cfgTestFields(c)
		origins := configOrigins{}
		doc := fmt.Sprintf("[%s]\n%s = %s\n", table, name, samples[kind])
		if probs := decodeConfigFile("t", []byte(doc), schema, c, origins); len(probs) > 0 {
			t.Errorf("%s: %v", key, probs)
			continue
		}
		if cfgTestFields(c) == before {
			t.Errorf("%s = %s changed nothing in Config", key, samples[kind])
		}
		wantKey := key
		if kind == configStringMap {
			wantKey = key + ".k"
		}
		if o := origins[wantKey]; o != (configOrigin{File: "t", Line: 2}) {
			t.Errorf("%s: origin %+v, want t:2", wantKey, o)
		}
	}
}

// TestConfigSecretNeverPrinted: the password must not leak through any way
// of printing or encoding a Config.
func TestConfigSecretNeverPrinted(t *testing.T) {
	dir := cfgTestTree(t, "single-box", cfgTestPassword+"\n", 0o640)
	c, err := LoadConfig(filepath.Join(dir, "redis-ha.conf"), cfgTestEnv(nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("loaded", "config", c, "value", *c)
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		fmt.Sprint(c), fmt.Sprint(*c), fmt.Sprintf("%+v", c), fmt.Sprintf("%+v", *c),
		fmt.Sprintf("%#v", c), fmt.Sprintf("%#v", *c), fmt.Sprintf("%s", c),
		logged.String(), string(j),
	} {
		if strings.Contains(out, cfgTestPassword) {
			t.Errorf("password printed: %s", out)
		}
	}
	if !strings.Contains(logged.String(), "127.0.0.1:6379") {
		t.Errorf("log line lacks the config summary: %s", logged.String())
	}
}

// TestConfigSum: an unchanged set has the same sum (reload is a no-op); any
// change to a file or to the password changes it.
func TestConfigSum(t *testing.T) {
	dir := cfgTestTree(t, "three-peers", cfgTestPassword+"\n", 0o640)
	base := filepath.Join(dir, "redis-ha.conf")
	env := cfgTestEnv([]string{"10.0.0.12"}, nil)
	load := func() [32]byte {
		t.Helper()
		c, err := LoadConfig(base, env)
		if err != nil {
			t.Fatal(err)
		}
		return c.Sum
	}
	first := load()
	if first == ([32]byte{}) {
		t.Fatal("Sum is zero")
	}
	// Rewriting identical bytes is not a change.
	cfgTestWrite(t, filepath.Join(dir, "conf.d", "10-cluster.conf"),
		"[cluster]\npeers = [\"10.0.0.11\", \"10.0.0.12\", \"10.0.0.13\"]\nbootstrap_primary = \"10.0.0.11\"\n", 0o644)
	if load() != first {
		t.Error("Sum changed although no byte did")
	}
	cfgTestWrite(t, filepath.Join(dir, "password"), "another-pass\n", 0o640)
	second := load()
	if second == first {
		t.Error("Sum unchanged after a password change")
	}
	cfgTestWrite(t, filepath.Join(dir, "conf.d", "20-more.conf"), "# just a comment\n", 0o644)
	if load() == second {
		t.Error("Sum unchanged after adding a drop-in")
	}
}

func TestConfigPeerParse(t *testing.T) {
	cases := []struct {
		in      string
		want    Peer
		hasPort bool
		err     string
	}{
		{in: "10.0.0.1", want: Peer{"10.0.0.1", 6379}},
		{in: "10.0.0.1:6380", want: Peer{"10.0.0.1", 6380}, hasPort: true},
		{in: "Redis-A.Example.net", want: Peer{"redis-a.example.net", 6379}},
		{in: "redis-a:7000", want: Peer{"redis-a", 7000}, hasPort: true},
		{in: "::1", want: Peer{"::1", 6379}},
		{in: "[2001:db8::0001]", want: Peer{"2001:db8::1", 6379}},
		{in: "[2001:db8::1]:6380", want: Peer{"2001:db8::1", 6380}, hasPort: true},
		{in: "", err: "not an IP address or host name"},
		{in: "bad host", err: "not an IP address or host name"},
		{in: "-bad", err: "not an IP address or host name"},
		{in: "10.0.0.1:0", err: "want 1..65535"},
		{in: "10.0.0.1:x", err: "want 1..65535"},
		{in: "[10.0.0.1]", err: "brackets are for IPv6"},
		{in: "0.0.0.0", err: "cannot be a peer's address"},
		{in: "a:b:c", err: "want host or host:port"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, hasPort, err := parseConfigPeer(tc.in, 6379)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want || hasPort != tc.hasPort {
				t.Fatalf("= %v, %v, %v; want %v, %v", got, hasPort, err, tc.want, tc.hasPort)
			}
		})
	}
}

func TestConfigFindPeer(t *testing.T) {
	peers := []Peer{{"10.0.0.1", 6379}, {"10.0.0.2", 6380}, {"10.0.0.3", 6379}, {"10.0.0.3", 6380}}
	cases := []struct {
		in, want, err string
	}{
		{in: "10.0.0.1", want: "10.0.0.1:6379"},
		{in: "10.0.0.2", want: "10.0.0.2:6380"}, // the host alone is unambiguous
		{in: "10.0.0.3", want: "10.0.0.3:6379"}, // several: the default port wins
		{in: "10.0.0.3:6380", want: "10.0.0.3:6380"},
		{in: "10.0.0.1:6380", err: "is not one of cluster.peers"},
		{in: "10.0.0.9", err: "is not one of cluster.peers"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := findConfigPeer(peers, tc.in, 6379)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("= %v, %v; want %s", got, err, tc.want)
			}
		})
	}
	c := &Config{Peers: peers, Redis: RedisConfig{Port: 6380}}
	if got, err := c.FindPeer("10.0.0.3"); err != nil || got != (Peer{"10.0.0.3", 6380}) {
		t.Errorf("FindPeer with redis.port 6380 = %v, %v; want 10.0.0.3:6380", got, err)
	}
	if _, err := findConfigPeer([]Peer{{"h", 6380}, {"h", 6381}}, "h", 6379); err == nil ||
		!strings.Contains(err.Error(), "matches several peers") {
		t.Errorf("ambiguous host: err = %v", err)
	}
}

func TestConfigProblemString(t *testing.T) {
	cases := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "/etc/redis-ha/redis-ha.conf", Line: 3, Key: "redis.port", Msg: "bad"}, "/etc/redis-ha/redis-ha.conf:3: redis.port: bad"},
		{Problem{File: "f.conf", Line: 3, Col: 7, Msg: "syntax error: x"}, "f.conf:3:7: syntax error: x"},
		{Problem{File: "f.conf", Msg: "file not found"}, "f.conf: file not found"},
		{Problem{Key: "auth.password_file", Msg: "file not found"}, "<default>: auth.password_file: file not found"},
	}
	for _, tc := range cases {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.p, got, tc.want)
		}
	}
	err := &ConfigError{Problems: []Problem{cases[0].p, cases[3].p}}
	if got, want := err.Error(), cases[0].want+"\n"+cases[3].want; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestConfigDefaultsAreUnattributed: a problem with a key nobody set points
// at <default>, not at some file.
func TestConfigDefaultsAreUnattributed(t *testing.T) {
	c := configDefaults()
	c.Auth.PasswordFile = filepath.Join(t.TempDir(), "nope") // as if built in
	probs := validateConfig(c, configOrigins{}, configFacts{password: configFileFact{err: fs.ErrNotExist}})
	got := make([]string, len(probs))
	for i, p := range probs {
		got[i] = p.String()
	}
	if len(probs) != 1 || !strings.HasPrefix(got[0], "<default>: auth.password_file: ") {
		t.Errorf("problems %q, want one <default>: auth.password_file", got)
	}
}

func TestConfigDropInNames(t *testing.T) {
	for name, want := range map[string]bool{
		"10-cluster.conf": true, "a.conf": true,
		".10-cluster.conf": false, "10-cluster.conf~": false, "10-cluster.conf.swp": false,
		"10-cluster.conf.dpkg-old": false, "10-cluster.dpkg-new.conf": false, "10.conf.rpmnew": false,
		"10.conf.rpmsave": false, "README": false, "10-cluster.toml": false,
	} {
		if got := isConfigDropIn(name); got != want {
			t.Errorf("isConfigDropIn(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestConfigUnknownKeySuggestion(t *testing.T) {
	w := configWalker{schema: configSchemaOf(reflect.TypeOf(Config{}))}
	if got := w.suggest([]string{"port"}); got != " (did you mean redis.port or sentinel.port?)" {
		t.Errorf("suggest(port) = %q", got)
	}
	if got := w.suggest([]string{"zzz"}); got != "" {
		t.Errorf("suggest(zzz) = %q", got)
	}
}
