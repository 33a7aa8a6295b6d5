package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/internal/journallog"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
)

// Version is set at build time (-ldflags -X).
var Version = "0.0.0-dev"

// Exit codes of PRODUCT.md; 78 is EX_CONFIG so systemd's
// RestartPreventExitStatus=78 stops a restart loop on a config typo.
const (
	ExitOK      = 0
	ExitFailed  = 1
	ExitUsage   = 2
	ExitConfig  = 78
	defaultConf = "/etc/redis-ha/redis-ha.conf"
)

const usage = `usage: redis-ha-agent <command> [flags]

commands:
  run [--config PATH]            the daemon (config dir = PATH's directory, conf.d beside it)
  status [--json]                every peer: role, offsets, lag, what the sentinels say
  check                          preflight: config, binaries, ports, peers, kernel settings, quorum
  check-config                   parse and validate the configuration only
  switchover [--to HOST[:PORT]]  planned master change with zero acknowledged writes lost
  history [--json]               this box's role changes with time, cause and replication offsets
  pause [--for DURATION]         group-wide maintenance: no automatic failover, fencing or VIP move
  resume                         end the pause
  drain | undrain                this box hands off the master role and is never promoted until undrained
  restart [--rolling] [--pending]
                                 restart redis here (a master switches over first), or on every box,
                                 replicas first, one at a time; --pending: only where the binary or a
                                 restart-only setting changed
  adopt-data DIR                 before the group's first start, on the bootstrap primary or a single
                                 box: make an existing redis data directory (e.g. /var/lib/redis) this
                                 box's dataset
  version                        print the version

every command takes --config PATH (default /etc/redis-ha/redis-ha.conf)
`

// Main runs one command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	confPath := fs.String("config", defaultConf, "base configuration file")
	asJSON := fs.Bool("json", false, "status, history: print JSON")
	to := fs.String("to", "", "switchover: the replica to promote, HOST[:PORT]")
	pauseFor := fs.Duration("for", 0, "pause: end the pause by itself after this long (0: at resume)")
	rolling := fs.Bool("rolling", false, "restart: every box, replicas first, the master last")
	pendingOnly := fs.Bool("pending", false, "restart: only where a restart is pending")
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	case "version", "--version":
		fmt.Fprintf(stdout, "redis-ha-agent %s\n", Version)
		return ExitOK
	}
	// adopt-data takes one directory, before or after the flags.
	var dataDir string
	if cmd == "adopt-data" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		dataDir, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return ExitUsage
	}
	if cmd == "adopt-data" && dataDir == "" && fs.NArg() == 1 {
		dataDir = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "redis-ha-agent %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return ExitUsage
	}
	sentinel.QuietClientLogs()

	var err error
	switch cmd {
	case "run":
		level := new(slog.LevelVar) // log.level, once the configuration is read
		h, journaled := logHandler(stderr, level)
		err = run(ctx, *confPath, config.DefaultEnv(), slog.New(h), level)
		if journaled {
			stderr = journallog.Errors(stderr) // why it stopped, at priority err
		}
	case "check-config":
		err = checkConfig(*confPath, stdout)
	case "check":
		err = check(ctx, *confPath, stdout)
	case "status":
		err = status(ctx, *confPath, *asJSON, stdout)
	case "switchover":
		err = switchoverCmd(ctx, *confPath, *to, stdout)
	case "history":
		err = history(*confPath, *asJSON, stdout)
	case "pause":
		err = pauseCmd(ctx, *confPath, *pauseFor, stdout)
	case "resume":
		err = resumeCmd(ctx, *confPath, stdout)
	case "drain", "undrain":
		err = drainCmd(ctx, *confPath, cmd == "undrain", stdout)
	case "restart":
		err = restartCmd(ctx, *confPath, *rolling, *pendingOnly, stdout)
	case "adopt-data":
		err = adoptDataCmd(ctx, *confPath, dataDir, stdout)
	default:
		fmt.Fprintf(stderr, "redis-ha-agent: unknown command %q\n\n%s", cmd, usage)
		return ExitUsage
	}
	return exitCode(err, stderr)
}

// errUnhealthy marks a command that ran but found the group unhealthy; its
// report is already printed.
var errUnhealthy = errors.New("unhealthy")

func exitCode(err error, stderr io.Writer) int {
	var cerr *config.Error
	var refused *refusal
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &cerr) && cerr.AccessOnly():
		// Not invalid, just unreadable to this user: 78 would tell a
		// monitoring script the configuration is broken.
		fmt.Fprintf(stderr, "redis-ha-agent: cannot read the configuration as this user (run as root):\n%s\n", cerr.Error())
		return ExitFailed
	case errors.As(err, &cerr):
		fmt.Fprintf(stderr, "invalid configuration:\n%s\n", cerr.Error())
		return ExitConfig
	case errors.As(err, &refused):
		fmt.Fprintf(stderr, "refusing to start: %v\n", refused.err)
		return ExitConfig
	case errors.Is(err, errUnhealthy):
		return ExitFailed
	default:
		fmt.Fprintf(stderr, "redis-ha-agent: %v\n", err)
		return ExitFailed
	}
}

// logHandler writes the daemon's log to stderr: for the journal when stderr is
// the journal's stream (under systemd: each line at its priority, no second
// timestamp), else as plain text with the time.
func logHandler(stderr io.Writer, level slog.Leveler) (slog.Handler, bool) {
	opts := &slog.HandlerOptions{Level: level}
	if ok, _ := journal.StderrIsJournalStream(); ok {
		return journallog.New(stderr, opts), true
	}
	return slog.NewTextHandler(stderr, opts), false
}

func checkConfig(path string, stdout io.Writer) error {
	cfg, err := config.Load(path, config.DefaultEnv())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "configuration ok: %d file(s), %s\n", len(cfg.Files), cfg.Describe())
	return nil
}
