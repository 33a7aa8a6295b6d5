package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/internal/safefile"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// trustDetail is safefile.Trusted's finding without its sentinel prefix.
func trustDetail(err error) string {
	return strings.TrimPrefix(err.Error(), safefile.ErrUntrusted.Error()+": ")
}

// facts is what validation needs from the machine, gathered up front
// so that validate itself is a pure function.
type facts struct {
	localIPs []net.IP
	localErr error
	hostIPs  map[string][]net.IP // peers given by name, resolved
	hostErrs map[string]error
	password fileFact
	hook     fileFact
	binary   string // redis.binary's default: the first of defaultBinaries installed
	tls      tlsFacts
}

type fileFact struct {
	mode  fs.FileMode
	data  []byte // password only
	err   error
	trust error // hook only: how others could change it (safefile.Trusted)
}

func gatherFacts(c *Config, env Env) facts {
	f := facts{hostIPs: map[string][]net.IP{}, hostErrs: map[string]error{}}
	if len(c.Cluster.Peers) > 0 && c.Node.Announce == "" {
		if env.LocalAddrs != nil {
			f.localIPs, f.localErr = env.LocalAddrs()
		}
		for _, s := range c.Cluster.Peers {
			p, err := wire.ParseAddr(s, 1)
			if err != nil || net.ParseIP(p.Host) != nil || env.LookupIP == nil {
				continue
			}
			f.hostIPs[p.Host], f.hostErrs[p.Host] = env.LookupIP(p.Host)
		}
	}
	f.binary = defaultBinaries()[0]
	if env.Executable != nil {
		for _, b := range defaultBinaries() {
			if env.Executable(b) {
				f.binary = b
				break
			}
		}
	}
	if pf := c.Auth.PasswordFile; filepath.IsAbs(pf) {
		var fi fs.FileInfo
		if fi, f.password.err = os.Stat(pf); f.password.err == nil {
			f.password.mode = fi.Mode()
			if fi.Mode().IsRegular() {
				f.password.data, _, f.password.err = safefile.ReadConfig(pf, maxPasswordFile)
			}
		}
	}
	f.tls = gatherTLS(c)
	if h := c.Hooks.OnRoleChange; filepath.IsAbs(h) {
		var fi fs.FileInfo
		if fi, f.hook.err = os.Stat(h); f.hook.err == nil {
			f.hook.mode = fi.Mode()
			f.hook.trust = safefile.Trusted(h)
		}
	}
	return f
}

// checker collects problems, each located at the line that set the key
// it is about (or at another key's line when that one is the cause).
type checker struct {
	o     keyOrigins
	probs []Problem
}

func (v *checker) at(originKey, key, format string, args ...any) {
	o := v.o[originKey]
	v.probs = append(v.probs, Problem{File: o.File, Line: o.Line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *checker) add(key, format string, args ...any) { v.at(key, key, format, args...) }

func (v *checker) set(key string) bool { _, ok := v.o[key]; return ok }

// validate checks the merged model and fills in the resolved fields of
// c. It returns every problem, not the first.
func validate(c *Config, origins keyOrigins, f facts) []Problem {
	v := &checker{o: origins}

	if c.Cluster.Name == "" {
		v.add("cluster.name", "must not be empty")
	} else if strings.IndexFunc(c.Cluster.Name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_')
	}) >= 0 {
		v.add("cluster.name", "%q: only letters, digits, '.', '-' and '_' are allowed", c.Cluster.Name)
	}

	portOK := checkPort(v, "redis.port", c.Redis.Port)
	c.SentinelPort = c.Sentinel.Port
	switch {
	case v.set("sentinel.port"):
		if checkPort(v, "sentinel.port", c.Sentinel.Port) && c.Sentinel.Port == c.Redis.Port {
			v.add("sentinel.port", "%d is also redis.port", c.Sentinel.Port)
		}
	case portOK:
		c.SentinelPort = c.Redis.Port + 20000
		if c.SentinelPort > 65535 {
			v.at("redis.port", "sentinel.port", "defaults to redis.port + 20000 = %d, above 65535: set sentinel.port", c.SentinelPort)
		}
	}

	validatePeers(v, c, f, portOK)

	if c.Node.Priority < 0 || c.Node.Priority > math.MaxInt32 {
		v.add("node.priority", "%d: must be 0 (never promoted) or more", c.Node.Priority)
	}
	checkAbs(v, "node.data_dir", c.Node.DataDir)
	checkAbs(v, "node.run_dir", c.Node.RunDir)
	if !v.set("redis.binary") && f.binary != "" {
		c.Redis.Binary = f.binary
	}
	checkAbs(v, "redis.binary", c.Redis.Binary)

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
			v.add(key, "the agent sets %s itself%s; remove it", strings.ToLower(k), ownerHint(k))
		}
		if strings.ContainsAny(c.Redis.Settings[k], "\n\r\x00") {
			v.add(key, "the value must be a single line")
		}
	}

	checkDuration(v, "sentinel.down_after", c.Sentinel.DownAfter, 100*time.Millisecond)
	checkDuration(v, "sentinel.failover_timeout", c.Sentinel.FailoverTimeout, time.Second)
	checkDuration(v, "sentinel.fence_after", c.Sentinel.FenceAfter, 100*time.Millisecond)
	// The isolated master must have fenced itself before the majority can
	// elect another: that is what keeps two masters from taking writes.
	if c.Sentinel.FenceAfter >= c.Sentinel.DownAfter && time.Duration(c.Sentinel.DownAfter) >= 100*time.Millisecond {
		v.add("sentinel.fence_after", "%s: must be shorter than sentinel.down_after (%s)", c.Sentinel.FenceAfter, c.Sentinel.DownAfter)
	}

	validatePassword(v, c, f.password)
	validateTLS(v, c, f.tls)

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
		} else if host != "" && !wire.ValidHost(host) {
			v.add("http.listen", "%q: %q is not an IP address or host name", c.HTTP.Listen, host)
		} else if portOK && (n == c.Redis.Port || n == c.SentinelPort) {
			// Redis and Sentinel bind loopback and this box's address, so
			// the API would lose the race for the port or take theirs.
			v.add("http.listen", "%q: port %d is redis.port or sentinel.port: choose another (8008 is the default)", c.HTTP.Listen, n)
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

	if _, ok := logLevel(c.Log.Level); !ok {
		v.add("log.level", "%q: want \"debug\", \"info\", \"warning\" or \"error\"", c.Log.Level)
	}

	if h := c.Hooks.OnRoleChange; h != "" {
		switch {
		case !filepath.IsAbs(h):
			v.add("hooks.on_role_change", "%q: must be an absolute path", h)
		case f.hook.err != nil:
			v.add("hooks.on_role_change", "%s: %s", h, ioMsg("stat", f.hook.err))
		case !f.hook.mode.IsRegular() || f.hook.mode&0o111 == 0:
			v.add("hooks.on_role_change", "%s is not an executable file (mode %04o)", h, f.hook.mode.Perm())
		case f.hook.trust != nil:
			// The agent runs it as root: whoever can change it, or rename
			// a directory above it, would be root.
			v.add("hooks.on_role_change", "%s: the agent runs it as root, yet %v", h, trustDetail(f.hook.trust))
		}
	}
	validateClusterMode(v, c)
	return v.probs
}

// validatePeers resolves Peers, Self, Bootstrap and Quorum.
func validatePeers(v *checker, c *Config, f facts, portOK bool) {
	if len(c.Cluster.Peers) == 0 {
		// Single-box mode: a local redis, no group to speak of.
		c.Peers = []wire.Addr{}
		c.Self = wire.Addr{Host: "127.0.0.1", Port: c.Redis.Port}
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
	seen := map[wire.Addr]string{}
	for _, s := range c.Cluster.Peers {
		p, err := wire.ParseAddr(s, defPort)
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
		p, err := findPeer(c.Peers, b, defPort)
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
		p, err := findPeer(c.Peers, a, defPort)
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
	var local []wire.Addr
	for _, p := range c.Peers {
		if p.Port == c.Redis.Port && hostIsLocal(p.Host, f) {
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
			"no entry of cluster.peers is a local address with port %d (this box has %s)%s: set node.announce to this box's entry",
			c.Redis.Port, strings.Join(addrs, ", "), lookupErrors(f.hostErrs))
	default:
		v.at("cluster.peers", "node.announce",
			"entries %s are all local addresses with port %d: set node.announce to this box's entry", addrList(local), c.Redis.Port)
	}
}

// lookupErrors says which peers' names did not resolve: one of them may be
// this box.
func lookupErrors(errs map[string]error) string {
	var out []string
	for _, h := range slices.Sorted(maps.Keys(errs)) {
		if errs[h] != nil {
			out = append(out, fmt.Sprintf("%s: %v", h, errs[h]))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "; names that did not resolve: " + strings.Join(out, "; ")
}

func hostIsLocal(host string, f facts) bool {
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

func addrList(ps []wire.Addr) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// findPeer finds the peers entry s designates: host:port exactly, or a
// bare host when it is unambiguous (or one of its entries has the default port).
func findPeer(peers []wire.Addr, s string, defPort int) (wire.Addr, error) {
	want, err := wire.ParseAddr(s, 0)
	if err != nil {
		return wire.Addr{}, err
	}
	hasPort := want.Port != 0
	if !hasPort {
		want.Port = defPort
	}
	var hits []wire.Addr
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
		return wire.Addr{}, fmt.Errorf("%q is not one of cluster.peers (%s)", s, addrList(peers))
	case 1:
		return hits[0], nil
	}
	return wire.Addr{}, fmt.Errorf("%q matches several peers (%s): add the port", s, addrList(hits))
}

func validatePassword(v *checker, c *Config, f fileFact) {
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
		v.add(key, "%s: %s", pf, ioMsg("read", f.err))
		v.probs[len(v.probs)-1].access = errors.Is(f.err, fs.ErrPermission)
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

func checkPort(v *checker, key string, port int) bool {
	if port < 1 || port > 65535 {
		v.add(key, "%d: want a port number 1..65535", port)
		return false
	}
	return true
}

func checkAbs(v *checker, key, path string) {
	if !filepath.IsAbs(path) {
		v.add(key, "%q: must be an absolute path", path)
	}
}

func checkDuration(v *checker, key string, d Duration, least time.Duration) {
	switch td := time.Duration(d); {
	case td < least:
		v.add(key, "%s: must be at least %s", td, least)
	case td%time.Millisecond != 0:
		v.add(key, "%s: sentinel counts in whole milliseconds", td)
	}
}

// ownerHint says which key of ours controls a directive the agent owns.
func ownerHint(k string) string {
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
	case "user", "aclfile", "masteruser":
		return " (auth.acl makes the users it needs; clients use the password file)"
	}
	if strings.HasPrefix(strings.ToLower(k), "tls-") {
		return " (use tls.*)"
	}
	return ""
}

// sortProblems orders problems by file (merge order), then line;
// problems about defaults come last. The sort is stable, so problems of one
// line keep the order they were checked in.
func sortProblems(probs []Problem, files []string) []Problem {
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
