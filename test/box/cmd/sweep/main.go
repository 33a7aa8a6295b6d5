// Command sweep removes whatever a killed box-bench run left on this host
// (boxes, overlays, namespaces, cgroups, work directories) and says what it
// removed. `make e2e` runs it after the tests: a `go test -timeout` kill
// skips the tests' own cleanup.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
)

func main() {
	left, err := box.SweepAll(2 * time.Minute)
	for _, l := range left {
		fmt.Println("sweep: removed", l)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
