package sentinel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// LoaderConf is a redis-server that only loads a dataset, for the agent to
// count its keys or convert it (adopt-data): no TCP port at all, a unix
// socket only its user may use, nothing saved unless asked.
type LoaderConf struct {
	Dir    string // the dataset's directory: dump.rdb, appendonlydir/ or appendonly.aof
	Socket string // the unix socket it listens on
	AOF    bool   // load the append-only file (appendonly yes), else dump.rdb
}

// RenderLoader renders a LoaderConf's redis.conf.
func RenderLoader(c LoaderConf) []byte {
	aof := "no"
	if c.AOF {
		aof = "yes"
	}
	return render([]Directive{
		fixed("port", "0"),
		fixed("unixsocket", quote(c.Socket)),
		fixed("unixsocketperm", "700"),
		fixed("daemonize", "no"),
		fixed("supervised", "no"),
		fixed("logfile", quote("")),
		fixed("dir", quote(c.Dir)),
		fixed("dbfilename", "dump.rdb"),
		fixed("appendonly", aof),
		fixed("appendfilename", "appendonly.aof"),
		fixed("appenddirname", "appendonlydir"),
		fixed("save", quote("")),
	})
}

// NewLoaderClient returns a handle of the loader listening on socket. A
// loader has no password: its socket is its user's alone (and root's).
func NewLoaderClient(socket string) *Redis {
	o := options(wire.Addr{}, Creds{})
	o.Network, o.Addr = "unix", socket
	// Loading, converting and saving a large dataset takes its time; the
	// caller's context bounds each call.
	o.ReadTimeout, o.WriteTimeout = -1, -1
	return &Redis{c: redis.NewClient(o)}
}

// WriteAOF turns the append-only file on (CONFIG SET appendonly yes) and
// waits until redis has written the dataset into it: the rewrite that
// follows creates appendonlydir/ with its manifest.
func (r *Redis) WriteAOF(ctx context.Context) error {
	if err := r.Set(ctx, "appendonly", "yes"); err != nil {
		return err
	}
	for {
		info, err := r.c.Info(ctx, "persistence").Result()
		if err != nil {
			return fmt.Errorf("info persistence: %w", err)
		}
		f := infoFields(info)
		switch {
		case f["aof_last_bgrewrite_status"] == "err":
			return errors.New("write the append-only file: the rewrite failed (see redis's output)")
		case f["aof_enabled"] == "1" && f["aof_rewrite_in_progress"] == "0" && f["aof_rewrite_scheduled"] == "0":
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("write the append-only file: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// SaveAndShutdown saves the dataset (dump.rdb, and the append-only file's
// last writes when it is on) and stops the server: SHUTDOWN SAVE, whose
// connection then closes without a reply.
func (r *Redis) SaveAndShutdown(ctx context.Context) error {
	err := r.c.Do(ctx, "SHUTDOWN", "SAVE").Err()
	if err == nil || !redis.HasErrorPrefix(err, "ERR") {
		return nil // no reply: it is gone
	}
	return fmt.Errorf("shutdown save: %w", err)
}
