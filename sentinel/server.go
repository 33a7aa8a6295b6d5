package sentinel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/internal/safefile"
)

// Server is which server a redis-server binary or a running server is: Redis
// or Valkey (a fork of Redis 7.2.4 that answers redis_version:7.2.4 whatever
// its own version), and its version. A running one (INFO server) also says
// which process it is: enough to know it as this box's own when its pid file
// is gone, and to adopt it.
type Server struct {
	Name    string // "redis" or "valkey"
	Version [3]int

	// Of a running server only; zero for a binary's --version.
	PID        int    // process_id
	ConfigFile string // config_file: the file it was started with
	RunID      string // run_id: new at every start
}

// Valkey says whether s is Valkey.
func (s Server) Valkey() bool { return s.Name == "valkey" }

func (s Server) String() string {
	name := "Redis"
	if s.Valkey() {
		name = "Valkey"
	}
	return fmt.Sprintf("%s %d.%d.%d", name, s.Version[0], s.Version[1], s.Version[2])
}

// atLeast says whether s's version is major.minor or later.
func (s Server) atLeast(major, minor int) bool {
	return s.Version[0] > major || s.Version[0] == major && s.Version[1] >= minor
}

// MaxRDB is the newest RDB format s loads; 0 when not known (a newer Valkey).
// Redis 7.4 moved to format 12, which no Valkey before 9 loads ("Can't handle
// RDB format version 12"): its data cannot go to Valkey, by replication or on
// disk.
func (s Server) MaxRDB() int {
	switch {
	case s.Valkey() && s.Version[0] >= 9:
		return 0
	case s.Valkey():
		return 11
	case s.atLeast(7, 4):
		return 12
	case s.atLeast(7, 2):
		return 11
	case s.atLeast(7, 0):
		return 10
	}
	return 9
}

// WritesRDB is the RDB format s writes, where a group needs it known: 12 for
// Redis 7.4 and later, which Valkey cannot load; else 0.
func (s Server) WritesRDB() int {
	if !s.Valkey() && s.atLeast(7, 4) {
		return 12
	}
	return 0
}

// versionLine is what `redis-server --version` prints: "Redis server v=7.0.15
// sha=…" or "Valkey server v=8.1.1 sha=…".
var versionLine = regexp.MustCompile(`^(\w+) server v=(\d+)\.(\d+)\.(\d+)\b`)

// ParseVersion reads `redis-server --version`.
func ParseVersion(out string) (Server, error) {
	m := versionLine.FindStringSubmatch(strings.TrimSpace(out))
	if m == nil {
		return Server{}, fmt.Errorf("version: not a redis or valkey server: %q", strings.TrimSpace(out))
	}
	s := Server{Name: strings.ToLower(m[1])}
	if s.Name != "redis" && s.Name != "valkey" {
		return Server{}, fmt.Errorf("version: %s is neither redis nor valkey", m[1])
	}
	for i := range s.Version {
		s.Version[i], _ = strconv.Atoi(m[2+i])
	}
	return s, nil
}

// ParseInfoServer reads INFO server: Valkey says server_name:valkey and
// valkey_version; Redis has only redis_version.
func ParseInfoServer(info string) (Server, error) {
	fields := map[string]string{}
	for l := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
			fields[k] = v
		}
	}
	s := Server{Name: "redis", ConfigFile: fields["config_file"], RunID: fields["run_id"]}
	if n := fields["server_name"]; n != "" {
		s.Name = strings.ToLower(n)
	}
	v, ok := fields[s.Name+"_version"]
	if !ok {
		v, ok = fields["redis_version"]
	}
	parts := strings.SplitN(v, ".", 3)
	if !ok || len(parts) != 3 {
		return Server{}, fmt.Errorf("info server: no version in %q", strings.TrimSpace(info))
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return Server{}, fmt.Errorf("info server: version %q", v)
		}
		s.Version[i] = n
	}
	if pid, ok := fields["process_id"]; ok {
		n, err := strconv.Atoi(pid)
		if err != nil {
			return Server{}, fmt.Errorf("info server: process_id %q", pid)
		}
		s.PID = n
	}
	return s, nil
}

// Server asks the redis-server what it is (INFO server).
func (r *Redis) Server(ctx context.Context) (Server, error) {
	return serverInfo(ctx, r.c)
}

// Server asks the sentinel what it is (INFO server).
func (s *Sentinel) Server(ctx context.Context) (Server, error) {
	return serverInfo(ctx, s.c)
}

func serverInfo(ctx context.Context, c interface {
	Process(context.Context, redis.Cmder) error
}) (Server, error) {
	cmd := redis.NewStringCmd(ctx, "info", "server")
	if err := c.Process(ctx, cmd); err != nil {
		return Server{}, fmt.Errorf("info server: %w", err)
	}
	return ParseInfoServer(cmd.Val())
}

// DataRDB is the newest RDB format among the data files in dir that a server
// would load: the AOF's base (named by its manifest in appendonlydir) and
// dump.rdb. 0 and "" when there are none.
func DataRDB(dir string) (version int, file string, err error) {
	files := []string{filepath.Join(dir, "dump.rdb")}
	if base, err := aofBase(filepath.Join(dir, "appendonlydir")); err != nil {
		return 0, "", err
	} else if base != "" {
		files = append(files, base)
	}
	for _, f := range files {
		v, err := rdbVersion(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, "", err
		}
		if v > version {
			version, file = v, f
		}
	}
	return version, file, nil
}

// aofBase is the base file the AOF manifest in dir names when it is an RDB
// ("file appendonly.aof.2.base.rdb seq 2 type b"); "" when there is none.
func aofBase(dir string) (string, error) {
	manifests, err := filepath.Glob(filepath.Join(dir, "*.manifest"))
	if err != nil || len(manifests) == 0 {
		return "", err
	}
	f, err := safefile.Open(manifests[0])
	if err != nil {
		return "", fmt.Errorf("aof manifest: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		args, ok := splitArgs(sc.Text())
		if !ok || len(args) < 6 || args[0] != "file" || args[4] != "type" || args[5] != "b" {
			continue
		}
		if strings.HasSuffix(args[1], ".rdb") && filepath.Base(args[1]) == args[1] {
			return filepath.Join(dir, args[1]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("aof manifest %s: %w", manifests[0], err)
	}
	return "", nil
}

// rdbVersion reads an RDB file's header: "REDIS" and four digits. The
// state directory is the redis user's: the file is opened as safefile opens
// state files, never through a link nor waiting on a FIFO.
func rdbVersion(path string) (int, error) {
	f, err := safefile.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var h [9]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return 0, fmt.Errorf("rdb %s: header: %w", path, err)
	}
	v, err := strconv.Atoi(string(h[5:]))
	if string(h[:5]) != "REDIS" || err != nil {
		return 0, fmt.Errorf("rdb %s: not an RDB file (header %q)", path, h[:])
	}
	return v, nil
}

// CanLoad says whether s loads data in RDB format rdb, and if not, why, in
// words for the operator.
func CanLoad(s Server, rdb int, file string) error {
	max := s.MaxRDB()
	if rdb == 0 || max == 0 || rdb <= max {
		return nil
	}
	by := "a newer server"
	if rdb == 12 {
		by = "Redis 7.4 or later"
	}
	return fmt.Errorf("%s cannot load %s: RDB format %d, written by %s (%s loads up to %d)", s, file, rdb, by, s, max)
}

// Mixed says why servers cannot be one group, or "" when they can: Valkey
// cannot replicate from Redis 7.4 or later (it cannot load RDB format 12),
// so no failover may put such a Redis above a Valkey.
func Mixed(servers map[string]Server) string {
	var redis74, valkey string
	for _, who := range slices.Sorted(maps.Keys(servers)) {
		s := servers[who]
		switch {
		case s.Valkey() && valkey == "":
			valkey = fmt.Sprintf("%s (%s)", s, who)
		case s.WritesRDB() > 11 && redis74 == "":
			redis74 = fmt.Sprintf("%s (%s)", s, who)
		}
	}
	if redis74 == "" || valkey == "" {
		return ""
	}
	return fmt.Sprintf("the group mixes %s and %s: Valkey cannot load the RDB format 12 of Redis 7.4 and later, so it can neither replicate from that Redis nor take its data over", redis74, valkey)
}
