package sysctl

import (
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// TestBoundaries: kernel settings stand alone.
func TestBoundaries(t *testing.T) {
	testutil.OnlyDeps(t)
}
