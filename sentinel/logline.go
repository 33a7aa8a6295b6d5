package sentinel

import (
	"log/slog"
	"regexp"
	"strings"
)

// logLine is a line of redis' (and Valkey's, in its default "legacy" format)
// own log: "pid:role dd Mon yyyy hh:mm:ss.mmm <level> message", the level one
// of '.' debug, '-' verbose, '*' notice, '#' warning. Sentinel logs the same
// way (role X).
var logLine = regexp.MustCompile(`^\d+:[A-Z] \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d\.\d{3} ([.*#-]) (.*)$`)

// signalLine is what redis' signal handler logs, in a shape of its own:
// "pid:signal-handler (unixtime) Received SIGTERM scheduling shutdown...".
var signalLine = regexp.MustCompile(`^\d+:signal-handler \(\d+\) (.*)$`)

// routineWarnings are lines redis 7.0 logs as warnings at every start and
// stop (7.2 moved them to notice): at warning they would bury the real ones in
// `journalctl -p warning`.
var routineWarnings = []string{
	"oO0OoO0OoO0Oo ", "Redis version=", "Valkey version=", "Configuration loaded", "Server initialized",
	"User requested shutdown", "is now ready to exit, bye bye", "Sentinel new configuration saved",
	"Sentinel ID is ", "+monitor master ",
}

// ParseLogLine reads one line that redis-server or sentinel wrote to stdout
// (logfile ""): the level it carries, and the message without redis' own pid,
// role and timestamp, since the journal stamps the line already. A line in no
// known shape is the raw output redis writes when it cannot go on (a fatal
// configuration error, a crash report): a warning.
func ParseLogLine(line string) (slog.Level, string) {
	if m := logLine.FindStringSubmatch(line); m != nil {
		switch m[1] {
		case "#":
			for _, r := range routineWarnings {
				if strings.Contains(m[2], r) {
					return slog.LevelInfo, m[2]
				}
			}
			return slog.LevelWarn, m[2]
		case "*":
			return slog.LevelInfo, m[2]
		default: // verbose, debug
			return slog.LevelDebug, m[2]
		}
	}
	if m := signalLine.FindStringSubmatch(line); m != nil {
		return slog.LevelInfo, m[1]
	}
	return slog.LevelWarn, line
}
