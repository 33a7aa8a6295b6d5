package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/internal/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Restarts. `restart` restarts this box's redis; a master hands its role to
// a replica first (a switchover: nothing lost), so that the restart costs no
// failover and no outage beyond the switchover's pause. `restart --rolling`
// does that on every box from one: the replicas one at a time, each waited
// for until it is back in sync, then a switchover, then the old master.
// With --pending only the boxes whose redis runs a binary replaced on disk
// since it started (an `apt upgrade` of redis-server), or was started with a
// restart-only setting that has changed since, restart.
//
// Another box's agent is asked through that box's redis (sentinel.Request):
// the agents listen on no other port than the read-only HTTP API.

const (
	restartWait = 2 * time.Minute // one box: stop, load, resync
	inSyncLag   = 1 << 20         // bytes behind the master that still count as in sync under writes
)

// Request messages (sentinel.RequestChannel).
const (
	reqRestart        = "restart"
	reqRestartPending = "restart-pending"
)

// opCall is an operation on this box (restart, drain, undrain) on its way
// into the loop, which runs one at a time, switchovers included, and answers
// on reply.
type opCall struct {
	ctx   context.Context
	run   func(context.Context) (string, error)
	reply chan opReply // buffered: the loop never waits for the caller
}

type opReply struct {
	msg string
	err error
}

func startedPath(cfg *config.Config) string { return filepath.Join(cfg.Node.DataDir, "redis.started") }

// noteStarted keeps what only a restart changes of the redis about to start
// (sentinel.RestartOnly), to tell later whether a restart is pending.
func (n *node) noteStarted(cfg *config.Config, rc sentinel.RedisConf) {
	lines := sentinel.RestartOnly(rc.Directives())
	n.started.Store(&lines)
	if err := atomicfile.WriteFile(startedPath(cfg), []byte(strings.Join(lines, "\n")+"\n"), 0o600, -1, -1); err != nil {
		n.log.Warn("keep redis's start settings", "err", err)
	}
}

// loadStarted reads what the previous agent kept of the redis it started,
// for an adopted one; an agent older than this keeps nothing, and then no
// setting counts as pending.
func (n *node) loadStarted(cfg *config.Config) {
	b, err := os.ReadFile(startedPath(cfg))
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	n.started.Store(&lines)
}

// pendingRestart says why this box's redis should restart, "" when nothing
// asks for it.
func (n *node) pendingRestart(cfg *config.Config) string {
	p := n.redis.Current()
	if p == nil {
		return ""
	}
	if replaced, why := p.Replaced(); replaced {
		return "binary: " + why
	}
	started := n.started.Load()
	if started == nil {
		return ""
	}
	for _, l := range sentinel.RestartOnly(redisConf(cfg, nil).Directives()) {
		if !slices.Contains(*started, l) {
			return "setting changed: " + strings.TrimPrefix(strings.Fields(l)[0], "setting ")
		}
	}
	for _, l := range *started {
		if !slices.Contains(sentinel.RestartOnly(redisConf(cfg, nil).Directives()), l) {
			return "setting changed: " + strings.Fields(l)[0]
		}
	}
	return ""
}

// restartHere restarts this box's redis, the master handing its role over
// first, and returns once it is back: loaded, and a replica in sync (or the
// master of a single box).
func (n *node) restartHere(ctx context.Context, pendingOnly bool) (string, error) {
	cfg := n.config()
	if pendingOnly {
		if why := n.pendingRestart(cfg); why == "" {
			return "nothing pending", nil
		}
	}
	began := time.Now()
	if len(cfg.Peers) > 1 {
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		r, err := n.local.Redis().Role(cctx)
		cancel()
		if err == nil && r.Kind == "master" {
			if n.isPaused() {
				return "", fmt.Errorf("%w: restarting the master would leave the group without one", errPaused)
			}
			if err := n.handOverTo(ctx, cfg, ""); err != nil {
				return "", fmt.Errorf("restart: the master hands its role over first: %w", err)
			}
		}
	}
	old := n.redis.Current()
	n.log.Info("restarting redis on request")
	n.redis.Restart()
	if err := n.waitBack(ctx, cfg, old); err != nil {
		return "", fmt.Errorf("restart: %w", err)
	}
	return fmt.Sprintf("redis restarted, back in sync in %s", time.Since(began).Round(time.Millisecond)), nil
}

// waitBack waits until a redis other than old runs, has loaded, and is a
// replica in sync with its master (or a single box's master).
func (n *node) waitBack(ctx context.Context, cfg *config.Config, old any) error {
	ctx, cancel := context.WithTimeout(ctx, restartWait)
	defer cancel()
	for {
		if p := n.redis.Current(); p != nil && any(p) != old {
			cctx, ccancel := context.WithTimeout(ctx, probeTimeout)
			r, err := n.local.Redis().Role(cctx)
			back := err == nil && (cfg.Single() && r.Kind == "master" ||
				r.Kind == "slave" && r.Link == "connected" && inSync(n.local.Lag(cctx, r)))
			ccancel()
			if back {
				return nil
			}
		}
		if sleepCtx(ctx, 100*time.Millisecond) != nil {
			return fmt.Errorf("redis not back in sync after %v", restartWait)
		}
	}
}

func inSync(lag int64) bool { return lag >= 0 && lag <= inSyncLag }

// handOverTo switches the master role to a replica (to, or the best) and
// waits until every sentinel names the new master: this box's redis stops
// next, and one started again at once must not find the old master still
// most named.
func (n *node) handOverTo(ctx context.Context, cfg *config.Config, to string) error {
	res, err := n.switchover(ctx, to)
	if err != nil {
		return err
	}
	n.waitUnanimous(ctx, cfg, res.To)
	n.log.Info("master role handed over", "to", res.To, "writes_paused", res.Paused.Round(time.Millisecond))
	return nil
}

// requestRestart hands a restart to the loop and waits for its result.
func (n *node) requestRestart(ctx context.Context, pendingOnly bool) (string, error) {
	return n.requestOp(ctx, func(ctx context.Context) (string, error) { return n.restartHere(ctx, pendingOnly) })
}

// requestOp hands an operation to the loop and waits for its result.
func (n *node) requestOp(ctx context.Context, run func(context.Context) (string, error)) (string, error) {
	return sendOp(ctx, n.ops, run)
}

// sendOp hands run to the loop reading ops, which runs one operation at a
// time, and waits for its result.
func sendOp(ctx context.Context, ops chan<- opCall, run func(context.Context) (string, error)) (string, error) {
	call := opCall{ctx: ctx, run: run, reply: make(chan opReply, 1)}
	select {
	case ops <- call:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case r := <-call.reply:
		return r.msg, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// serveRequests takes the requests other boxes send this box's agent
// through its redis, until ctx ends.
func (n *node) serveRequests(ctx context.Context) {
	var running sync.WaitGroup // requests carried out, which end with ctx
	defer running.Wait()
	for ctx.Err() == nil {
		for msg := range n.local.Redis().Requests(ctx) {
			switch msg {
			case reqRestart, reqRestartPending:
				n.log.Info("restart requested from another box", "request", msg)
				running.Go(func() {
					// Answered through the restarted redis itself, which the
					// sender watches; only the log hears of a failure. The
					// sender's switchover just before (restart --rolling) may
					// still be winding down here: wait for it.
					res, err := n.requestRestart(ctx, msg == reqRestartPending)
					for i := 0; errors.Is(err, errAlreadySwitching) && i < 150 && sleepCtx(ctx, 200*time.Millisecond) == nil; i++ {
						res, err = n.requestRestart(ctx, msg == reqRestartPending)
					}
					if err != nil {
						n.log.Warn("requested restart", "err", err)
					} else {
						n.log.Info("requested restart", "result", res)
					}
				})
			default:
				n.log.Warn("unknown request from another box", "request", msg)
			}
		}
		_ = sleepCtx(ctx, time.Second) // redis or the password changed: subscribe again
	}
}

// restartCmd is `redis-ha-agent restart [--rolling] [--pending]`.
func restartCmd(ctx context.Context, path string, rolling, pending bool, out io.Writer) error {
	cfg, err := config.Load(path, config.DefaultEnv())
	if err != nil {
		return err
	}
	if !rolling {
		reply, err := controlCall(ctx, cfg, "/restart?pending="+fmt.Sprint(pending), restartWait+time.Minute)
		if err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		fmt.Fprintf(out, "%s: %s\n", cfg.Self, reply.Message)
		return nil
	}
	if cfg.Single() {
		return errors.New("restart --rolling: single-box mode: use restart")
	}
	master, err := namedMaster(ctx, cfg)
	if err != nil {
		return fmt.Errorf("restart --rolling: %w", err)
	}
	todo := func(a wire.Addr) (bool, error) {
		if !pending {
			return true, nil
		}
		why, err := peerPending(ctx, cfg, a)
		if err != nil {
			return false, fmt.Errorf("restart --pending: %s: %w", a, err)
		}
		if why == "" {
			fmt.Fprintf(out, "%s: nothing pending\n", a)
			return false, nil
		}
		fmt.Fprintf(out, "%s: pending (%s)\n", a, why)
		return true, nil
	}
	for _, a := range cfg.Members() {
		if a == master {
			continue
		}
		if do, err := todo(a); err != nil || !do {
			if err != nil {
				return err
			}
			continue
		}
		if err := restartRemote(ctx, cfg, a, out); err != nil {
			return err
		}
	}
	do, err := todo(master)
	if err != nil || !do {
		return err
	}
	reply, err := controlCall(ctx, cfg, "/switchover", time.Minute)
	if err != nil {
		return fmt.Errorf("restart --rolling: switchover before restarting the master %s: %w", master, err)
	}
	fmt.Fprintf(out, "%s: %s\n", master, reply.Message)
	return restartRemote(ctx, cfg, master, out)
}

// restartRemote asks a's agent to restart its redis, which must be a
// replica by now, and waits until it is back in sync: a new run id, a
// replica with its link up, within inSyncLag of its master.
func restartRemote(ctx context.Context, cfg *config.Config, a wire.Addr, out io.Writer) error {
	began := time.Now()
	c := sentinel.NewRedis(a, cfg.Creds())
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	before, err := c.Server(cctx)
	var got int64
	if err == nil {
		got, err = c.Request(cctx, reqRestart)
	}
	cancel()
	if err != nil {
		return fmt.Errorf("restart %s: %w", a, err)
	}
	if got == 0 {
		return fmt.Errorf("restart %s: no agent listens there (is redis-ha-agent running on that box?)", a)
	}
	wctx, wcancel := context.WithTimeout(ctx, restartWait)
	defer wcancel()
	for {
		pctx, pcancel := context.WithTimeout(wctx, probeTimeout)
		srv, err1 := c.Server(pctx)
		r, err2 := c.Role(pctx)
		back := err1 == nil && err2 == nil && srv.RunID != before.RunID && r.Kind == "slave" && r.Link == "connected"
		if back {
			m := sentinel.NewRedis(r.Master, cfg.Creds())
			mr, err := m.Role(pctx)
			m.Close()
			back = err == nil && inSync(mr.Offset-r.Offset)
		}
		pcancel()
		if back {
			fmt.Fprintf(out, "%s: restarted, back in sync in %s\n", a, time.Since(began).Round(time.Millisecond))
			return nil
		}
		if sleepCtx(wctx, 100*time.Millisecond) != nil {
			return fmt.Errorf("restart %s: not back in sync after %v", a, restartWait)
		}
	}
}

// peerPending reads a box's pending restart from its /status.
func peerPending(ctx context.Context, cfg *config.Config, a wire.Addr) (string, error) {
	st, err := peerBoxStatus(ctx, cfg, a)
	if err != nil {
		return "", fmt.Errorf("pending restarts are read from each box's /status (http.listen): %w", err)
	}
	return st.PendingRestart, nil
}
