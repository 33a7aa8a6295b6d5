package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

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

// opts are the command line's values; each verb defines only the flags it
// takes (verbs in cli.go).
type opts struct {
	config      string
	json        bool
	to          string
	pauseFor    time.Duration
	rolling     bool
	pendingOnly bool
	arg         string // the positional argument: adopt-data's DIR, completion's SHELL
}

// Main runs one command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return ExitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "--help", "help":
		if len(rest) == 1 {
			if v := lookupVerb(rest[0]); v != nil {
				fmt.Fprint(stdout, v.usage())
				return ExitOK
			}
		}
		fmt.Fprint(stdout, usage())
		return ExitOK
	case "-v", "--version":
		name = "version"
	}
	v := lookupVerb(name)
	if v == nil {
		fmt.Fprintf(stderr, "redis-ha-agent: unknown command %q\n\n%s", name, usage())
		return ExitUsage
	}
	o := &opts{}
	fs := v.flagSet(o)
	fs.SetOutput(io.Discard)
	// A positional argument (adopt-data's DIR) may come before the flags.
	var pos []string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		pos, rest = rest[:1], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, v.usage())
			return ExitOK
		}
		fmt.Fprintf(stderr, "redis-ha-agent %s: %v\n\n%s", name, err, v.usage())
		return ExitUsage
	}
	pos = append(pos, fs.Args()...)
	if len(pos) != len(v.args) {
		if len(pos) > len(v.args) {
			fmt.Fprintf(stderr, "redis-ha-agent %s: unexpected argument %q\n\n%s", name, pos[len(v.args)], v.usage())
		} else {
			fmt.Fprintf(stderr, "redis-ha-agent %s: missing %s\n\n%s", name, v.args[len(pos)], v.usage())
		}
		return ExitUsage
	}
	if len(pos) == 1 {
		o.arg = pos[0]
	}
	if v.sentinelOnly {
		if err := sentinelOnly(name, o.config); err != nil {
			return exitCode(err, stderr)
		}
	}
	if v.takesConfig() { // a command that talks to redis: no go-redis chatter on stderr
		sentinel.QuietClientLogs()
	}
	if name == "run" {
		level := new(slog.LevelVar) // log.level, once the configuration is read
		h, journaled := logHandler(stderr, level)
		err := run(ctx, o.config, config.DefaultEnv(), slog.New(h), level)
		if errors.Is(err, errModeSwitch) {
			// The same binary, arguments and environment (NOTIFY_SOCKET
			// too): systemd keeps the same main process, in its reload.
			err = syscall.Exec("/proc/self/exe", os.Args, os.Environ())
			err = fmt.Errorf("start again in the new cluster.mode: %w", err)
		}
		if journaled {
			stderr = journallog.Errors(stderr) // why it stopped, at priority err
		}
		return exitCode(err, stderr)
	}
	return exitCode(v.run(ctx, o, stdout), stderr)
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

// sentinelOnly refuses the commands that speak to Sentinel in cluster mode.
// A configuration that does not load is left for the command to report.
func sentinelOnly(cmd, path string) error {
	cfg, err := config.Load(path, config.DefaultEnv())
	if err != nil || !cfg.ClusterMode() {
		return nil
	}
	return fmt.Errorf("%s: not available in cluster mode (cluster.mode = %q)", cmd, cfg.Cluster.Mode)
}
