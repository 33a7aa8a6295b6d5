// Package bench is `make bench`: the numbers behind PRODUCT.md's guarantees
// and the agent's footprint goals, each measured next to its baseline in the
// same run on the same box bench (test/box).
//
// The baseline is the tutorial setup of BENCH-FACTS.md: Debian's own
// redis-server and redis-sentinel units on three boxes, redis.conf edited by
// hand, a hand-written sentinel.conf with down-after 5000 ms (testdata/tutorial
// holds both, exactly as the bench applies them). The fault checker
// (test/faultcheck) measures both setups through the same faults from the
// bench's client namespace.
//
// TestBench runs only with RHA_BENCH=1 (make bench sets it, with RHA_DEB, the
// package under test). It prints a Markdown report on stdout and writes it to
// out/report.md. It reports; it asserts no timing: a number over its goal is
// a row that says so, not a failure. It fails only when it could not measure.
//
// The non-test code is what unit tests cover without boxes: the report and
// its Markdown (report.go) and the readers of /proc, /metrics, redis' log
// and ELF headers (proc.go).
package bench
