package sentinel

import (
	"log/slog"
	"testing"
)

func TestParseLogLine(t *testing.T) {
	tests := []struct {
		line  string
		level slog.Level
		msg   string
	}{
		{"4603:M 01 Dec 2026 12:03:51.584 * Ready to accept connections", slog.LevelInfo, "Ready to accept connections"},
		{"4603:M 01 Dec 2026 12:03:51.584 * Ready to accept connections tcp", slog.LevelInfo, "Ready to accept connections tcp"},
		{"117:M 1 Dec 2026 02:03:04.005 # WARNING Memory overcommit must be enabled!", slog.LevelWarn, "WARNING Memory overcommit must be enabled!"},
		{"88:S 01 Dec 2026 12:03:51.584 # Error condition on socket for SYNC: Connection refused", slog.LevelWarn, "Error condition on socket for SYNC: Connection refused"},
		{"4603:M 01 Dec 2026 12:03:51.584 - Accepted 127.0.0.1:5000", slog.LevelDebug, "Accepted 127.0.0.1:5000"},
		{"4603:M 01 Dec 2026 12:03:51.584 . DB 0: 1 keys", slog.LevelDebug, "DB 0: 1 keys"},
		// Sentinel's events.
		{"9:X 01 Dec 2026 12:03:51.584 # +sdown master main 10.0.0.11 6379", slog.LevelWarn, "+sdown master main 10.0.0.11 6379"},
		{"9:X 01 Dec 2026 12:03:51.584 * +slave slave 10.0.0.12:6379 10.0.0.12 6379 @ main 10.0.0.11 6379", slog.LevelInfo,
			"+slave slave 10.0.0.12:6379 10.0.0.12 6379 @ main 10.0.0.11 6379"},
		// Valkey, in its default log format.
		{"12:M 01 Dec 2026 12:03:51.584 # Can't handle RDB format version 12", slog.LevelWarn, "Can't handle RDB format version 12"},
		// Routine lines redis 7.0 logs as warnings.
		{"4603:C 01 Dec 2026 12:03:51.582 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo", slog.LevelInfo, "oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo"},
		{"4603:C 01 Dec 2026 12:03:51.582 # Configuration loaded", slog.LevelInfo, "Configuration loaded"},
		{"4603:M 01 Dec 2026 12:03:53.590 # User requested shutdown...", slog.LevelInfo, "User requested shutdown..."},
		{"9:X 01 Dec 2026 12:03:51.584 # +monitor master main 10.0.0.11 6379 quorum 2", slog.LevelInfo, "+monitor master main 10.0.0.11 6379 quorum 2"},
		{"4603:signal-handler (1796126633) Received SIGTERM scheduling shutdown...", slog.LevelInfo, "Received SIGTERM scheduling shutdown..."},
		// Raw output: a fatal configuration error.
		{"*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***", slog.LevelWarn, "*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***"},
		{">>> 'prot 6380'", slog.LevelWarn, ">>> 'prot 6380'"},
		{"4603:M 01 Dec 2026 12:03:51.584 ? odd", slog.LevelWarn, "4603:M 01 Dec 2026 12:03:51.584 ? odd"},
	}
	for _, tt := range tests {
		level, msg := ParseLogLine(tt.line)
		if level != tt.level || msg != tt.msg {
			t.Errorf("ParseLogLine(%q) = %v %q, want %v %q", tt.line, level, msg, tt.level, tt.msg)
		}
	}
}
