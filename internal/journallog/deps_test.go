package journallog

import (
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// TestBoundaries: an internal helper is a leaf, with no project imports.
func TestBoundaries(t *testing.T) {
	testutil.OnlyDeps(t)
}
