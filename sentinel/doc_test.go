package sentinel

import (
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// TestBoundaries keeps the package doc comment true: no processes, no /proc,
// no environment, no file written, no imports of the packages the agent
// wires this one to, directly or through another package.
func TestBoundaries(t *testing.T) {
	testutil.OnlyDeps(t, testutil.Module+"/internal/nbio", testutil.Module+"/internal/safefile", testutil.Module+"/sentinel/wire")
	testutil.ForbidDeps(t, map[string]string{
		"os/exec": "sentinel starts no process", testutil.Module + "/supervisor": "only agent wires the two",
	})
	testutil.ForbidImports(t, "syscall", "golang.org/x/sys/unix")
	testutil.ForbidCalls(t, map[string][]string{
		"os": {"Getenv", "LookupEnv", "Environ", "StartProcess", "WriteFile", "Create", "OpenFile"},
	}, "/proc")
}
