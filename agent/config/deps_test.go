package config

import (
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// TestBoundaries: configuration is read and checked, never acted on.
func TestBoundaries(t *testing.T) {
	testutil.ForbidDeps(t, map[string]string{
		testutil.Module + "/supervisor":   "config starts nothing",
		testutil.Module + "/sysctl":       "config changes nothing",
		testutil.Module + "/internal/vip": "config changes nothing",
		testutil.Module + "/agent":        "agent uses config, not the other way round",
		"os/exec":                         "config starts nothing",
	})
}
