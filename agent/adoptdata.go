package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/internal/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/internal/safefile"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/supervisor"
)

// adopt-data. A box that already served redis (Debian's redis-server and
// its /var/lib/redis) must not have that data hidden behind an empty group.
// Before the group's first start, on the bootstrap primary (or a single
// box), adopt-data makes an existing data directory this box's dataset; the
// other boxes then copy it from this one when they join, as replicas do.
//
// It never replaces data and never reads the source in place: it refuses
// once the group has formed (a sentinel names another master, or the state
// directory holds keys already), while the agent or a redis on the source
// runs, and it copies the source into the state directory before a redis
// of its own, as the redis user, on a unix socket only, loads it there and
// writes it back as redis.persistence wants it (an RDB made an append-only
// file for "aof"). Only then does the result replace the empty dataset.

// adoptLoadWait bounds how long a dataset may take to load.
const adoptLoadWait = time.Hour

// dataset is what a redis data directory holds.
type dataset struct {
	rdb, aof, legacyAOF bool      // dump.rdb, appendonlydir/, appendonly.aof
	rdbAt, aofAt        time.Time // when each was last written
}

func (d dataset) empty() bool { return !d.rdb && !d.aof && !d.legacyAOF }

// useAOF: the append-only file is the dataset, not dump.rdb. A redis with
// appendonly yes loads it and writes it at least as late as its snapshots;
// one switched to appendonly no later leaves an older one behind.
func (d dataset) useAOF() bool {
	return (d.aof || d.legacyAOF) && (!d.rdb || !d.aofAt.Before(d.rdbAt))
}

func (d dataset) String() string {
	switch {
	case d.useAOF() && d.aof:
		return "the append-only file (appendonlydir/)"
	case d.useAOF():
		return "the append-only file (appendonly.aof)"
	}
	return "the RDB snapshot (dump.rdb)"
}

// findDataset looks at what dir holds, through r (dir itself).
func findDataset(r *os.Root) (dataset, error) {
	var d dataset
	if fi, err := r.Lstat("dump.rdb"); err == nil && fi.Mode().IsRegular() {
		d.rdb, d.rdbAt = true, fi.ModTime()
	}
	if fi, err := r.Lstat("appendonly.aof"); err == nil && fi.Mode().IsRegular() {
		d.legacyAOF, d.aofAt = true, fi.ModTime()
	}
	if fi, err := r.Lstat("appendonlydir"); err == nil && fi.IsDir() {
		entries, err := fs.ReadDir(r.FS(), "appendonlydir")
		if err != nil {
			return d, err
		}
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
				d.aof = true
				if info.ModTime().After(d.aofAt) {
					d.aofAt = info.ModTime()
				}
			}
		}
	}
	return d, nil
}

// adoptDataCmd is `redis-ha-agent adopt-data DIR`.
func adoptDataCmd(ctx context.Context, path, dir string, out io.Writer) error {
	cfg, err := config.Load(path, config.DefaultEnv())
	if err != nil {
		return err
	}
	if dir == "" {
		return errors.New("adopt-data: which directory? redis-ha-agent adopt-data DIR (e.g. /var/lib/redis)")
	}
	src, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("adopt-data: %w", err)
	}
	a := &adopter{cfg: cfg, src: src, out: out}
	if os.Geteuid() == 0 {
		// The redis that loads the data runs as the server's user, as the
		// agent runs it, never root.
		if a.cred, err = loaderCredential(ctx, cfg); err != nil {
			return fmt.Errorf("adopt-data: %w", err)
		}
	}
	return a.run(ctx)
}

// loaderCredential is the user redis.binary runs as (redis, or valkey for
// Valkey where that user exists).
func loaderCredential(ctx context.Context, cfg *config.Config) (*syscall.Credential, error) {
	srv, err := binaryServer(ctx, cfg.Redis.Binary)
	if err != nil {
		return nil, err
	}
	cred, _, err := lookupServiceUser(srv)
	return cred, err
}

type adopter struct {
	cfg  *config.Config
	src  string // the directory to adopt
	cred *syscall.Credential
	out  io.Writer
}

func (a *adopter) run(ctx context.Context) error {
	cfg := a.cfg
	if err := a.allowed(ctx); err != nil {
		return fmt.Errorf("adopt-data refused: %w", err)
	}
	sr, err := os.OpenRoot(a.src)
	if err != nil {
		return fmt.Errorf("adopt-data: %w", err)
	}
	defer sr.Close()
	d, err := findDataset(sr)
	if err != nil {
		return fmt.Errorf("adopt-data: %s: %w", a.src, err)
	}
	if d.empty() {
		return fmt.Errorf("adopt-data: %s holds no redis data (dump.rdb, appendonlydir/ or appendonly.aof)", a.src)
	}
	uid, gid := a.owner()
	if err := os.MkdirAll(cfg.Node.DataDir, 0o750); err != nil {
		return fmt.Errorf("adopt-data: %w", err)
	}
	if uid >= 0 {
		if err := os.Chown(cfg.Node.DataDir, uid, gid); err != nil {
			return fmt.Errorf("adopt-data: %w", err)
		}
	}
	// The work happens beside the state it replaces, under a name nobody
	// can have planted, and is removed whatever happens.
	stage, err := os.MkdirTemp(cfg.Node.DataDir, ".adopt-data-")
	if err != nil {
		return fmt.Errorf("adopt-data: %w", err)
	}
	defer os.RemoveAll(stage)
	work := filepath.Join(stage, "data")
	if err := os.Mkdir(work, 0o700); err != nil {
		return fmt.Errorf("adopt-data: %w", err)
	}
	if uid >= 0 {
		for _, p := range []string{stage, work} {
			if err := os.Chown(p, uid, gid); err != nil {
				return fmt.Errorf("adopt-data: %w", err)
			}
		}
	}

	// What the state directory holds now must be empty: adopt-data never
	// replaces data.
	dr, err := os.OpenRoot(cfg.Node.DataDir)
	if err != nil {
		return fmt.Errorf("adopt-data: %w", err)
	}
	cur, err := findDataset(dr)
	dr.Close()
	if err != nil {
		return fmt.Errorf("adopt-data: %s: %w", cfg.Node.DataDir, err)
	}
	for _, aof := range []bool{false, true} {
		if (aof && !cur.aof && !cur.legacyAOF) || (!aof && !cur.rdb) {
			continue
		}
		var keys int64
		err := a.load(ctx, stage, cfg.Node.DataDir, aof, func(ctx context.Context, r *sentinel.Redis) (err error) {
			keys, err = r.Keys(ctx)
			return err
		})
		if err != nil {
			return fmt.Errorf("adopt-data: read what %s holds: %w", cfg.Node.DataDir, err)
		}
		if keys > 0 {
			return fmt.Errorf("adopt-data refused: %s holds %d keys already: adopt-data never replaces data "+
				"(this box has served the group, or redis-ha-agent's own redis, before)", cfg.Node.DataDir, keys)
		}
	}

	if err := copyDataset(sr, d, work, uid, gid); err != nil {
		return fmt.Errorf("adopt-data: copy %s: %w", a.src, err)
	}
	var keys int64
	err = a.load(ctx, stage, work, d.useAOF(), func(ctx context.Context, r *sentinel.Redis) (err error) {
		if keys, err = r.Keys(ctx); err != nil {
			return err
		}
		if cfg.Redis.Persistence == "aof" && !d.useAOF() {
			if err := r.WriteAOF(ctx); err != nil {
				return err
			}
		}
		return r.SaveAndShutdown(ctx)
	})
	if err != nil {
		return fmt.Errorf("adopt-data: load %s: %w", d, err)
	}
	if cfg.Redis.Persistence != "aof" {
		// dump.rdb holds it all; an append-only file left beside it would
		// be loaded instead the day persistence became "aof".
		for _, name := range []string{"appendonlydir", "appendonly.aof"} {
			if err := os.RemoveAll(filepath.Join(work, name)); err != nil {
				return fmt.Errorf("adopt-data: %w", err)
			}
		}
	}
	for _, name := range []string{"dump.rdb", "appendonlydir", "appendonly.aof"} {
		dst := filepath.Join(cfg.Node.DataDir, name)
		if err := os.RemoveAll(dst); err != nil {
			return fmt.Errorf("adopt-data: %w", err)
		}
		if err := os.Rename(filepath.Join(work, name), dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("adopt-data: %w", err)
		}
	}
	// The marker said how the empty dataset's redis ended; the adopted one
	// starts afresh.
	if err := os.Remove(runningMarker(cfg)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("adopt-data: %w", err)
	}
	start := "systemctl enable --now redis-ha-agent"
	if !cfg.Single() {
		start += "; then the other boxes, which copy it from this one"
	}
	fmt.Fprintf(a.out, "adopt-data: %d keys from %s in %s are this box's dataset now (%s, redis.persistence %q).\nStart the agent: %s\n",
		keys, d, a.src, cfg.Node.DataDir, cfg.Redis.Persistence, start)
	return nil
}

// allowed refuses what adopt-data must not do, and says why.
func (a *adopter) allowed(ctx context.Context) error {
	cfg := a.cfg
	if filepath.Clean(a.src) == filepath.Clean(cfg.Node.DataDir) {
		return fmt.Errorf("%s is node.data_dir itself", a.src)
	}
	if !cfg.Single() && cfg.Self != cfg.Bootstrap {
		return fmt.Errorf("this box (%s) is not the bootstrap primary (%s): a group starts with the bootstrap primary's data, "+
			"and the other boxes copy it from there; run adopt-data on %s", cfg.Self, cfg.Bootstrap, cfg.Bootstrap)
	}
	if c, err := net.DialTimeout("unix", controlPath(cfg), time.Second); err == nil {
		c.Close()
		return errors.New("redis-ha-agent runs on this box: stop it first (systemctl stop redis-ha-agent)")
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rc := sentinel.NewRedis(cfg.Self, cfg.Creds())
	defer rc.Close()
	if dir, err := rc.Get(cctx, "dir"); err == nil && filepath.Clean(dir) == filepath.Clean(cfg.Node.DataDir) {
		return fmt.Errorf("redis-ha-agent's redis still runs on %s (its agent is gone): stop it first", cfg.Self)
	}
	if pids := runningIn(a.src); len(pids) > 0 {
		return fmt.Errorf("a redis-server (pid %v) runs on %s: stop it first (systemctl disable --now redis-server), "+
			"so that every write it took is on disk and none comes after the copy", pids, a.src)
	}
	if cfg.Single() {
		return nil
	}
	for _, ans := range cfg.Group().AskAll(cctx) {
		if ans.Err == nil && ans.Master != cfg.Self {
			return fmt.Errorf("the group has formed: the sentinel %s names %s as its master; adopt-data works only before "+
				"the group's first start (load data into a running group through its master, with a client)", ans.Sentinel, ans.Master)
		}
	}
	if st, err := sentinel.ReadSentinelState(sentinelConfPath(cfg)); err == nil && st.Name == cfg.Cluster.Name &&
		st.Master != nil && *st.Master != cfg.Self {
		return fmt.Errorf("the group has formed: this box's sentinel last knew %s as the master; adopt-data works only before "+
			"the group's first start", *st.Master)
	}
	return nil
}

func (a *adopter) owner() (int, int) {
	if a.cred == nil {
		return -1, -1
	}
	return int(a.cred.Uid), int(a.cred.Gid)
}

// load runs a redis of its own on dir's dataset (sentinel.LoaderConf), as
// the redis user, waits until it has loaded it, and hands it to use; it
// stops it afterwards if use did not.
func (a *adopter) load(ctx context.Context, stage, dir string, aof bool, use func(context.Context, *sentinel.Redis) error) error {
	uid, gid := a.owner()
	sock := filepath.Join(stage, "redis.sock")
	conf := filepath.Join(stage, "loader.conf")
	if err := atomicfile.WriteFile(conf, sentinel.RenderLoader(sentinel.LoaderConf{Dir: dir, Socket: sock, AOF: aof}), 0o600, uid, gid); err != nil {
		return err
	}
	p, err := supervisor.Start(supervisor.Spec{Name: "redis", Path: a.cfg.Redis.Binary, Args: []string{conf},
		Dir: stage, Credential: a.cred, StopGrace: childStopWait}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer func() {
		_ = p.Stop()
		<-p.Done()
	}()
	rc := sentinel.NewLoaderClient(sock)
	defer rc.Close()
	lctx, cancel := context.WithTimeout(ctx, adoptLoadWait)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(lctx, time.Second)
		loading, err := rc.Loading(pctx)
		pcancel()
		if err == nil && !loading {
			break
		}
		select {
		case <-p.Done():
			return fmt.Errorf("redis exited: %v: %s", p.Err(), lastLine(p.Tail()))
		case <-lctx.Done():
			return fmt.Errorf("still loading: %w", lctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := use(lctx, rc); err != nil {
		return fmt.Errorf("%w (redis said: %s)", err, lastLine(p.Tail()))
	}
	return nil
}

// copyDataset copies the dataset d of src (the part useAOF says) into
// work, owned by the redis user. Every file is opened through src's root,
// as a regular file with no other link (safefile.OpenIn): the directory
// belongs to the redis user, who must not make root copy something else.
func copyDataset(src *os.Root, d dataset, work string, uid, gid int) error {
	var names []string
	switch {
	case d.useAOF() && d.aof:
		entries, err := fs.ReadDir(src.FS(), "appendonlydir")
		if err != nil {
			return err
		}
		if err := os.Mkdir(filepath.Join(work, "appendonlydir"), 0o700); err != nil {
			return err
		}
		if uid >= 0 {
			if err := os.Chown(filepath.Join(work, "appendonlydir"), uid, gid); err != nil {
				return err
			}
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				names = append(names, filepath.Join("appendonlydir", e.Name()))
			}
		}
	case d.useAOF():
		names = []string{"appendonly.aof"}
	default:
		names = []string{"dump.rdb"}
	}
	for _, name := range names {
		if err := copyFile(src, name, filepath.Join(work, name), uid, gid); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src *os.Root, name, dst string, uid, gid int) error {
	in, err := safefile.OpenIn(src, name)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	if uid >= 0 {
		if err := out.Chown(uid, gid); err != nil {
			return err
		}
	}
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := out.Sync(); err != nil {
		return err
	}
	return out.Close()
}

// runningIn lists the redis processes whose working directory is dir: a
// redis keeps its data directory as its working directory.
func runningIn(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || filepath.Clean(cwd) != filepath.Clean(dir) {
			continue
		}
		// redis-server, redis-check-rdb (Debian's binary), valkey-server.
		if comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm")); err == nil &&
			(strings.HasPrefix(string(comm), "redis") || strings.HasPrefix(string(comm), "valkey")) {
			pids = append(pids, pid)
		}
	}
	return pids
}
