// Package sentinel owns the Redis and Sentinel semantics of the agent: it
// renders redis.conf and sentinel.conf, reads back the state Sentinel
// rewrites into its file, and speaks to the servers, both ways: it reads
// (roles, where the sentinels say the master is, their event stream) and
// writes (the fence, REPLICAOF, paused writes, held priorities, failovers,
// runtime settings). The agent reaches Redis only through it.
//
// It speaks to servers only over the network. It must not start or signal
// processes, read /proc, read the environment or write files (callers write
// rendered configs atomically), and it must not import supervisor, sysctl or
// agent: the agent wires this package to the processes it supervises.
package sentinel
