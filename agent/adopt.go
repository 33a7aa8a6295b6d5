package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/internal/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
	"github.com/redis-ha-agent/redis-ha-agent/supervisor"
)

// An agent restart costs redis nothing. redis and sentinel run in process
// groups of their own and outlive the agent (the unit's KillMode=process);
// the next agent finds them answering on this box's ports, started from this
// box's generated files, and adopts them: watched through a pidfd, their
// output read again from the named pipe they were started with, their
// runtime settings put right, their role left alone. Neither the restart
// gate nor a restart is involved, so a kill -9 of the agent, `systemctl
// restart` and a package upgrade cost no write and cause no failover.
//
// A clean stop of the unit still stops them (stop): an agent that is asked to
// stop and is not being restarted takes redis with it, after handing the
// master role to a replica.

// handOffWait bounds the switchover a stopping master runs first; the unit's
// TimeoutStopSec (90 s) leaves room for it and for redis's own shutdown.
const handOffWait = 30 * time.Second

// running returns the pid of this box's redis or sentinel left running by a
// previous agent: the server answering at addr (ask), started from confPath,
// running the configured binary. Asked rather than read from the pid file:
// a runtime directory removed while it ran loses the pid file, and a server
// that no longer answers at this box's address (a changed port, password or
// announce) is not the one to keep.
func (n *node) running(ctx context.Context, cfg *config.Config, confPath string,
	ask func(context.Context) (sentinel.Server, error)) (int, bool) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	srv, err := ask(ctx)
	if err != nil || srv.ConfigFile != confPath || !supervisor.Runs(srv.PID, cfg.Redis.Binary) {
		return 0, false
	}
	return srv.PID, true
}

// redisSpec is how redis runs: from the generated file, as the service user.
func (n *node) redisSpec(cfg *config.Config) supervisor.Spec {
	return supervisor.Spec{
		Name:       "redis",
		Path:       cfg.Redis.Binary,
		Args:       []string{redisConfPath(cfg)},
		Dir:        cfg.Node.DataDir,
		Credential: n.cred,
		StopGrace:  childStopWait,
		PidFile:    redisPidFile(cfg),
		Output:     filepath.Join(cfg.Node.RunDir, "redis.out"),
		ParseLine:  sentinel.ParseLogLine,
	}
}

// sentinelSpec is how the sentinel runs.
func (n *node) sentinelSpec(cfg *config.Config) supervisor.Spec {
	return supervisor.Spec{
		Name:       "sentinel",
		Path:       cfg.Redis.Binary,
		Args:       []string{sentinelConfPath(cfg), "--sentinel"},
		Dir:        cfg.Node.DataDir,
		Credential: n.cred,
		StopGrace:  childStopWait,
		PidFile:    sentPidFile(cfg),
		Output:     filepath.Join(cfg.Node.RunDir, "sentinel.out"),
		ParseLine:  sentinel.ParseLogLine,
	}
}

// adoptRedis is the spec that takes over the running redis pid.
func (n *node) adoptRedis(cfg *config.Config, pid int) (supervisor.Spec, error) {
	n.log.Info("redis of the previous agent is running: adopting it as it is, role and data untouched", "pid", pid)
	// The marker says that redis runs; an agent older than adoption may not
	// have left one for a redis it never stopped.
	if err := atomicfile.WriteFile(runningMarker(cfg), []byte("running\n"), 0o644, -1, -1); err != nil {
		return supervisor.Spec{}, fmt.Errorf("mark redis running: %w", err)
	}
	n.adopted.redis.Store(true)
	n.loadStarted(cfg)
	spec := n.redisSpec(cfg)
	spec.Adopt = pid
	return spec, nil
}

// configureAdopted puts an adopted redis's runtime settings right (the
// configuration may have changed while no agent ran) and takes over the
// fence its agent left: a master fenced by the last agent stays fenced until
// this one sees a majority again, rather than being unfenced as a drift.
// replica-priority is left as it is: a switchover or a pause may hold it.
func (n *node) configureAdopted(ctx context.Context, cfg *config.Config) {
	rc := n.local.Redis()
	for _, d := range redisConf(cfg, nil).Directives() {
		if d.Live == nil || d.Decided || d.Live[0] == "replica-priority" {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := rc.Set(cctx, d.Live[0], d.Live[1])
		cancel()
		if err != nil {
			n.log.Warn("adopted redis: runtime setting refused", "key", d.Live[0], "err", err)
		}
	}
	if cfg.Single() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if fenced, err := rc.Fenced(cctx, len(cfg.Peers)); err == nil && fenced {
		n.st.fenced = true
		n.log.Warn("adopted redis is fenced by the previous agent; it stays fenced until a majority of sentinels is in sight")
	}
}

// configureAdoptedSentinel sets the group's options on an adopted sentinel:
// SENTINEL SET of each, as a reload would (they may have changed while no
// agent ran).
func (n *node) configureAdoptedSentinel(ctx context.Context, cfg *config.Config) {
	var set [][2]string
	for _, d := range sentinelConf(cfg).Directives() {
		if d.Live != nil {
			set = append(set, *d.Live)
		}
	}
	if err := n.applySentinel(ctx, cfg, set); err != nil {
		n.log.Warn("adopted sentinel: settings", "err", err)
	}
}

// restarting reports whether systemd is restarting this agent's unit
// (`systemctl restart`, or the try-restart of a package upgrade) rather than
// stopping it. SIGTERM is the same either way; only the job systemd runs on
// the unit tells them apart. Outside systemd, or when systemctl cannot say,
// it is a stop: stopping redis is what a plain SIGTERM has always meant.
func (n *node) restarting(ctx context.Context) bool {
	if os.Getenv("INVOCATION_ID") == "" {
		return false
	}
	unit, err := ownUnit()
	if err != nil {
		n.log.Warn("cannot tell a restart from a stop; stopping redis", "err", err)
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemctl", "list-jobs", "--no-legend", "--no-pager", unit).Output()
	if err != nil {
		n.log.Warn("cannot tell a restart from a stop; stopping redis", "err", fmt.Errorf("systemctl list-jobs: %w", err))
		return false
	}
	job := jobType(out, unit)
	n.log.Info("systemd job on the unit", "unit", unit, "job", job)
	return strings.Contains(job, "restart")
}

// jobType finds unit's job in `systemctl list-jobs --no-legend` output
// (JOB UNIT TYPE STATE); "" when it has none.
func jobType(out []byte, unit string) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		for i := 0; i+1 < len(f); i++ {
			if f[i] == unit {
				return f[i+1]
			}
		}
	}
	return ""
}

// ownUnit is the systemd unit whose cgroup the agent runs in
// ("0::/system.slice/redis-ha-agent.service").
func ownUnit() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("own unit: %w", err)
	}
	for l := range strings.Lines(string(b)) {
		path := strings.TrimSpace(l[strings.LastIndexByte(l, ':')+1:])
		if u := filepath.Base(path); strings.HasSuffix(u, ".service") {
			return u, nil
		}
	}
	return "", fmt.Errorf("own unit: no service in /proc/self/cgroup")
}

// handOff hands the master role to a replica before a clean stop: stopped
// as master, the group would have no master until the sentinels saw it down
// (down_after) and failed over, and writes acknowledged in between by a
// master about to go are safe but the outage is not. A switchover pauses
// writes well under a second and loses none. A refused or failed one is
// logged and the stop goes on.
func (n *node) handOff(cfg *config.Config) {
	if len(cfg.Peers) < 2 || n.redis.Current() == nil {
		return
	}
	if n.isPaused() {
		n.log.Warn("stopping the master of a paused group: no switchover; the group has no master until it is back")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), handOffWait)
	defer cancel()
	if r, err := n.local.Redis().Role(ctx); err != nil || r.Kind != "master" {
		return
	}
	n.log.Info("stopping the master: switching over to a replica first")
	if err := n.handOverTo(ctx, cfg, ""); err != nil {
		n.log.Warn("stopping the master without a switchover: the sentinels fail over after down_after", "err", err)
		return
	}
	n.log.Info("master role handed over before stopping")
}

// waitUnanimous waits until every sentinel that answers names the master
// at to (ha.Unanimous), until ctx ends.
func (n *node) waitUnanimous(ctx context.Context, cfg *config.Config, to string) {
	m, err := wire.ParseAddr(to, cfg.Redis.Port)
	if err != nil {
		return
	}
	for {
		actx, acancel := context.WithTimeout(ctx, probeTimeout)
		answers := cfg.Group().AskAll(actx)
		acancel()
		if ha.Unanimous(answers, m, cfg.SentinelQuorum()) {
			return
		}
		if sleepCtx(ctx, 100*time.Millisecond) != nil {
			n.log.Warn("not every sentinel names the new master yet", "master", to)
			return
		}
	}
}
