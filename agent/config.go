package agent

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
)

// Config is one validated configuration set: the keys of PRODUCT.md as read
// from the base file and its drop-ins (defaults where absent), plus the
// values LoadConfig resolves from them. Only LoadConfig makes a usable one.
type Config struct {
	Cluster  ClusterConfig  `toml:"cluster"`
	Node     NodeConfig     `toml:"node"`
	Redis    RedisConfig    `toml:"redis"`
	Sentinel SentinelConfig `toml:"sentinel"`
	Auth     AuthConfig     `toml:"auth"`
	Tuning   TuningConfig   `toml:"tuning"`
	HTTP     HTTPConfig     `toml:"http"`
	VIP      VIPConfig      `toml:"vip"`
	Hooks    HooksConfig    `toml:"hooks"`

	// Resolved after validation; never read from a file.
	Peers        []Peer   `toml:"-"` // cluster.peers with ports filled in; empty in single-box mode
	Self         Peer     `toml:"-"` // this box's peers entry; 127.0.0.1:redis.port in single-box mode
	Bootstrap    Peer     `toml:"-"` // the peers entry cluster.bootstrap_primary names (the only peer, or Self, when unset)
	SentinelPort int      `toml:"-"` // sentinel.port, or redis.port + 20000
	Quorum       int      `toml:"-"` // cluster.quorum, or a majority of the peers (1 in single-box mode)
	HTTPListen   string   `toml:"-"` // http.listen with its default applied; "" = off
	Password     string   `toml:"-" json:"-"`
	Files        []string `toml:"-"` // files read, in merge order
	Sum          [32]byte `toml:"-"` // over Files' bytes and the password: equal sums = nothing to reload
}

// ClusterConfig is the [cluster] table.
type ClusterConfig struct {
	Name             string   `toml:"name"`
	Peers            []string `toml:"peers"`
	BootstrapPrimary string   `toml:"bootstrap_primary"`
	Quorum           int      `toml:"quorum"` // 0 = unset; Config.Quorum holds the effective value
}

// NodeConfig is the [node] table.
type NodeConfig struct {
	Announce string `toml:"announce"`
	Priority int    `toml:"priority"`
	DataDir  string `toml:"data_dir"`
	RunDir   string `toml:"run_dir"`
}

// RedisConfig is the [redis] table.
type RedisConfig struct {
	Port        int               `toml:"port"`
	Binary      string            `toml:"binary"`
	Persistence string            `toml:"persistence"`
	Settings    map[string]string `toml:"settings"`
}

// SentinelConfig is the [sentinel] table.
type SentinelConfig struct {
	Port            int      `toml:"port"` // 0 = unset; Config.SentinelPort holds the effective value
	DownAfter       Duration `toml:"down_after"`
	FailoverTimeout Duration `toml:"failover_timeout"`
	FenceAfter      Duration `toml:"fence_after"` // a master that sees no majority of sentinels this long refuses writes
}

// AuthConfig is the [auth] table.
type AuthConfig struct {
	PasswordFile string `toml:"password_file"`
}

// TuningConfig is the [tuning] table. It stays comparable: reload compares it
// with != to decide whether to re-apply kernel settings.
type TuningConfig struct {
	Enabled              bool   `toml:"enabled"`
	Somaxconn            int    `toml:"somaxconn"`
	OvercommitMemory     int    `toml:"overcommit_memory"`
	TransparentHugepages string `toml:"transparent_hugepages"`
}

// HTTPConfig is the [http] table.
type HTTPConfig struct {
	Listen string `toml:"listen"` // as written; Config.HTTPListen holds the effective value
}

// VIPConfig is the [vip] table.
type VIPConfig struct {
	Address   string `toml:"address"`
	Interface string `toml:"interface"` // "" = the interface holding node.announce, found when the VIP is applied
}

// HooksConfig is the [hooks] table.
type HooksConfig struct {
	OnRoleChange string `toml:"on_role_change"`
}

// Duration is a time.Duration written as a Go duration string ("5s",
// "1500ms"). A bare number is refused: "5" would silently mean 5ns.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseConfigDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText renders d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d Duration) String() string { return time.Duration(d).String() }

func parseConfigDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want a Go duration such as \"5s\" or \"1500ms\"", s)
	}
	return v, nil
}

// Peer is one box of the group as cluster.peers names it: the address its
// redis is reached at.
type Peer struct {
	Host string
	Port int
}

// String renders host:port, bracketing IPv6 hosts.
func (p Peer) String() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

// String summarises c for logs. It and its siblings have value receivers so
// that printing a Config or a *Config can never print the password.
func (c Config) String() string {
	if len(c.Peers) == 0 {
		return fmt.Sprintf("single-box %s (%d file(s))", c.Self, len(c.Files))
	}
	return fmt.Sprintf("group %q, self %s, %d peers, quorum %d (%d file(s))",
		c.Cluster.Name, c.Self, len(c.Peers), c.Quorum, len(c.Files))
}

// GoString keeps %#v from dumping the password.
func (c Config) GoString() string { return "agent.Config{" + c.String() + "}" }

// LogValue keeps slog from dumping the password.
func (c Config) LogValue() slog.Value {
	peers := make([]string, len(c.Peers))
	for i, p := range c.Peers {
		peers[i] = p.String()
	}
	return slog.GroupValue(
		slog.String("name", c.Cluster.Name),
		slog.String("self", c.Self.String()),
		slog.String("peers", strings.Join(peers, ",")),
		slog.Int("quorum", c.Quorum),
		slog.Any("files", c.Files),
	)
}

// ConfigEnv is what LoadConfig asks of the machine, injected so tests decide
// which addresses are local.
type ConfigEnv struct {
	// LocalAddrs lists this box's addresses; nil = none known (node.announce
	// must then be set in a group).
	LocalAddrs func() ([]net.IP, error)
	// LookupIP resolves a peer given as a host name, to tell whether it is
	// local; nil = host names never count as local.
	LookupIP func(host string) ([]net.IP, error)
}

// DefaultConfigEnv reads the real interfaces and resolver.
func DefaultConfigEnv() ConfigEnv {
	return ConfigEnv{
		LocalAddrs: func() ([]net.IP, error) {
			addrs, err := net.InterfaceAddrs()
			if err != nil {
				return nil, fmt.Errorf("list local addresses: %w", err)
			}
			var ips []net.IP
			for _, a := range addrs {
				switch a := a.(type) {
				case *net.IPNet:
					ips = append(ips, a.IP)
				case *net.IPAddr:
					ips = append(ips, a.IP)
				}
			}
			return ips, nil
		},
		LookupIP: net.LookupIP,
	}
}

// Problem is one thing wrong with a configuration set, located at the line
// that set the key (File "" = the key was left at its built-in default).
type Problem struct {
	File string
	Line int // 0 = unknown
	Col  int // syntax errors only
	Key  string
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.File == "" {
		b.WriteString("<default>")
	} else {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
			if p.Col > 0 {
				fmt.Fprintf(&b, ":%d", p.Col)
			}
		}
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ConfigError is every problem found in a configuration set. LoadConfig
// returns nothing else as an error, so callers map it to exit status 78.
type ConfigError struct {
	Problems []Problem
}

func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// configDefaults returns the defaults of PRODUCT.md. Keys whose default
// depends on others (quorum, sentinel.port, http.listen, node.announce) stay
// zero here and are resolved by validation.
func configDefaults() *Config {
	return &Config{
		Cluster: ClusterConfig{Name: "main", Peers: []string{}},
		Node:    NodeConfig{Priority: 100, DataDir: "/var/lib/redis-ha", RunDir: "/run/redis-ha"},
		Redis: RedisConfig{
			Port: 6379, Binary: "/usr/bin/redis-server", Persistence: "aof",
			Settings: map[string]string{},
		},
		Sentinel: SentinelConfig{
			DownAfter:       Duration(5 * time.Second),
			FailoverTimeout: Duration(60 * time.Second),
			FenceAfter:      Duration(500 * time.Millisecond),
		},
		Auth: AuthConfig{PasswordFile: "/etc/redis-ha/password"},
		Tuning: TuningConfig{
			Enabled: true, Somaxconn: 1024, OvercommitMemory: 1, TransparentHugepages: "never",
		},
	}
}

// LoadConfig reads the base file at path and conf.d/*.conf beside it (lexical
// order, a later file winning key by key, redis.settings entry by entry),
// validates the result and resolves the derived values. Any error is a
// *ConfigError listing every problem found.
func LoadConfig(path string, env ConfigEnv) (*Config, error) {
	files, probs := configFileList(path)
	if len(probs) > 0 {
		return nil, &ConfigError{Problems: probs}
	}
	c := configDefaults()
	schema := configSchemaOf(reflect.TypeOf(Config{}))
	origins := configOrigins{}
	sum := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			probs = append(probs, Problem{File: f, Msg: configIOMsg("read", err)})
			continue
		}
		// Length-prefixed so that moving bytes between files changes the sum.
		fmt.Fprintf(sum, "%s\x00%d\x00", f, len(data))
		sum.Write(data)
		probs = append(probs, decodeConfigFile(f, data, schema, c, origins)...)
	}
	c.Files = files
	if len(probs) > 0 {
		// The model is incomplete; validating it would only add noise.
		return nil, &ConfigError{Problems: sortConfigProblems(probs, files)}
	}
	facts := gatherConfigFacts(c, env)
	probs = validateConfig(c, origins, facts)
	if len(probs) > 0 {
		return nil, &ConfigError{Problems: sortConfigProblems(probs, files)}
	}
	sum.Write([]byte(c.Password))
	copy(c.Sum[:], sum.Sum(nil))
	return c, nil
}

// configFileList returns the base file and the drop-ins to merge over it.
func configFileList(path string) ([]string, []Problem) {
	if fi, err := os.Stat(path); err != nil {
		return nil, []Problem{{File: path, Msg: configIOMsg("read", err)}}
	} else if fi.IsDir() {
		return nil, []Problem{{File: path, Msg: "is a directory, not a configuration file"}}
	}
	files := []string{path}
	dir := filepath.Join(filepath.Dir(path), "conf.d")
	entries, err := os.ReadDir(dir) // sorted by name
	if errors.Is(err, fs.ErrNotExist) {
		return files, nil
	}
	if err != nil {
		return nil, []Problem{{File: dir, Msg: configIOMsg("list", err)}}
	}
	for _, e := range entries {
		if !isConfigDropIn(e.Name()) {
			continue
		}
		f := filepath.Join(dir, e.Name())
		// Follow symlinks (configuration management links drop-ins in);
		// a directory named *.conf is not a drop-in.
		if fi, err := os.Stat(f); err == nil && fi.IsDir() {
			continue
		}
		files = append(files, f)
	}
	return files, nil
}

// isConfigDropIn reports whether a conf.d entry is read: *.conf, but not the
// leftovers of editors and package managers (an unmerged foo.conf.dpkg-new
// must not take effect behind the admin's back).
func isConfigDropIn(name string) bool {
	if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".conf") {
		return false
	}
	for _, junk := range []string{".dpkg-", ".rpmnew", ".rpmsave", ".ucf-", "~", ".swp"} {
		if strings.Contains(name, junk) {
			return false
		}
	}
	return true
}

func configIOMsg(op string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "file not found"
	}
	return op + ": " + err.Error()
}

// configOrigin is where a key was last set.
type configOrigin struct {
	File string
	Line int
}

// configOrigins maps a dotted key ("redis.port", "redis.settings.maxmemory")
// to the line that set it last.
type configOrigins map[string]configOrigin

// configKind is what a key's value must be.
type configKind int

const (
	configTable configKind = iota
	configString
	configInt
	configBool
	configStrings
	configDuration
	configStringMap
)

func (k configKind) String() string {
	return [...]string{"a table", "a string", "an integer", "true or false",
		"an array of strings", `a duration string such as "5s"`, "a table of strings"}[k]
}

// configSchemaOf maps every dotted key of the toml tags of t to its kind.
// Deriving it from the struct keeps the file format and the model one thing.
func configSchemaOf(t reflect.Type) map[string]configKind {
	s := map[string]configKind{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			key := prefix + name
			switch {
			case f.Type == reflect.TypeOf(Duration(0)):
				s[key] = configDuration
			case f.Type.Kind() == reflect.Struct:
				s[key] = configTable
				walk(f.Type, key+".")
			case f.Type.Kind() == reflect.Map:
				s[key] = configStringMap
			case f.Type.Kind() == reflect.Slice:
				s[key] = configStrings
			case f.Type.Kind() == reflect.String:
				s[key] = configString
			case f.Type.Kind() == reflect.Int:
				s[key] = configInt
			case f.Type.Kind() == reflect.Bool:
				s[key] = configBool
			default:
				panic("config schema: unsupported field type " + f.Type.String())
			}
		}
	}
	walk(t, "")
	return s
}

// decodeConfigFile checks one file against the schema and, when it is clean,
// decodes it over c. go-toml would stop at the first wrong type and word it
// in Go terms; walking the AST first reports every unknown key and wrong type
// of the file, each at its own line.
func decodeConfigFile(file string, data []byte, schema map[string]configKind, c *Config, origins configOrigins) []Problem {
	w := configWalker{file: file, schema: schema, seen: configOrigins{}, lines: map[int]string{}}
	w.p.Reset(data)
	w.walk()
	if len(w.probs) > 0 {
		return w.probs
	}
	err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(c)
	if err != nil {
		// What only the decoder checks (a key defined twice, an integer
		// overflowing int): report it as go-toml words it.
		return []Problem{configDecodeProblem(file, err, w.lines)}
	}
	for k, o := range w.seen {
		origins[k] = o
	}
	return nil
}

func configDecodeProblem(file string, err error, lines map[int]string) Problem {
	var de *toml.DecodeError
	var se *toml.StrictMissingError
	if errors.As(err, &se) && len(se.Errors) > 0 {
		de = &se.Errors[0]
	}
	if de == nil && !errors.As(err, &de) {
		return Problem{File: file, Msg: err.Error()}
	}
	line, col := de.Position()
	key := lines[line]
	if key == "" {
		key = strings.Join(de.Key(), ".")
	}
	return Problem{File: file, Line: line, Col: col, Key: key, Msg: strings.TrimPrefix(de.Error(), "toml: ")}
}

type configWalker struct {
	file   string
	schema map[string]configKind
	p      unstable.Parser
	probs  []Problem
	seen   configOrigins  // leaf keys set by this file
	lines  map[int]string // line → key, to name the key of a go-toml error
}

func (w *configWalker) walk() {
	var table []string
	skip := false // inside a table already reported as unknown
	for w.p.NextExpression() {
		e := w.p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			path, line := w.key(e.Key())
			table, skip = path, true
			key := strings.Join(path, ".")
			kind, ok := w.kindOf(path)
			switch {
			case e.Kind == unstable.ArrayTable:
				w.problem(line, key, "arrays of tables ([[...]]) are not supported")
			case !ok:
				w.problem(line, key, "unknown table"+w.suggest(path))
			case kind != configTable && kind != configStringMap:
				w.problem(line, key, "is "+kind.String()+", not a table")
			default:
				skip = false
			}
		case unstable.KeyValue:
			if !skip {
				w.keyValue(table, e)
			}
		}
	}
	if err := w.p.Error(); err != nil {
		w.syntaxProblem(err)
	}
}

// key returns the parts of a (dotted) key and the line it starts on.
func (w *configWalker) key(it unstable.Iterator) ([]string, int) {
	var parts []string
	line := 0
	for it.Next() {
		n := it.Node()
		if line == 0 {
			line = w.p.Shape(n.Raw).Start.Line
		}
		parts = append(parts, string(n.Data))
	}
	return parts, line
}

func (w *configWalker) keyValue(table []string, kv *unstable.Node) {
	rel, line := w.key(kv.Key())
	path := append(slices.Clone(table), rel...)
	key := strings.Join(path, ".")
	w.lines[line] = key
	kind, ok := w.kindOf(path)
	if !ok {
		w.problem(line, key, "unknown key"+w.suggest(path))
		return
	}
	v := kv.Value()
	got := configValueKind(v)
	switch kind {
	case configTable, configStringMap:
		if v.Kind != unstable.InlineTable {
			w.problem(line, key, "wrong type: want "+kind.String()+", got "+got)
			return
		}
		it := v.Children()
		for it.Next() {
			if it.Node().Kind == unstable.KeyValue {
				w.keyValue(path, it.Node())
			}
		}
		return
	case configStrings:
		if v.Kind != unstable.Array {
			w.problem(line, key, "wrong type: want "+kind.String()+", got "+got)
			return
		}
		it := v.Children()
		for i := 1; it.Next(); {
			n := it.Node()
			if n.Kind == unstable.Comment {
				continue
			}
			if n.Kind != unstable.String {
				w.problem(line, key, fmt.Sprintf("wrong type: want %s, element %d is %s", kind, i, configValueKind(n)))
				return
			}
			i++
		}
	case configDuration:
		if v.Kind != unstable.String {
			w.problem(line, key, "wrong type: want "+kind.String()+", got "+got)
			return
		}
		if _, err := parseConfigDuration(string(v.Data)); err != nil {
			w.problem(line, key, err.Error())
			return
		}
	default:
		if configKindOfValue(v.Kind) != kind {
			msg := "wrong type: want " + kind.String() + ", got " + got
			if kind == configString && len(path) == 3 && path[1] == "settings" {
				msg += fmt.Sprintf(" (redis.settings values are strings: write %q)", string(v.Data))
			}
			w.problem(line, key, msg)
			return
		}
	}
	w.seen[key] = configOrigin{File: w.file, Line: line}
}

// kindOf looks a key path up in the schema; entries of a string map are
// strings whatever their name.
func (w *configWalker) kindOf(path []string) (configKind, bool) {
	if k, ok := w.schema[strings.Join(path, ".")]; ok {
		return k, true
	}
	if len(path) > 1 && w.schema[strings.Join(path[:len(path)-1], ".")] == configStringMap {
		return configString, true
	}
	return 0, false
}

// suggest names the known keys that end like an unknown one: "peers" at the
// top level most likely meant cluster.peers.
func (w *configWalker) suggest(path []string) string {
	last := path[len(path)-1]
	var hits []string
	for k := range w.schema {
		if k == last || strings.HasSuffix(k, "."+last) {
			hits = append(hits, k)
		}
	}
	if len(hits) == 0 {
		return ""
	}
	sort.Strings(hits)
	return " (did you mean " + strings.Join(hits, " or ") + "?)"
}

func (w *configWalker) problem(line int, key, msg string) {
	w.probs = append(w.probs, Problem{File: w.file, Line: line, Key: key, Msg: msg})
}

func (w *configWalker) syntaxProblem(err error) {
	pr := Problem{File: w.file, Msg: "syntax error: " + err.Error()}
	var pe *unstable.ParserError
	if errors.As(err, &pe) {
		data := w.p.Data()
		// Highlight is a subslice of data; its capacity tells where it starts.
		if off := cap(data) - cap(pe.Highlight); off >= 0 && off <= len(data) {
			pr.Line = 1 + bytes.Count(data[:off], []byte("\n"))
			pr.Col = off - (bytes.LastIndexByte(data[:off], '\n') + 1) + 1
		}
		pr.Key = strings.Join(pe.Key, ".")
	}
	w.probs = append(w.probs, pr)
}

func configKindOfValue(k unstable.Kind) configKind {
	switch k {
	case unstable.String:
		return configString
	case unstable.Integer:
		return configInt
	case unstable.Bool:
		return configBool
	case unstable.Array:
		return configStrings
	case unstable.InlineTable:
		return configTable
	}
	return -1
}

func configValueKind(n *unstable.Node) string {
	switch n.Kind {
	case unstable.String:
		return "a string"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a float"
	case unstable.Bool:
		return "a boolean"
	case unstable.Array:
		return "an array"
	case unstable.InlineTable:
		return "a table"
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return "a date/time"
	}
	return n.Kind.String()
}

// configFacts is what validation needs from the machine, gathered up front
// so that validateConfig itself is a pure function.
type configFacts struct {
	localIPs []net.IP
	localErr error
	hostIPs  map[string][]net.IP // peers given by name, resolved
	hostErrs map[string]error
	password configFileFact
	hook     configFileFact
}

type configFileFact struct {
	mode fs.FileMode
	data []byte // password only
	err  error
}

func gatherConfigFacts(c *Config, env ConfigEnv) configFacts {
	f := configFacts{hostIPs: map[string][]net.IP{}, hostErrs: map[string]error{}}
	if len(c.Cluster.Peers) > 0 && c.Node.Announce == "" {
		if env.LocalAddrs != nil {
			f.localIPs, f.localErr = env.LocalAddrs()
		}
		for _, s := range c.Cluster.Peers {
			p, _, err := parseConfigPeer(s, 1)
			if err != nil || net.ParseIP(p.Host) != nil || env.LookupIP == nil {
				continue
			}
			f.hostIPs[p.Host], f.hostErrs[p.Host] = env.LookupIP(p.Host)
		}
	}
	if pf := c.Auth.PasswordFile; filepath.IsAbs(pf) {
		var fi fs.FileInfo
		if fi, f.password.err = os.Stat(pf); f.password.err == nil {
			f.password.mode = fi.Mode()
			if fi.Mode().IsRegular() {
				f.password.data, f.password.err = os.ReadFile(pf)
			}
		}
	}
	if h := c.Hooks.OnRoleChange; filepath.IsAbs(h) {
		var fi fs.FileInfo
		if fi, f.hook.err = os.Stat(h); f.hook.err == nil {
			f.hook.mode = fi.Mode()
		}
	}
	return f
}

// configCheck collects problems, each located at the line that set the key
// it is about (or at another key's line when that one is the cause).
type configCheck struct {
	o     configOrigins
	probs []Problem
}

func (v *configCheck) at(originKey, key, format string, args ...any) {
	o := v.o[originKey]
	v.probs = append(v.probs, Problem{File: o.File, Line: o.Line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *configCheck) add(key, format string, args ...any) { v.at(key, key, format, args...) }

func (v *configCheck) set(key string) bool { _, ok := v.o[key]; return ok }

// validateConfig checks the merged model and fills in the resolved fields of
// c. It returns every problem, not the first.
func validateConfig(c *Config, origins configOrigins, f configFacts) []Problem {
	v := &configCheck{o: origins}

	if c.Cluster.Name == "" {
		v.add("cluster.name", "must not be empty")
	} else if strings.IndexFunc(c.Cluster.Name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_')
	}) >= 0 {
		v.add("cluster.name", "%q: only letters, digits, '.', '-' and '_' are allowed", c.Cluster.Name)
	}

	portOK := checkConfigPort(v, "redis.port", c.Redis.Port)
	c.SentinelPort = c.Sentinel.Port
	switch {
	case v.set("sentinel.port"):
		if checkConfigPort(v, "sentinel.port", c.Sentinel.Port) && c.Sentinel.Port == c.Redis.Port {
			v.add("sentinel.port", "%d is also redis.port", c.Sentinel.Port)
		}
	case portOK:
		c.SentinelPort = c.Redis.Port + 20000
		if c.SentinelPort > 65535 {
			v.at("redis.port", "sentinel.port", "defaults to redis.port + 20000 = %d, above 65535: set sentinel.port", c.SentinelPort)
		}
	}

	validateConfigPeers(v, c, f, portOK)

	if c.Node.Priority < 0 || c.Node.Priority > math.MaxInt32 {
		v.add("node.priority", "%d: must be 0 (never promoted) or more", c.Node.Priority)
	}
	checkConfigAbs(v, "node.data_dir", c.Node.DataDir)
	checkConfigAbs(v, "node.run_dir", c.Node.RunDir)
	checkConfigAbs(v, "redis.binary", c.Redis.Binary)

	switch c.Redis.Persistence {
	case "aof", "rdb", "none":
	default:
		v.add("redis.persistence", "%q: want \"aof\", \"rdb\" or \"none\"", c.Redis.Persistence)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Redis.Settings)) {
		key := "redis.settings." + k
		switch {
		case k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == '"' || r == 0x7f }):
			v.add(key, "%q is not a redis.conf directive name", k)
		case sentinel.OwnedRedisKey(k):
			v.add(key, "the agent sets %s itself%s; remove it", strings.ToLower(k), configOwnerHint(k))
		}
		if strings.ContainsAny(c.Redis.Settings[k], "\n\r\x00") {
			v.add(key, "the value must be a single line")
		}
	}

	checkConfigDuration(v, "sentinel.down_after", c.Sentinel.DownAfter, 100*time.Millisecond)
	checkConfigDuration(v, "sentinel.failover_timeout", c.Sentinel.FailoverTimeout, time.Second)
	checkConfigDuration(v, "sentinel.fence_after", c.Sentinel.FenceAfter, 100*time.Millisecond)
	// The isolated master must have fenced itself before the majority can
	// elect another: that is what keeps two masters from taking writes.
	if c.Sentinel.FenceAfter >= c.Sentinel.DownAfter && time.Duration(c.Sentinel.DownAfter) >= 100*time.Millisecond {
		v.add("sentinel.fence_after", "%s: must be shorter than sentinel.down_after (%s)", c.Sentinel.FenceAfter, c.Sentinel.DownAfter)
	}

	validateConfigPassword(v, c, f.password)

	if c.Tuning.Somaxconn < 0 || c.Tuning.Somaxconn > math.MaxInt32 {
		v.add("tuning.somaxconn", "%d: must be 0 or more", c.Tuning.Somaxconn)
	}
	if c.Tuning.OvercommitMemory < 0 || c.Tuning.OvercommitMemory > 2 {
		v.add("tuning.overcommit_memory", "%d: want 0, 1 or 2", c.Tuning.OvercommitMemory)
	}
	switch c.Tuning.TransparentHugepages {
	case "never", "madvise", "always":
	default:
		v.add("tuning.transparent_hugepages", "%q: want \"never\", \"madvise\" or \"always\"", c.Tuning.TransparentHugepages)
	}

	c.HTTPListen = c.HTTP.Listen
	if !v.set("http.listen") {
		// The API follows the box's own address; a single box keeps it local.
		c.HTTPListen = ""
		if c.Self.Host != "" {
			c.HTTPListen = net.JoinHostPort(c.Self.Host, "8008")
		}
	} else if c.HTTP.Listen != "" {
		host, port, err := net.SplitHostPort(c.HTTP.Listen)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
			v.add("http.listen", "%q: want host:port (\":8008\" for every address) or \"\" for off", c.HTTP.Listen)
		} else if host != "" && !validConfigHost(host) {
			v.add("http.listen", "%q: %q is not an IP address or host name", c.HTTP.Listen, host)
		}
	}

	if c.VIP.Address != "" {
		pfx, err := netip.ParsePrefix(c.VIP.Address)
		switch {
		case err != nil:
			v.add("vip.address", "%q: want an address with its prefix length, such as \"10.0.0.100/24\"", c.VIP.Address)
		case pfx.Addr().Zone() != "" || pfx.Addr().IsUnspecified() || pfx.Addr().IsLoopback() || pfx.Addr().IsMulticast():
			v.add("vip.address", "%q: not usable as a virtual IP", c.VIP.Address)
		default:
			for _, p := range c.Peers {
				if a, err := netip.ParseAddr(p.Host); err == nil && a.Unmap() == pfx.Addr().Unmap() {
					v.add("vip.address", "%s is also the address of peer %s: the virtual IP must be an address of its own", pfx.Addr(), p)
				}
			}
		}
	}
	if i := c.VIP.Interface; i != "" && (len(i) > 15 || i == "." || i == ".." || strings.ContainsAny(i, "/ \t\n:")) {
		v.add("vip.interface", "%q is not a network interface name", i)
	}

	if h := c.Hooks.OnRoleChange; h != "" {
		switch {
		case !filepath.IsAbs(h):
			v.add("hooks.on_role_change", "%q: must be an absolute path", h)
		case f.hook.err != nil:
			v.add("hooks.on_role_change", "%s: %s", h, configIOMsg("stat", f.hook.err))
		case !f.hook.mode.IsRegular() || f.hook.mode&0o111 == 0:
			v.add("hooks.on_role_change", "%s is not an executable file (mode %04o)", h, f.hook.mode.Perm())
		case f.hook.mode&0o002 != 0:
			v.add("hooks.on_role_change", "%s is writable by others (mode %04o), yet the agent runs it: chmod o-w %s", h, f.hook.mode.Perm(), h)
		}
	}
	return v.probs
}

// validateConfigPeers resolves Peers, Self, Bootstrap and Quorum.
func validateConfigPeers(v *configCheck, c *Config, f configFacts, portOK bool) {
	if len(c.Cluster.Peers) == 0 {
		// Single-box mode: a local redis, no group to speak of.
		c.Peers = []Peer{}
		c.Self = Peer{Host: "127.0.0.1", Port: c.Redis.Port}
		c.Bootstrap = c.Self
		c.Quorum = 1
		if c.Cluster.BootstrapPrimary != "" {
			v.add("cluster.bootstrap_primary", "is set but cluster.peers is empty (single-box mode)")
		}
		if c.Node.Announce != "" {
			v.add("node.announce", "is set but cluster.peers is empty (single-box mode): list this box in cluster.peers")
		}
		if v.set("cluster.quorum") && c.Cluster.Quorum != 1 {
			v.add("cluster.quorum", "%d: single-box mode has one sentinel, so the quorum is 1", c.Cluster.Quorum)
		}
		return
	}

	defPort := c.Redis.Port
	if !portOK {
		defPort = 6379 // already reported; keep checking the rest
	}
	seen := map[Peer]string{}
	for _, s := range c.Cluster.Peers {
		p, _, err := parseConfigPeer(s, defPort)
		if err != nil {
			v.add("cluster.peers", "%v", err)
			continue
		}
		if prev, dup := seen[p]; dup {
			v.add("cluster.peers", "%q and %q are the same peer (%s)", prev, s, p)
			continue
		}
		seen[p] = s
		c.Peers = append(c.Peers, p)
	}
	n := len(c.Cluster.Peers)

	c.Quorum = n/2 + 1
	if v.set("cluster.quorum") {
		c.Quorum = c.Cluster.Quorum
		if c.Quorum < 1 || c.Quorum > n {
			v.add("cluster.quorum", "%d: must be between 1 and the number of peers (%d)", c.Quorum, n)
		}
	}

	switch b := c.Cluster.BootstrapPrimary; {
	case b != "":
		p, err := findConfigPeer(c.Peers, b, defPort)
		if err != nil {
			v.add("cluster.bootstrap_primary", "%v", err)
		}
		c.Bootstrap = p
	case n > 1:
		v.at("cluster.peers", "cluster.bootstrap_primary", "required when cluster.peers lists more than one box: name the peer that is master on the group's very first start")
	case len(c.Peers) == 1:
		c.Bootstrap = c.Peers[0]
	}

	if a := c.Node.Announce; a != "" {
		p, err := findConfigPeer(c.Peers, a, defPort)
		switch {
		case err != nil:
			v.add("node.announce", "%v", err)
		case portOK && p.Port != c.Redis.Port:
			v.add("node.announce", "%s has port %d but redis.port is %d: set redis.port = %d", p, p.Port, c.Redis.Port, p.Port)
		}
		c.Self = p
		return
	}
	if f.localErr != nil {
		v.at("cluster.peers", "node.announce", "cannot tell which peer is this box: %v: set node.announce", f.localErr)
		return
	}
	var local []Peer
	for _, p := range c.Peers {
		if p.Port == c.Redis.Port && configHostIsLocal(p.Host, f) {
			local = append(local, p)
		}
	}
	switch len(local) {
	case 1:
		c.Self = local[0]
	case 0:
		addrs := make([]string, len(f.localIPs))
		for i, ip := range f.localIPs {
			addrs[i] = ip.String()
		}
		v.at("cluster.peers", "node.announce",
			"no entry of cluster.peers is a local address with port %d (this box has %s): set node.announce to this box's entry",
			c.Redis.Port, strings.Join(addrs, ", "))
	default:
		v.at("cluster.peers", "node.announce",
			"entries %s are all local addresses with port %d: set node.announce to this box's entry", configPeerList(local), c.Redis.Port)
	}
}

func configHostIsLocal(host string, f configFacts) bool {
	ips := f.hostIPs[host]
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	}
	for _, ip := range ips {
		for _, l := range f.localIPs {
			if ip.Equal(l) {
				return true
			}
		}
	}
	return false
}

func configPeerList(ps []Peer) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// parseConfigPeer parses "host", "host:port", "[v6]" or "[v6]:port". IP
// hosts come back canonical, names lower-cased, so that equal peers compare
// equal. hasPort reports whether s named a port.
func parseConfigPeer(s string, defPort int) (p Peer, hasPort bool, err error) {
	host, port := s, ""
	switch {
	case net.ParseIP(s) != nil: // a bare IPv6 address has colons but no port
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		host = s[1 : len(s)-1]
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return Peer{}, false, fmt.Errorf("%q: brackets are for IPv6 addresses", s)
		}
	case strings.Contains(s, ":"):
		if host, port, err = net.SplitHostPort(s); err != nil {
			return Peer{}, false, fmt.Errorf("%q: want host or host:port", s)
		}
	}
	if !validConfigHost(host) {
		if host == s {
			return Peer{}, false, fmt.Errorf("%q is not an IP address or host name", s)
		}
		return Peer{}, false, fmt.Errorf("%q: %q is not an IP address or host name", s, host)
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() || ip.IsMulticast() {
			return Peer{}, false, fmt.Errorf("%q: %s cannot be a peer's address", s, ip)
		}
		host = ip.String()
	} else {
		host = strings.ToLower(host)
	}
	p = Peer{Host: host, Port: defPort}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return Peer{}, false, fmt.Errorf("%q: port %q: want 1..65535", s, port)
		}
		p.Port, hasPort = n, true
	}
	return p, hasPort, nil
}

// FindPeer returns the entry of c.Peers that s ("host" or "host:port", as an
// operator types it for switchover --to) designates, by the rules that
// resolve cluster.bootstrap_primary and node.announce.
func (c *Config) FindPeer(s string) (Peer, error) {
	return findConfigPeer(c.Peers, s, c.Redis.Port)
}

// findConfigPeer finds the peers entry s designates: host:port exactly, or a
// bare host when it is unambiguous (or one of its entries has the default port).
func findConfigPeer(peers []Peer, s string, defPort int) (Peer, error) {
	want, hasPort, err := parseConfigPeer(s, defPort)
	if err != nil {
		return Peer{}, err
	}
	var hits []Peer
	for _, p := range peers {
		if p == want {
			return p, nil
		}
		if !hasPort && p.Host == want.Host {
			hits = append(hits, p)
		}
	}
	switch len(hits) {
	case 0:
		return Peer{}, fmt.Errorf("%q is not one of cluster.peers (%s)", s, configPeerList(peers))
	case 1:
		return hits[0], nil
	}
	return Peer{}, fmt.Errorf("%q matches several peers (%s): add the port", s, configPeerList(hits))
}

// validConfigHost accepts an IP address or an RFC 1123 host name.
func validConfigHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func validateConfigPassword(v *configCheck, c *Config, f configFileFact) {
	const key = "auth.password_file"
	pf := c.Auth.PasswordFile
	switch {
	case !filepath.IsAbs(pf):
		v.add(key, "%q: must be an absolute path", pf)
		return
	case errors.Is(f.err, fs.ErrNotExist):
		v.add(key, "%s: file not found: write the shared password into it (printf '%%s\\n' PASSWORD > %s; chmod 0640 %s)", pf, pf, pf)
		return
	case f.err != nil:
		v.add(key, "%s: %s", pf, configIOMsg("read", f.err))
		return
	case !f.mode.IsRegular():
		v.add(key, "%s is not a regular file", pf)
		return
	case f.mode&0o006 != 0:
		// Checked before the content so a refused file is never used.
		v.add(key, "%s is readable or writable by others (mode %04o): run chmod 0640 %s", pf, f.mode.Perm(), pf)
		return
	}
	pw := strings.TrimRight(string(f.data), "\r\n")
	switch {
	case pw == "":
		v.add(key, "%s is empty: write the shared password into it", pf)
	case strings.ContainsAny(pw, "\r\n\x00"):
		v.add(key, "%s holds more than one line: the password must be a single line", pf)
	default:
		if err := sentinel.CheckPassword(pw); err != nil {
			v.add(key, "%s: %v", pf, err)
			return
		}
		c.Password = pw
	}
}

func checkConfigPort(v *configCheck, key string, port int) bool {
	if port < 1 || port > 65535 {
		v.add(key, "%d: want a port number 1..65535", port)
		return false
	}
	return true
}

func checkConfigAbs(v *configCheck, key, path string) {
	if !filepath.IsAbs(path) {
		v.add(key, "%q: must be an absolute path", path)
	}
}

func checkConfigDuration(v *configCheck, key string, d Duration, least time.Duration) {
	switch td := time.Duration(d); {
	case td < least:
		v.add(key, "%s: must be at least %s", td, least)
	case td%time.Millisecond != 0:
		v.add(key, "%s: sentinel counts in whole milliseconds", td)
	}
}

// configOwnerHint says which key of ours controls a directive the agent owns.
func configOwnerHint(k string) string {
	switch strings.ToLower(k) {
	case "port":
		return " (use redis.port)"
	case "dir", "dbfilename", "appendfilename", "appenddirname":
		return " (use node.data_dir)"
	case "requirepass", "masterauth":
		return " (use auth.password_file)"
	case "appendonly", "save":
		return " (use redis.persistence)"
	case "replica-priority", "slave-priority":
		return " (use node.priority)"
	case "bind", "replica-announce-ip", "replica-announce-port", "slave-announce-ip", "slave-announce-port":
		return " (use node.announce)"
	case "replicaof", "slaveof":
		return " (sentinel decides it)"
	}
	return ""
}

// sortConfigProblems orders problems by file (merge order), then line;
// problems about defaults come last. The sort is stable, so problems of one
// line keep the order they were checked in.
func sortConfigProblems(probs []Problem, files []string) []Problem {
	rank := func(f string) int {
		if f == "" {
			return len(files) + 1
		}
		if i := slices.Index(files, f); i >= 0 {
			return i
		}
		return len(files) // e.g. the conf.d directory itself
	}
	sort.SliceStable(probs, func(i, j int) bool {
		ri, rj := rank(probs[i].File), rank(probs[j].File)
		if ri != rj {
			return ri < rj
		}
		return probs[i].Line < probs[j].Line
	})
	return probs
}
