package wire

// SentinelState is what one sentinel says of the group's election state:
// enough to tell an election nobody won from one that is still running.
type SentinelState struct {
	MyID       string      // the sentinel's run id
	Master     Addr        // the master it monitors
	ODown      bool        // it holds the master objectively down
	InProgress bool        // it runs a failover
	Peers      []PeerState // the other sentinels it knows
	// Replicas are the replicas it knows (Sentinel.Known only).
	Replicas []PeerState
}

// PeerState is another sentinel, or a replica, as one sentinel sees it.
type PeerState struct {
	// Addr is the address it lists. Port 0: Sentinel saw another sentinel
	// announce this address and no longer trusts it (+sentinel-invalid-addr),
	// the mark a re-imaged box's old self leaves.
	Addr  Addr
	RunID string // a sentinel's run id
	Down  bool   // subjectively down or disconnected
}
