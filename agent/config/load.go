package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/internal/safefile"
)

// Problem is one thing wrong with a configuration set, located at the line
// that set the key (File "" = the key was left at its built-in default).
type Problem struct {
	File string
	Line int // 0 = unknown
	Col  int // syntax errors only
	Key  string
	Msg  string

	bad    bool // found reading the file (syntax, unknown key, type): its value never decoded
	access bool // the file could not be read for want of permission
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

// Error is every problem found in a configuration set. Load
// returns nothing else as an error, so callers map it to exit status 78.
type Error struct {
	Problems []Problem
}

// AccessOnly reports whether every problem is a file this process may not
// read: the configuration may well be fine, the caller (a CLI run by a
// user other than root) just cannot see it, which is not exit status 78.
func (e *Error) AccessOnly() bool {
	for _, p := range e.Problems {
		if !p.access {
			return false
		}
	}
	return len(e.Problems) > 0
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// defaultBinaries are redis.binary's default, in order of preference: the
// first one installed. Debian 13 packages Valkey beside Redis; a box with
// Valkey alone runs it without a setting.
func defaultBinaries() []string { return []string{"/usr/bin/redis-server", "/usr/bin/valkey-server"} }

// defaults returns the defaults of PRODUCT.md. Keys whose default
// depends on others (quorum, sentinel.port, http.listen, node.announce) stay
// zero here and are resolved by validation.
func defaults() *Config {
	return &Config{
		Cluster: Cluster{Name: "main", Peers: []string{}, Mode: ModeSentinel, Replicas: 1},
		Node:    Node{Priority: 100, DataDir: "/var/lib/redis-ha", RunDir: "/run/redis-ha"},
		Redis: Redis{
			Port: 6379, Binary: defaultBinaries()[0], Persistence: "aof",
			Settings: map[string]string{},
		},
		Sentinel: Sentinel{
			DownAfter:       Duration(5 * time.Second),
			FailoverTimeout: Duration(60 * time.Second),
			FenceAfter:      Duration(500 * time.Millisecond),
		},
		Auth: Auth{PasswordFile: "/etc/redis-ha/password"},
		TLS: TLS{CertFile: "/etc/redis-ha/tls/redis.crt", KeyFile: "/etc/redis-ha/tls/redis.key",
			CAFile: "/etc/redis-ha/tls/ca.crt"},
		Tuning: Tuning{
			Enabled: true, Somaxconn: 1024, OvercommitMemory: 1, TransparentHugepages: "never",
		},
		Log: Log{Level: "info"},
	}
}

// Load reads the base file at path and conf.d/*.conf beside it (lexical
// order, a later file winning key by key, redis.settings entry by entry),
// validates the result and resolves the derived values. Any error is a
// *Error listing every problem found.
func Load(path string, env Env) (*Config, error) {
	c, probs, files := load(path, env)
	if len(probs) > 0 {
		return nil, &Error{Problems: sortProblems(probs, files)}
	}
	return c, nil
}

// LoadPublic is Load for a user who may not read the secrets: a
// configuration whose only problems are that the password file or the TLS
// key cannot be read for want of permission is returned without them (no
// password, no certificates), for what needs none: the address of the
// agents' read-only HTTP API. Any other problem is an error as in Load.
func LoadPublic(path string, env Env) (*Config, error) {
	c, probs, files := load(path, env)
	for _, p := range probs {
		if !p.access || (p.Key != "auth.password_file" && p.Key != "tls.key_file") {
			return nil, &Error{Problems: sortProblems(probs, files)}
		}
	}
	c.Password, c.Certs = "", nil
	return c, nil
}

// load reads and validates; the problems found, if any, come with the
// configuration as far as it went.
func load(path string, env Env) (*Config, []Problem, []string) {
	files, probs := fileList(path)
	if len(probs) > 0 {
		return nil, probs, files
	}
	c := defaults()
	schema := schemaOf(reflect.TypeOf(Config{}))
	origins := keyOrigins{}
	sum := sha256.New()
	for _, f := range files {
		data, prob := readFile(f)
		if prob != nil {
			probs = append(probs, *prob)
			continue
		}
		// Length-prefixed so that moving bytes between files changes the sum.
		fmt.Fprintf(sum, "%s\x00%d\x00", f, len(data))
		sum.Write(data)
		probs = append(probs, decodeFile(f, data, schema, c, origins)...)
	}
	c.Files = files
	// Validated even when files had problems: what did decode is checked
	// too, so one run reports everything. A problem about a key whose own
	// line is wrong would only repeat it.
	bad := map[string]bool{}
	for _, p := range probs {
		if p.bad {
			bad[p.Key] = true
		}
	}
	for _, p := range validate(c, origins, gatherFacts(c, env)) {
		if !bad[p.Key] {
			probs = append(probs, p)
		}
	}
	if len(probs) > 0 {
		return c, probs, files
	}
	sum.Write([]byte(c.Password))
	if c.Certs != nil {
		// A renewed certificate is a change to apply, though no file of
		// the configuration changed.
		for _, b := range [][]byte{c.Certs.Cert, c.Certs.Key, c.Certs.CA} {
			fmt.Fprintf(sum, "\x00%d\x00", len(b))
			sum.Write(b)
		}
	}
	copy(c.Sum[:], sum.Sum(nil))
	return c, nil, files
}

// Bounds of what Load reads: the shipped file, every key commented, is
// 10 kB; a password is a line.
const (
	maxConfigFile   = 1 << 20
	maxPasswordFile = 4 << 10
)

// readFile reads one configuration file: a regular file of bounded size
// that only root can change, since it says what root runs
// (hooks.on_role_change, redis.binary).
func readFile(f string) ([]byte, *Problem) {
	data, _, err := safefile.ReadConfig(f, maxConfigFile)
	if err != nil {
		return nil, &Problem{File: f, Msg: ioMsg("read", err), access: errors.Is(err, fs.ErrPermission)}
	}
	if err := safefile.Trusted(f); err != nil {
		if errors.Is(err, safefile.ErrUntrusted) {
			return nil, &Problem{File: f, Msg: "refused: the agent runs as root what this file says, yet " + trustDetail(err)}
		}
		return nil, &Problem{File: f, Msg: ioMsg("check owner", err), access: errors.Is(err, fs.ErrPermission)}
	}
	return data, nil
}

// fileList returns the base file and the drop-ins to merge over it.
func fileList(path string) ([]string, []Problem) {
	if fi, err := os.Stat(path); err != nil {
		return nil, []Problem{{File: path, Msg: ioMsg("read", err)}}
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
		return nil, []Problem{{File: dir, Msg: ioMsg("list", err)}}
	}
	for _, e := range entries {
		if !isDropIn(e.Name()) {
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

// isDropIn reports whether a conf.d entry is read: *.conf, but not the
// leftovers of editors and package managers (an unmerged foo.conf.dpkg-new
// must not take effect behind the admin's back).
func isDropIn(name string) bool {
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

func ioMsg(op string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "file not found"
	}
	return op + ": " + err.Error()
}
