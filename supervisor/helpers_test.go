package supervisor

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// within bounds every wait in these tests; it only matters when something is broken.
const within = 10 * time.Second

func sh(script string) Spec {
	return Spec{Name: "t", Path: "/bin/sh", Args: []string{"-c", script}, StopGrace: 2 * time.Second}
}

// logBuffer collects JSON log records from goroutines the test does not own.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// records returns the logged records as maps.
func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b.buf.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// hasMsg reports whether a record with this message was logged.
func (b *logBuffer) hasMsg(t *testing.T, msg string) bool {
	for _, r := range b.records(t) {
		if r["msg"] == msg {
			return true
		}
	}
	return false
}

// recv waits for a value from ch, failing the test after within.
func recv[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(within):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// waitDone waits for p to be reaped.
func waitDone(t *testing.T, p *Process) {
	t.Helper()
	recv(t, "process exit", p.Done())
}
