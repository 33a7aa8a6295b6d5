package config

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Config is one validated configuration set: the keys of PRODUCT.md as read
// from the base file and its drop-ins (defaults where absent), plus the
// values Load resolves from them. Only Load makes a usable one.
type Config struct {
	Cluster  Cluster  `toml:"cluster"`
	Node     Node     `toml:"node"`
	Redis    Redis    `toml:"redis"`
	Sentinel Sentinel `toml:"sentinel"`
	Auth     Auth     `toml:"auth"`
	Tuning   Tuning   `toml:"tuning"`
	HTTP     HTTP     `toml:"http"`
	VIP      VIP      `toml:"vip"`
	Hooks    Hooks    `toml:"hooks"`
	Log      Log      `toml:"log"`
	TLS      TLS      `toml:"tls"`

	// Resolved after validation; never read from a file.
	Peers        []wire.Addr `toml:"-"` // cluster.peers with ports filled in; empty in single-box mode
	Self         wire.Addr   `toml:"-"` // this box's peers entry; 127.0.0.1:redis.port in single-box mode
	Bootstrap    wire.Addr   `toml:"-"` // the peers entry cluster.bootstrap_primary names (the only peer, or Self, when unset)
	SentinelPort int         `toml:"-"` // sentinel.port, or redis.port + 20000
	Quorum       int         `toml:"-"` // cluster.quorum, or a majority of the peers (1 in single-box mode)
	HTTPListen   string      `toml:"-"` // http.listen with its default applied; "" = off
	Password     string      `toml:"-" json:"-"`
	Certs        *Certs      `toml:"-" json:"-"` // tls.* as read and checked; nil when TLS is off
	// Rotation is set by the agent, never by Load: a reload that changed
	// the password under auth.acl keeps the old one's secrets until every
	// box accepts the new ones.
	Rotation *Rotation `toml:"-" json:"-"`
	Files    []string  `toml:"-"` // files read, in merge order
	Sum      [32]byte  `toml:"-"` // over Files' bytes and the password: equal sums = nothing to reload
}

// Cluster is the [cluster] table.
type Cluster struct {
	Name             string   `toml:"name"`
	Peers            []string `toml:"peers"`
	BootstrapPrimary string   `toml:"bootstrap_primary"`
	Quorum           int      `toml:"quorum"`   // 0 = unset; Config.Quorum holds the effective value
	Mode             string   `toml:"mode"`     // "sentinel" or "cluster" (Redis Cluster)
	Replicas         int      `toml:"replicas"` // cluster mode: replicas per shard
}

// Node is the [node] table.
type Node struct {
	Announce string `toml:"announce"`
	Priority int    `toml:"priority"`
	DataDir  string `toml:"data_dir"`
	RunDir   string `toml:"run_dir"`
}

// Redis is the [redis] table.
type Redis struct {
	Port        int               `toml:"port"`
	Binary      string            `toml:"binary"`
	Persistence string            `toml:"persistence"`
	Settings    map[string]string `toml:"settings"`
}

// Sentinel is the [sentinel] table.
type Sentinel struct {
	Port            int      `toml:"port"` // 0 = unset; Config.SentinelPort holds the effective value
	DownAfter       Duration `toml:"down_after"`
	FailoverTimeout Duration `toml:"failover_timeout"`
	FenceAfter      Duration `toml:"fence_after"` // a master that sees no majority of sentinels this long refuses writes
}

// Auth is the [auth] table.
type Auth struct {
	PasswordFile string `toml:"password_file"`
	ACL          bool   `toml:"acl"`
}

// TLS is the [tls] table.
type TLS struct {
	Enabled  bool   `toml:"enabled"`
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	CAFile   string `toml:"ca_file"`
}

// Same reports whether c and o hold the same files' contents.
func (c *Certs) Same(o *Certs) bool {
	if c == nil || o == nil {
		return c == o
	}
	return bytes.Equal(c.Cert, o.Cert) && bytes.Equal(c.Key, o.Key) && bytes.Equal(c.CA, o.CA)
}

// Rotation is a password rolling through the group under auth.acl.
type Rotation struct {
	From     string    `json:"-"` // the password before
	Switched bool      // this box uses the new secrets: every box accepts them
	At       time.Time // when it switched
}

// Certs is tls.* read and checked: the PEM the agent hands redis and
// sentinel, and the agent's own client side.
type Certs struct {
	Cert, Key, CA []byte // PEM, as read
	NotAfter      time.Time
	// Client is how the agent dials redis and the sentinels: the CA as the
	// only root, and this box's certificate to present. ServerName is left
	// empty: each dial sets the host it dials.
	Client *tls.Config
}

// Tuning is the [tuning] table. It stays comparable: reload compares it
// with != to decide whether to re-apply kernel settings.
type Tuning struct {
	Enabled              bool   `toml:"enabled"`
	Somaxconn            int    `toml:"somaxconn"`
	OvercommitMemory     int    `toml:"overcommit_memory"`
	TransparentHugepages string `toml:"transparent_hugepages"`
}

// HTTP is the [http] table.
type HTTP struct {
	Listen string `toml:"listen"` // as written; Config.HTTPListen holds the effective value
}

// VIP is the [vip] table.
type VIP struct {
	Address   string `toml:"address"`
	Interface string `toml:"interface"` // "" = the interface holding node.announce, found when the VIP is applied
}

// Hooks is the [hooks] table.
type Hooks struct {
	OnRoleChange string `toml:"on_role_change"`
}

// Log is the [log] table.
type Log struct {
	// Level is the least severe line logged: "debug", "info", "warning" or
	// "error". redis' and sentinel's own lines count at the level they carry.
	Level string `toml:"level"`
}

// Duration is a time.Duration written as a Go duration string ("5s",
// "1500ms"). A bare number is refused: "5" would silently mean 5ns.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText renders d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d Duration) String() string { return time.Duration(d).String() }

func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want a Go duration such as \"5s\" or \"1500ms\"", s)
	}
	return v, nil
}

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
func (c Config) GoString() string { return "config.Config{" + c.String() + "}" }

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

// Env is what Load asks of the machine, injected so tests decide
// which addresses are local.
type Env struct {
	// LocalAddrs lists this box's addresses; nil = none known (node.announce
	// must then be set in a group).
	LocalAddrs func() ([]net.IP, error)
	// LookupIP resolves a peer given as a host name, to tell whether it is
	// local; nil = host names never count as local.
	LookupIP func(host string) ([]net.IP, error)
	// Executable says whether path is an executable file, to pick the
	// default redis.binary; nil = the first default is taken as it is.
	Executable func(path string) bool
}

// DefaultEnv reads the real interfaces and resolver.
func DefaultEnv() Env {
	return Env{
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
		Executable: func(path string) bool {
			fi, err := os.Stat(path)
			return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
		},
	}
}
