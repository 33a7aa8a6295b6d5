package ha

import "fmt"

// DrainView is what Drain weighs: the group as it is now, seen from the
// box to drain.
type DrainView struct {
	Peers      int  // boxes in the group
	SelfMaster bool // this box is the master a quorum of sentinels names
	// Promotable counts the other boxes' replicas, up and linked to the
	// master, that Sentinel may promote (replica-priority above 0: not
	// drained, not configured never to be promoted).
	Promotable int
	// OtherSentinels counts the sentinels that answered, this box's left
	// out: a drained box is one about to be taken down.
	OtherSentinels int
	Quorum         int // cluster.quorum
}

// Drain says whether this box may be drained, and if not, why. A drained
// box never becomes master again until undrained, so the group must keep
// a replica to fail over to once this box has handed its role on (a master
// hands it to one of the promotable replicas, which leaves one fewer), and
// the sentinels left without this box's must still be a majority that
// reaches the quorum, so that they can authorize that failover.
func Drain(v DrainView) error {
	if v.Peers < 2 {
		return fmt.Errorf("single-box mode: there is no other box to hand the master role to")
	}
	left := v.Promotable
	if v.SelfMaster {
		left-- // one of them becomes the master
	}
	switch {
	case v.SelfMaster && v.Promotable == 0:
		return fmt.Errorf("no promotable replica to hand the master role to")
	case left < 1:
		return fmt.Errorf("the group would keep %d promotable replicas: it needs at least 1 to fail over to (drained boxes and node.priority 0 do not count)", left)
	}
	need := max(v.Quorum, v.Peers/2+1)
	if v.OtherSentinels < need {
		return fmt.Errorf("without this box's sentinel, %d sentinels answer: a failover needs %d (a majority of %d and the quorum %d)",
			v.OtherSentinels, need, v.Peers, v.Quorum)
	}
	return nil
}
