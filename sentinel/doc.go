// Package sentinel owns the Redis and Sentinel semantics of the agent: it
// renders redis.conf and sentinel.conf, reads back the state Sentinel rewrites
// into its file, probes a server's role, asks sentinels where the master is,
// drives failovers and reads Sentinel's event stream.
//
// It speaks to servers only over the network. It must not start or signal
// processes, read /proc, read the environment or write files (callers write
// rendered configs atomically), and it must not import supervisor, sysctl or
// agent: the agent wires this package to the processes it supervises.
package sentinel
