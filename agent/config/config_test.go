package config

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
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

const testPassword = "s3cret-pass"

// testTree copies testdata/<name> into a temp dir, replacing @DIR@
// with that dir (paths in the config must be absolute), and adds the password
// file plus conf.d/00-test-password.conf pointing at it: git keeps neither
// absolute paths nor file modes.
func testTree(t *testing.T, name, password string, mode fs.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("testdata", name)
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
	writeFile(t, pw, password, mode)
	writeFile(t, filepath.Join(dir, "conf.d", "00-test-password.conf"),
		fmt.Sprintf("[auth]\npassword_file = %q\n", pw), 0o644)
	return dir
}

func writeFile(t *testing.T, path, content string, mode fs.FileMode) {
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

func testEnv(local []string, lookup map[string][]string) Env {
	ips := func(ss []string) []net.IP {
		var out []net.IP
		for _, s := range ss {
			out = append(out, net.ParseIP(s))
		}
		return out
	}
	return Env{
		LocalAddrs: func() ([]net.IP, error) { return ips(local), nil },
		LookupIP: func(host string) ([]net.IP, error) {
			if a, ok := lookup[host]; ok {
				return ips(a), nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		},
	}
}

// problemsOf renders err one problem per line with the temp dir
// replaced by @DIR@ and stripped from the file names.
func problemsOf(t *testing.T, err error, dir string) []string {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *Error", err, err)
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

func TestFixtures(t *testing.T) {
	def := defaults()
	cases := []struct {
		name     string // directory under testdata/config; want.txt there = expected problems
		local    []string
		lookup   map[string][]string
		password string // "" = testPassword + "\n"
		mode     fs.FileMode
		setup    func(t *testing.T, dir string)
		check    func(t *testing.T, c *Config, dir string)
	}{
		{name: "single-box", local: []string{"127.0.0.1", "10.0.0.5"}, check: func(t *testing.T, c *Config, dir string) {
			equal(t, "Peers", c.Peers, []wire.Addr{})
			equal(t, "Self", c.Self, wire.Addr{Host: "127.0.0.1", Port: 6379})
			equal(t, "Bootstrap", c.Bootstrap, wire.Addr{Host: "127.0.0.1", Port: 6379})
			equal(t, "Quorum", c.Quorum, 1)
			equal(t, "SentinelPort", c.SentinelPort, 26379)
			equal(t, "HTTPListen", c.HTTPListen, "127.0.0.1:8008")
			equal(t, "Password", c.Password, testPassword)
			equal(t, "Redis", c.Redis, def.Redis)
			equal(t, "Tuning", c.Tuning, def.Tuning)
		}},
		{name: "three-peers", local: []string{"127.0.0.1", "10.0.0.12", "fe80::1"}, check: func(t *testing.T, c *Config, dir string) {
			equal(t, "Peers", c.Peers, []wire.Addr{{Host: "10.0.0.11", Port: 6379}, {Host: "10.0.0.12", Port: 6379}, {Host: "10.0.0.13", Port: 6379}})
			equal(t, "Self", c.Self, wire.Addr{Host: "10.0.0.12", Port: 6379})
			equal(t, "Bootstrap", c.Bootstrap, wire.Addr{Host: "10.0.0.11", Port: 6379})
			equal(t, "Quorum", c.Quorum, 2)
			equal(t, "SentinelPort", c.SentinelPort, 26379)
			equal(t, "HTTPListen", c.HTTPListen, "10.0.0.12:8008")
			equal(t, "Cluster.Name", c.Cluster.Name, "main")
		}},
		{name: "dropin-merge", check: func(t *testing.T, c *Config, dir string) {
			equal(t, "Cluster.Name", c.Cluster.Name, "base")
			equal(t, "Redis", c.Redis, Redis{
				Port:        6380,                          // base, untouched by the drop-ins
				Binary:      "/opt/redis/bin/redis-server", // inline table in 20-inline.conf
				Persistence: "aof",                         // 10-override.conf over base
				Settings: map[string]string{
					"maxmemory":        "1gb",         // base
					"maxmemory-policy": "allkeys-lru", // overridden entry
					"hz":               "20",          // added entry
				},
			})
			equal(t, "Tuning.Somaxconn", c.Tuning.Somaxconn, 4096)
			equal(t, "Sentinel.DownAfter", c.Sentinel.DownAfter, Duration(1500*time.Millisecond))
			equal(t, "Sentinel.FailoverTimeout", c.Sentinel.FailoverTimeout, def.Sentinel.FailoverTimeout)
			equal(t, "SentinelPort", c.SentinelPort, 26380)
			equal(t, "Self", c.Self, wire.Addr{Host: "127.0.0.1", Port: 6380})
		}},
		{name: "lexical-order", setup: func(t *testing.T, dir string) {
			// Leftovers that must never be read; git would not keep most of them.
			bad := "this is not TOML [\n"
			for _, f := range []string{"99-z.conf~", ".hidden.conf", "50-x.conf.dpkg-new", "51-x.conf.dpkg-old",
				"52-x.dpkg-dist.conf", "60-y.conf.rpmnew", "61-y.conf.rpmsave", ".62-y.conf.swp", "63-y.conf.swp"} {
				writeFile(t, filepath.Join(dir, "conf.d", f), bad, 0o644)
			}
			if err := os.Mkdir(filepath.Join(dir, "conf.d", "70-dir.conf"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, c *Config, dir string) {
			// "9-c" sorts after "20-b": lexical, not numeric.
			equal(t, "Cluster.Name", c.Cluster.Name, "nine")
			equal(t, "Node.Priority", c.Node.Priority, 20)
			var rel []string
			for _, f := range c.Files {
				r, _ := filepath.Rel(dir, f)
				rel = append(rel, r)
			}
			equal(t, "Files", rel, []string{"redis-ha.conf", "conf.d/00-test-password.conf",
				"conf.d/10-a.conf", "conf.d/20-b.conf", "conf.d/9-c.conf"})
		}},
		{name: "announce", check: func(t *testing.T, c *Config, dir string) {
			equal(t, "Self", c.Self, wire.Addr{Host: "10.0.0.13", Port: 6390})
			equal(t, "Bootstrap", c.Bootstrap, wire.Addr{Host: "10.0.0.12", Port: 6390})
			equal(t, "Quorum", c.Quorum, 3)
			equal(t, "SentinelPort", c.SentinelPort, 26390)
			equal(t, "HTTPListen", c.HTTPListen, "") // explicitly off
		}},
		{name: "hostnames", local: []string{"127.0.0.1", "10.0.0.12"},
			lookup: map[string][]string{"redis-a.example.net": {"10.0.0.11"}, "redis-b.example.net": {"10.0.0.12"}},
			check: func(t *testing.T, c *Config, dir string) {
				equal(t, "Peers", c.Peers, []wire.Addr{
					{Host: "redis-a.example.net", Port: 6379}, {Host: "redis-b.example.net", Port: 6379}, {Host: "redis-c.example.net", Port: 6379}})
				equal(t, "Self", c.Self, wire.Addr{Host: "redis-b.example.net", Port: 6379})
				equal(t, "Bootstrap", c.Bootstrap, wire.Addr{Host: "redis-a.example.net", Port: 6379})
				equal(t, "HTTPListen", c.HTTPListen, "redis-b.example.net:8008")
			}},
		{name: "hook", setup: func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "hook.sh"), "#!/bin/sh\n", 0o755)
		}, check: func(t *testing.T, c *Config, dir string) {
			equal(t, "Hooks.OnRoleChange", c.Hooks.OnRoleChange, filepath.Join(dir, "hook.sh"))
			equal(t, "VIP.Address", c.VIP.Address, "10.0.0.100/24")
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
				pw = testPassword + "\n"
			}
			if mode == 0 {
				mode = 0o640
			}
			dir := testTree(t, tc.name, pw, mode)
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			c, err := Load(filepath.Join(dir, "redis-ha.conf"), testEnv(tc.local, tc.lookup))

			want, rerr := os.ReadFile(filepath.Join("testdata", tc.name, "want.txt"))
			if errors.Is(rerr, fs.ErrNotExist) {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				tc.check(t, c, dir)
				return
			}
			if rerr != nil {
				t.Fatal(rerr)
			}
			if err == nil {
				t.Fatalf("Load succeeded; want problems:\n%s", want)
			}
			if c != nil {
				t.Errorf("Load returned a config with its error")
			}
			got := problemsOf(t, err, dir)
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
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !seen[e.Name()] {
			t.Errorf("testdata/%s has no test case", e.Name())
		}
	}
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// shippedFile is the base file the package installs.
var shippedFile = filepath.Join("..", "..", "rootfs", "etc", "redis-ha", "redis-ha.conf")

// TestConfigShippedFileLoads: the shipped file, as installed, gives the
// documented defaults.
func TestShippedFileLoads(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(shippedFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "redis-ha.conf"), string(b), 0o644)
	pw := filepath.Join(dir, "password")
	writeFile(t, pw, testPassword+"\n", 0o640)
	writeFile(t, filepath.Join(dir, "conf.d", "99-test.conf"), fmt.Sprintf("auth.password_file = %q\n", pw), 0o644)

	c, err := Load(filepath.Join(dir, "redis-ha.conf"), testEnv(nil, nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := defaults()
	want.Auth.PasswordFile = pw
	got := *c
	got.Peers, got.Self, got.Bootstrap, got.SentinelPort, got.Quorum = nil, wire.Addr{}, wire.Addr{}, 0, 0
	got.HTTPListen, got.Password, got.Files, got.Sum = "", "", nil, [32]byte{}
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("shipped file loads as\n%#v\nwant the defaults\n%#v", fieldsOf(&got), fieldsOf(want))
	}
	equal(t, "Self", c.Self, wire.Addr{Host: "127.0.0.1", Port: 6379})
	equal(t, "SentinelPort", c.SentinelPort, 26379)
	equal(t, "HTTPListen", c.HTTPListen, "127.0.0.1:8008")
}

// fieldsOf prints the file-backed part of c (Config's own String hides it).
func fieldsOf(c *Config) string {
	return fmt.Sprintf("%+v %+v %+v %+v %+v %+v %+v %+v %+v %+v %+v",
		c.Cluster, c.Node, c.Redis, c.Sentinel, c.Auth, c.Tuning, c.HTTP, c.VIP, c.Hooks, c.Log, c.TLS)
}

// Keys whose default is computed from others: the shipped file shows an
// example and says what the default is.
var computedDefaults = map[string]bool{
	"cluster.bootstrap_primary": true, "cluster.quorum": true, "node.announce": true,
	"sentinel.port": true, "http.listen": true, "vip.interface": true,
}

// TestConfigShippedFileListsEveryKey keeps the shipped file and the model
// from drifting: every key of Config appears there, under its table, and
// every literal shown is the real default.
func TestShippedFileListsEveryKey(t *testing.T) {
	b, err := os.ReadFile(shippedFile)
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

	schema := schemaOf(reflect.TypeOf(Config{}))
	for key, kind := range schema {
		if kind == kindTable {
			continue
		}
		if _, ok := shown[key]; !ok {
			t.Errorf("key %s is missing from the shipped file", key)
		}
	}
	for key := range shown {
		if k, ok := schema[key]; !ok || k == kindTable {
			t.Errorf("the shipped file shows %s, which is not a key of Config", key)
		}
	}

	// Uncommented, the file must be valid and every non-computed value must
	// decode to the default.
	c := defaults()
	probs := decodeFile("shipped", []byte(uncommented.String()), schema, c, keyOrigins{})
	for _, p := range probs {
		t.Errorf("uncommented shipped file: %s", p)
	}
	for key, val := range shown {
		if computedDefaults[key] {
			continue
		}
		table, name, _ := strings.Cut(key, ".")
		d := defaults()
		doc := fmt.Sprintf("[%s]\n%s = %s\n", table, name, val)
		if probs := decodeFile("shipped", []byte(doc), schema, d, keyOrigins{}); len(probs) > 0 {
			t.Errorf("%s = %s: %v", key, val, probs)
			continue
		}
		if !reflect.DeepEqual(d, defaults()) {
			t.Errorf("the shipped file shows %s = %s, but the default differs:\n got %s\nwant %s",
				key, val, fieldsOf(d), fieldsOf(defaults()))
		}
	}
}

// TestConfigSchemaMatchesDecoder: every key the schema accepts is decoded
// into a field (so the walker and the struct agree).
func TestSchemaMatchesDecoder(t *testing.T) {
	samples := map[valueKind]string{
		kindString: `"x"`, kindInt: `7`, kindBool: `false`, kindStrings: `["a"]`,
		kindDuration: `"2s"`, kindStringMap: `{ k = "v" }`,
	}
	schema := schemaOf(reflect.TypeOf(Config{}))
	for key, kind := range schema {
		if kind == kindTable {
			continue
		}
		table, name, _ := strings.Cut(key, ".")
		c := defaults()
		before := fieldsOf(c)
		origins := keyOrigins{}
		sample := samples[kind]
		if kind == kindBool && !reflect.ValueOf(*c).FieldByNameFunc(func(f string) bool { return strings.EqualFold(f, table) }).
			FieldByNameFunc(func(f string) bool { return strings.EqualFold(f, strings.ReplaceAll(name, "_", "")) }).Bool() {
			sample = "true" // the value that is not the default
		}
		doc := fmt.Sprintf("[%s]\n%s = %s\n", table, name, sample)
		if probs := decodeFile("t", []byte(doc), schema, c, origins); len(probs) > 0 {
			t.Errorf("%s: %v", key, probs)
			continue
		}
		if fieldsOf(c) == before {
			t.Errorf("%s = %s changed nothing in Config", key, sample)
		}
		wantKey := key
		if kind == kindStringMap {
			wantKey = key + ".k"
		}
		if o := origins[wantKey]; o != (origin{File: "t", Line: 2}) {
			t.Errorf("%s: origin %+v, want t:2", wantKey, o)
		}
	}
}

// TestConfigSecretNeverPrinted: the password must not leak through any way
// of printing or encoding a Config.
func TestSecretNeverPrinted(t *testing.T) {
	dir := testTree(t, "single-box", testPassword+"\n", 0o640)
	c, err := Load(filepath.Join(dir, "redis-ha.conf"), testEnv(nil, nil))
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
		//lint:ignore S1025 what %s prints is the point
		fmt.Sprintf("%#v", c), fmt.Sprintf("%#v", *c), fmt.Sprintf("%s", c),
		logged.String(), string(j),
	} {
		if strings.Contains(out, testPassword) {
			t.Errorf("password printed: %s", out)
		}
	}
	if !strings.Contains(logged.String(), "127.0.0.1:6379") {
		t.Errorf("log line lacks the config summary: %s", logged.String())
	}
}

// TestConfigSum: an unchanged set has the same sum (reload is a no-op); any
// change to a file or to the password changes it.
func TestSum(t *testing.T) {
	dir := testTree(t, "three-peers", testPassword+"\n", 0o640)
	base := filepath.Join(dir, "redis-ha.conf")
	env := testEnv([]string{"10.0.0.12"}, nil)
	load := func() [32]byte {
		t.Helper()
		c, err := Load(base, env)
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
	writeFile(t, filepath.Join(dir, "conf.d", "10-cluster.conf"),
		"[cluster]\npeers = [\"10.0.0.11\", \"10.0.0.12\", \"10.0.0.13\"]\nbootstrap_primary = \"10.0.0.11\"\n", 0o644)
	if load() != first {
		t.Error("Sum changed although no byte did")
	}
	writeFile(t, filepath.Join(dir, "password"), "another-pass\n", 0o640)
	second := load()
	if second == first {
		t.Error("Sum unchanged after a password change")
	}
	writeFile(t, filepath.Join(dir, "conf.d", "20-more.conf"), "# just a comment\n", 0o644)
	if load() == second {
		t.Error("Sum unchanged after adding a drop-in")
	}
}

func TestFindPeer(t *testing.T) {
	peers := []wire.Addr{{Host: "10.0.0.1", Port: 6379}, {Host: "10.0.0.2", Port: 6380}, {Host: "10.0.0.3", Port: 6379}, {Host: "10.0.0.3", Port: 6380}}
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
			got, err := findPeer(peers, tc.in, 6379)
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
	if got, err := findPeer(peers, "10.0.0.3", 6380); err != nil || got != (wire.Addr{Host: "10.0.0.3", Port: 6380}) {
		t.Errorf("findPeer with redis.port 6380 = %v, %v; want 10.0.0.3:6380", got, err)
	}
	if _, err := findPeer([]wire.Addr{{Host: "h", Port: 6380}, {Host: "h", Port: 6381}}, "h", 6379); err == nil ||
		!strings.Contains(err.Error(), "matches several peers") {
		t.Errorf("ambiguous host: err = %v", err)
	}
}

func TestProblemString(t *testing.T) {
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
	err := &Error{Problems: []Problem{cases[0].p, cases[3].p}}
	if got, want := err.Error(), cases[0].want+"\n"+cases[3].want; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestConfigDefaultsAreUnattributed: a problem with a key nobody set points
// at <default>, not at some file.
func TestDefaultsAreUnattributed(t *testing.T) {
	c := defaults()
	c.Auth.PasswordFile = filepath.Join(t.TempDir(), "nope") // as if built in
	probs := validate(c, keyOrigins{}, facts{password: fileFact{err: fs.ErrNotExist}})
	got := make([]string, len(probs))
	for i, p := range probs {
		got[i] = p.String()
	}
	if len(probs) != 1 || !strings.HasPrefix(got[0], "<default>: auth.password_file: ") {
		t.Errorf("problems %q, want one <default>: auth.password_file", got)
	}
}

// TestDefaultBinary: redis.binary defaults to redis-server, or to
// valkey-server on a box that has Valkey alone; a setting always wins.
func TestDefaultBinary(t *testing.T) {
	for _, tt := range []struct {
		name      string
		installed []string
		setting   string
		want      string
	}{
		{"redis only", []string{"/usr/bin/redis-server"}, "", "/usr/bin/redis-server"},
		{"both", []string{"/usr/bin/redis-server", "/usr/bin/valkey-server"}, "", "/usr/bin/redis-server"},
		{"valkey only", []string{"/usr/bin/valkey-server"}, "", "/usr/bin/valkey-server"},
		{"neither: the default, which check reports", nil, "", "/usr/bin/redis-server"},
		{"set", []string{"/usr/bin/redis-server"}, "/usr/bin/valkey-server", "/usr/bin/valkey-server"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			pw := filepath.Join(dir, "password")
			writeFile(t, pw, testPassword+"\n", 0o640)
			conf := fmt.Sprintf("auth.password_file = %q\n", pw)
			if tt.setting != "" {
				conf += fmt.Sprintf("redis.binary = %q\n", tt.setting)
			}
			writeFile(t, filepath.Join(dir, "redis-ha.conf"), conf, 0o644)
			env := testEnv(nil, nil)
			env.Executable = func(p string) bool { return slices.Contains(tt.installed, p) }
			c, err := Load(filepath.Join(dir, "redis-ha.conf"), env)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "redis.binary", c.Redis.Binary, tt.want)
		})
	}
}

func TestDropInNames(t *testing.T) {
	for name, want := range map[string]bool{
		"10-cluster.conf": true, "a.conf": true,
		".10-cluster.conf": false, "10-cluster.conf~": false, "10-cluster.conf.swp": false,
		"10-cluster.conf.dpkg-old": false, "10-cluster.dpkg-new.conf": false, "10.conf.rpmnew": false,
		"10.conf.rpmsave": false, "README": false, "10-cluster.toml": false,
	} {
		if got := isDropIn(name); got != want {
			t.Errorf("isDropIn(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestUnknownKeySuggestion(t *testing.T) {
	w := walker{schema: schemaOf(reflect.TypeOf(Config{}))}
	if got := w.suggest([]string{"port"}); got != " (did you mean redis.port or sentinel.port?)" {
		t.Errorf("suggest(port) = %q", got)
	}
	if got := w.suggest([]string{"zzz"}); got != "" {
		t.Errorf("suggest(zzz) = %q", got)
	}
}
