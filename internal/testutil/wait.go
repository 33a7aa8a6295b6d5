package testutil

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// pollEvery is how often WaitFor tries again: quick enough for unit tests,
// slow enough not to load a box running real servers.
const pollEvery = 50 * time.Millisecond

// WaitFor polls cond until it returns nil, failing the test after timeout
// with the last error.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(pollEvery)
	}
}

// errNotYet is what WaitUntil reports for a condition that does not say why.
var errNotYet = errors.New("not yet")

// WaitUntil is WaitFor for a yes/no condition.
func WaitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	WaitFor(t, timeout, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

// Tail is the last n lines of s (a log, for a failure message).
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
