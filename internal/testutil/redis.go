package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// RequireRedis skips an integration test in -short mode or where
// redis-server is not installed.
func RequireRedis(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs real redis-server (run without -short)")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed (make deps installs it)")
	}
}

// RequireRoot skips a test that needs root, saying why.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
}
