package wire

import (
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// TestBoundaries keeps wire pure: the decisions use its types, so it must
// not bring the network, the file system or a clock's sleep with it.
func TestBoundaries(t *testing.T) {
	testutil.OnlyDeps(t)
	testutil.ForbidDeps(t, map[string]string{"net": "wire is pure", "github.com/redis/go-redis/": "wire is pure"})
	testutil.ForbidImports(t, "os", "io/fs", "syscall", "time")
}
