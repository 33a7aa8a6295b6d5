package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
)

// idleWindow is how long the CPU share of an idle process is measured over.
const idleWindow = 60 * time.Second

// watched is one process whose footprint is measured.
type watched struct {
	label string
	bx    *box.Box
	pid   func(context.Context) (int, error)
	agent bool // has /metrics on port 8008 (goroutines)
}

// footprint measures every process of ws over one idle window, all at once
// so that they share it: a sample at its start and its end, then the
// goroutines (after the window: asking costs CPU). notes says what a reader
// of the numbers must know.
func footprint(ctx context.Context, ws []watched) (procs []Proc, notes []string) {
	procs = make([]Proc, len(ws))
	first := make([]Sample, len(ws))
	pids := make([]int, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		procs[i] = Proc{Label: w.label, Goroutines: -1}
		wg.Go(func() {
			pid, err := w.pid(ctx)
			if err == nil {
				pids[i] = pid
				first[i], err = sample(ctx, w.bx, pid)
			}
			if err != nil {
				procs[i].Err = err.Error()
			}
		})
	}
	wg.Wait()
	sleep(ctx, idleWindow)
	for i, w := range ws {
		if procs[i].Err != "" {
			continue
		}
		wg.Go(func() {
			last, err := sample(ctx, w.bx, pids[i])
			if err != nil {
				procs[i].Err = err.Error()
				return
			}
			p := &procs[i]
			p.RSS, p.HWM, p.Threads, p.FDs = last.RSS, last.HWM, last.Threads, last.FDs
			p.CPU = CPUPercent(first[i], last)
		})
	}
	wg.Wait()
	for i, w := range ws {
		if !w.agent || procs[i].Err != "" {
			continue
		}
		m, from, err := metricsIn(ctx, w.bx)
		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("%s: /metrics: %v", w.label, err))
		case from != w.bx.Addr:
			notes = append(notes, fmt.Sprintf("%s: the HTTP API answers on %s:8008, not on the box's address %s:8008 "+
				"(http.listen's default) as PRODUCT.md says", w.label, from, w.bx.Addr))
		}
		procs[i].Goroutines = Goroutines(m)
	}
	return procs, notes
}

// metricsScript fetches /metrics in a box, from the address given, else
// from loopback (the image has no curl: bash's /dev/tcp does).
const metricsScript = `for h in "$1" 127.0.0.1; do
	if out=$( (exec 3<>"/dev/tcp/$h/8008" && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && timeout 3 cat <&3) 2>/dev/null); then
		echo "from $h"
		printf '%s\n' "$out"
		exit 0
	fi
done
echo "nothing answers on $1:8008 or 127.0.0.1:8008" >&2
exit 1`

// metricsIn is the agent's /metrics, read in its box, and the address that
// answered.
func metricsIn(ctx context.Context, bx *box.Box) (body, from string, err error) {
	out, _, err := bx.Exec(ctx, "bash", "-c", metricsScript, "bash", bx.Addr)
	if err != nil {
		return "", "", err
	}
	first, body, _ := strings.Cut(out, "\n")
	return body, strings.TrimPrefix(first, "from "), nil
}

func sample(ctx context.Context, bx *box.Box, pid int) (Sample, error) {
	out, err := sh(ctx, bx, SampleScript(pid))
	if err != nil {
		return Sample{}, fmt.Errorf("box %s: pid %d: %w", bx.Name, pid, err)
	}
	return ParseSample(out)
}

// agentProc, sentinelProc and agentSentinelProc find the processes of the
// footprint table in a box.
func agentProc(label string, bx *box.Box) watched {
	return watched{label: label, bx: bx, agent: true,
		pid: func(ctx context.Context) (int, error) { return mainPID(ctx, bx, agentUnit) }}
}

func sentinelProc(label string, bx *box.Box) watched {
	return watched{label: label, bx: bx,
		pid: func(ctx context.Context) (int, error) { return mainPID(ctx, bx, "redis-sentinel.service") }}
}

func agentSentinelProc(label string, bx *box.Box) watched {
	return watched{label: label, bx: bx, pid: func(ctx context.Context) (int, error) {
		out, err := sh(ctx, bx, "cat /run/redis-ha/sentinel.pid")
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(out)
	}}
}

// peakHWM is the highest VmHWM of a unit's main process over boxes, and the
// box it is on.
func peakHWM(ctx context.Context, boxes []*box.Box, unit string) (int64, string) {
	var peak int64
	var on string
	for _, bx := range boxes {
		pid, err := mainPID(ctx, bx, unit)
		if err != nil {
			continue
		}
		if s, err := sample(ctx, bx, pid); err == nil && s.HWM > peak {
			peak, on = s.HWM, bx.Name
		}
	}
	return peak, on
}

// startScript times `systemctl start UNIT` until `systemctl is-active UNIT`
// says active, in the box (no exec round trips in the measurement), and
// prints nanoseconds.
const startScript = `u=$1
t0=$(date +%s%N)
systemctl start "$u" || { systemctl status "$u" --no-pager -n 20 >&2; exit 1; }
while [ "$(systemctl is-active "$u")" != active ]; do
	[ $(( $(date +%s%N) - t0 )) -lt 300000000000 ] || { echo "$u not active after 300 s" >&2; exit 1; }
	sleep 0.01
done
echo $(( $(date +%s%N) - t0 ))`

// startReady stops unit if it runs and times its start.
func startReady(ctx context.Context, bx *box.Box, unit string) Timing {
	if _, err := sh(ctx, bx, "systemctl stop "+unit); err != nil {
		return Timing{Err: err.Error()}
	}
	out, _, err := bx.Exec(ctx, "sh", "-c", startScript, "sh", unit)
	if err != nil {
		return Timing{Err: err.Error()}
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		return Timing{Err: fmt.Sprintf("start %s: %q: %v", unit, out, err)}
	}
	return Timing{D: time.Duration(ns)}
}

// The dataset of the start → READY case with data: DEBUG POPULATE's keys
// of populateSize bytes, about 1 GiB of RSS in redis 7.0.
const (
	populateKeys = 1_000_000
	populateSize = 1000
)

// populate fills a box's redis on 127.0.0.1:6379 (the password in env, if
// any) with the dataset, persists it as redis' configuration would on its
// own (persist: SAVE for RDB, BGREWRITEAOF for AOF, which DEBUG POPULATE
// bypasses), and returns redis' RSS.
func populate(ctx context.Context, bx *box.Box, env []string, persist string) (int64, error) {
	script := fmt.Sprintf(`set -e
cli() { redis-cli -h 127.0.0.1 -p 6379 "$@"; }
r=$(cli DEBUG POPULATE %d bench %d); [ "$r" = OK ] || { echo "DEBUG POPULATE: $r" >&2; exit 1; }
r=$(cli %s); case "$r" in OK|"Background append only file rewriting started") ;; *) echo "%s: $r" >&2; exit 1 ;; esac
i=0
while cli INFO persistence | grep -Eq '^aof_rewrite_(in_progress|scheduled):1'; do
	i=$((i+1)); [ $i -lt 600 ] || { echo "AOF rewrite not done after 60 s" >&2; exit 1; }
	sleep 0.1
done
cli INFO memory | sed -n 's/^used_memory_rss:\([0-9]*\).*/\1/p'`, populateKeys, populateSize, persist, persist)
	out, _, err := bx.ExecInput(ctx, nil, env, "sh", "-c", script)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(out), 10, 64)
}

// startTimes fills the start → READY table on a box of its own, one setup
// after the other so that only one dataset is in memory: Debian's
// redis-server unit, empty and with the dataset, then the agent's package
// (single box: a fresh install's embedded default, AOF) likewise. The agent
// gets enable-debug-command through redis.settings, for DEBUG POPULATE.
func startTimes(t *testing.T, ctx context.Context, rep *Report, solo *box.Box) (empty, loaded StartRow) {
	empty = StartRow{Case: "empty dataset, one box"}
	loaded = StartRow{Overhead: true}
	var rss int64

	// Debian's redis-server (its default config: RDB).
	empty.Redis = func() Timing {
		if _, err := sh(ctx, solo, "echo 'enable-debug-command local' >>/etc/redis/redis.conf"); err != nil {
			return Timing{Err: err.Error()}
		}
		return startReady(ctx, solo, "redis-server.service")
	}()
	loaded.Redis = func() Timing {
		if empty.Redis.Err != "" {
			return Timing{Err: "not measured"}
		}
		var err error
		if rss, err = populate(ctx, solo, nil, "SAVE"); err != nil {
			return Timing{Err: err.Error()}
		}
		if _, err := sh(ctx, solo, "systemctl stop redis-server && : >/var/log/redis/redis-server.log"); err != nil {
			return Timing{Err: err.Error()}
		}
		tm := startReady(ctx, solo, "redis-server.service")
		log, _ := sh(ctx, solo, "cat /var/log/redis/redis-server.log")
		tm.Load = LoadTime(log)
		return tm
	}()
	if _, err := sh(ctx, solo, "systemctl stop redis-server && rm -f /var/lib/redis/dump.rdb"); err != nil {
		rep.note(t, "start → READY: could not clear Debian's redis-server: %v", err)
	}

	// The agent's package, as a fresh install.
	empty.Agent = func() Timing {
		setup := `mkdir -p /etc/redis-ha/conf.d
printf '[redis]\nsettings = { "enable-debug-command" = "local" }\n' >/etc/redis-ha/conf.d/90-bench.conf
cd /dist/new && apt install -y ./redis-ha-agent_*.deb >/dev/null 2>&1`
		if _, err := sh(ctx, solo, setup); err != nil {
			return Timing{Err: err.Error()}
		}
		return startReady(ctx, solo, agentUnit)
	}()
	loaded.Agent = func() Timing {
		if empty.Agent.Err != "" {
			return Timing{Err: "not measured"}
		}
		pw, err := sh(ctx, solo, "cat /etc/redis-ha/password")
		if err != nil {
			return Timing{Err: err.Error()}
		}
		agentRSS, err := populate(ctx, solo, []string{"REDISCLI_AUTH=" + pw}, "BGREWRITEAOF")
		if err != nil {
			return Timing{Err: err.Error()}
		}
		rss = max(rss, agentRSS)
		if _, err := sh(ctx, solo, "systemctl stop "+agentUnit); err != nil {
			return Timing{Err: err.Error()}
		}
		since, _ := sh(ctx, solo, "date +%s")
		tm := startReady(ctx, solo, agentUnit)
		log, _ := sh(ctx, solo, "journalctl -u "+agentUnit+" --no-pager -o cat --since @"+since)
		tm.Load = LoadTime(log)
		if tm.Load == 0 && tm.Err == "" {
			rep.note(t, "start → READY: the agent's journal holds no \"DB loaded\" line of redis; its load time is not known")
		}
		return tm
	}()
	sh(ctx, solo, "systemctl stop "+agentUnit) // its gigabyte is not the faults' business
	loaded.Case = fmt.Sprintf("%d keys × %d B (RSS %s), one box", populateKeys, populateSize, mibOrNA(rss))
	return empty, loaded
}

// binaries inspects the agent's binary as make build leaves it and the one
// Debian's redis-sentinel runs (redis-server's).
func binaries(bx *box.Box) (agent, sentinel Binary, err error) {
	path := os.Getenv("RHA_BIN")
	if path == "" {
		path = "../../bin/redis-ha-agent"
	}
	if agent, err = InspectBinary(path); err != nil {
		return agent, sentinel, err
	}
	sentinel, err = InspectBinary(bx.Path("usr/bin/redis-sentinel"))
	return agent, sentinel, err
}
