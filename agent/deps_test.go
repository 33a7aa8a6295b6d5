package agent

import (
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// TestBoundaries: agent wires the packages together and reaches Redis only
// through sentinel, so it imports no Redis client itself; and no product
// code links the test helpers.
func TestBoundaries(t *testing.T) {
	// Speak to Redis through sentinel.
	testutil.ForbidImports(t, "github.com/redis/go-redis/v9", "github.com/redis/go-redis/v9/logging")
	testutil.ForbidDeps(t, map[string]string{testutil.Module + "/internal/testutil": "test helpers stay in tests"})
}
