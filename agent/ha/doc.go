// Package ha holds the decisions that keep the data safe, apart from the
// effects that carry them out: which box is master and whether a crashed
// redis may start again (gate.go), when a master fences itself and when it
// may lift the fence (fence.go), when this box takes or lets go of the
// virtual IP (vip.go), when a replica is re-pointed at the master the
// sentinels name (follow.go), what this box vouches for (view.go), how
// the sentinels' answers are counted (votes.go), and when the master's agent
// makes a sentinel forget a box removed from cluster.peers (forget.go).
//
// Every decision is a pure function or a small state machine stepped with
// the time passed in: no sockets, no files, no clock of its own, so that
// table tests drive them through their timings in microseconds. The agent
// observes, calls a step, and acts on what it returns.
//
// # How a decision is made
//
// The agent runs one loop on one ticker. A tick is a round: every
// fence_after/2 (250 ms by default) while this box is master, fenced or
// keeps a virtual IP, once a second otherwise. In a round the agent
//
//  1. observes, once a second or at once after a sentinel event: ROLE of
//     its redis, what its sentinel names, how many sentinels that one
//     counts as usable. The result is a Snapshot; with the latest quorum
//     round it is the View that /primary, /replica, /status and STATUS=
//     answer from.
//  2. asks every sentinel where the master is (sentinel.Prober: the
//     question goes out now, the answers are read at the next round, one
//     wake-up a round). Reachable and Agreed count the answers into a
//     Quorum: how many sentinels answered, and the master a quorum names.
//  3. steps the Fence with the time, whether this box is master and
//     fenced, and the round's count. A master that has not heard from a
//     majority for fence_after (less half a round of timer slack) gets
//     FenceUp, and the agent raises min-replicas-to-write above the number
//     of replicas: writes fail at once. A fenced master that hears from a
//     majority again gets FenceDown: the agent asks the sentinels who the
//     master is and lifts the fence as master, or after demoting itself to
//     the one they elected.
//  4. steps Follow: a replica that keeps following another server than the
//     master a quorum names, for a second (Sentinel's own chance), is
//     re-pointed.
//  5. steps the VIP with whether the View says primary (and the local
//     redis confirms it with one ROLE), whether the address is on the
//     interface, and whether the box was just demoted. A demoted or fenced
//     master lets go at once; a new primary takes the address only after
//     two rounds, by which the old one has let go. One round without a
//     quorum answer does not bounce it.
//
// Beside the rounds, every membersEvery on the master, the agent asks every
// sentinel what it remembers of the group (SENTINEL SENTINELS, REPLICAS) and
// steps Forget with it: a sentinel that remembers a box no longer in
// cluster.peers is reset (SENTINEL RESET), one at a time, while a quorum
// names this box, no failover runs, and the sentinels reset before have
// learnt the group again.
//
// Before any of this, the restart gate decides how redis starts (Gate and
// ChooseMaster): as the replica of the master the sentinels name; as master
// only when they name this box and its last redis did not crash, or on a
// single box. A master that crashed stays down until the sentinels elect
// another, and the agent asks for that failover at once instead of waiting
// for down_after.
package ha
