package supervisor

import (
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// TestBoundaries keeps supervisor generic: it knows nothing of redis, and
// only agent wires it to sentinel.
func TestBoundaries(t *testing.T) {
	testutil.OnlyDeps(t)
	testutil.ForbidDeps(t, map[string]string{
		"github.com/redis/go-redis/": "supervisor knows nothing of redis",
	})
}
