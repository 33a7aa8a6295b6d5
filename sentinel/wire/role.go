package wire

import "errors"

// Role is a server's answer to ROLE.
type Role struct {
	Kind     string    // "master" | "slave" | "sentinel" (as ROLE says)
	Offset   int64     // master_repl_offset (master) / processed offset (replica; -1 before the first sync)
	Master   Addr      // replica: its master
	Link     string    // replica: "connect" | "connecting" | "sync" | "connected" | "handshake"
	Replicas []Replica // master: connected replicas
}

// Replica is one replica as its master reports it.
type Replica struct {
	Addr   Addr
	Offset int64
}

// Link is one replica's link as its master reports it (INFO replication).
type Link struct {
	Addr Addr
	// Lag is how many seconds since the replica last acknowledged
	// (REPLCONF ACK, every second). A replica gone without a word (its box
	// powered off) stays listed until repl-timeout, its lag growing.
	Lag int
}

// ErrNoMaster means a sentinel does not monitor the named group.
var ErrNoMaster = errors.New("sentinel knows no master")

// Answer is one sentinel's view of where the master is.
type Answer struct {
	Sentinel Addr
	Master   Addr
	Err      error
}

// Reachable says the sentinel answered, whether or not it knows a master.
func (a Answer) Reachable() bool { return a.Err == nil || errors.Is(a.Err, ErrNoMaster) }
