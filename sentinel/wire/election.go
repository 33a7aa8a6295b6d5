package wire

// SentinelState is what one sentinel says of the group's election state:
// enough to tell an election nobody won from one that is still running.
type SentinelState struct {
	MyID       string      // the sentinel's run id
	Master     Addr        // the master it monitors
	ODown      bool        // it holds the master objectively down
	InProgress bool        // it runs a failover
	Peers      []PeerState // the other sentinels it knows
}

// PeerState is another sentinel as one sentinel sees it.
type PeerState struct {
	RunID string
	Down  bool // subjectively down or disconnected
}
