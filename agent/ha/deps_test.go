package ha

import (
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// TestBoundaries keeps ha pure: no network, files, processes or clients,
// and no clock of its own (time's types are fine; reading the time or
// sleeping is not: now is passed in).
func TestBoundaries(t *testing.T) {
	testutil.OnlyDeps(t, testutil.Module+"/sentinel/wire")
	testutil.ForbidDeps(t, map[string]string{
		"net": "ha does no I/O", "os/exec": "ha does no I/O", "github.com/redis/go-redis/": "ha does no I/O",
	})
	testutil.ForbidImports(t, "os", "io/fs", "syscall", "log", "log/slog")
	testutil.ForbidCalls(t, map[string][]string{
		"time": {"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker"},
	})
}
