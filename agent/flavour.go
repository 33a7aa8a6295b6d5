package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/supervisor"
)

// Redis or Valkey: redis.binary may be either (Debian 13 packages both). The
// agent asks the binary which it is, runs it as that server's own user, and
// refuses to start it over data it cannot load.

// refusal is a start (or reload) the agent refuses for a reason no restart
// fixes: the configured binary cannot run this box's data. Like an invalid
// configuration it exits 78, which stops systemd's restart loop, and says why.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// binaryServer asks binary which server it is (--version).
func binaryServer(ctx context.Context, binary string) (sentinel.Server, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "--version").Output()
	if err != nil {
		return sentinel.Server{}, fmt.Errorf("redis.binary: %s --version: %w", binary, err)
	}
	s, err := sentinel.ParseVersion(string(out))
	if err != nil {
		return sentinel.Server{}, fmt.Errorf("redis.binary: %s: %w", binary, err)
	}
	return s, nil
}

// serverFor is redis.binary's server, refusing one that cannot load the data
// already in the state directory (Valkey over Redis 7.4's RDB format 12:
// "Can't handle RDB format version 12", and redis would exit at every start).
func serverFor(ctx context.Context, cfg *config.Config) (sentinel.Server, error) {
	srv, err := binaryServer(ctx, cfg.Redis.Binary)
	if err != nil {
		return srv, &refusal{err}
	}
	rdb, file, err := sentinel.DataRDB(cfg.Node.DataDir)
	if err != nil {
		return srv, fmt.Errorf("read the data's format: %w", err)
	}
	if err := sentinel.CanLoad(srv, rdb, file); err != nil {
		return srv, &refusal{fmt.Errorf("redis.binary: %w: set redis.binary back to the server that wrote it, or move the data out of %s to start empty", err, cfg.Node.DataDir)}
	}
	return srv, nil
}

// serviceUsers are the users a server runs as, in order: its own package's,
// then the other's (a box may have only one of them).
func serviceUsers(srv sentinel.Server) []string {
	if srv.Valkey() {
		return []string{"valkey", "redis"}
	}
	return []string{"redis", "valkey"}
}

// lookupServiceUser is the first of srv's users that exists.
func lookupServiceUser(srv sentinel.Server) (*syscall.Credential, string, error) {
	var errs []error
	for _, u := range serviceUsers(srv) {
		cred, err := supervisor.LookupCredential(u)
		if err == nil {
			return cred, u, nil
		}
		errs = append(errs, err)
	}
	return nil, "", fmt.Errorf("no user to run %s as: %w", srv, errors.Join(errs...))
}

// handOver gives the state directory to uid:gid. The top directory's owner
// says whose it is; when that changes (Redis to Valkey, whose user differs),
// everything in it changes owner, or the new user could not read its data.
// The directory is the old user's: a file with another hard link may be
// someone else's file (safefile), and keeps its owner.
func handOver(dir string, uid, gid int) (bool, error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return false, err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && int(st.Gid) == gid {
		return false, nil
	}
	return true, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			if fi, err := d.Info(); err != nil {
				return err
			} else if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
				return nil
			}
		}
		return os.Lchown(p, uid, gid)
	})
}
