package ha

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Cluster mode (cluster.mode = "cluster"): the decisions that create a
// Redis Cluster over the boxes and keep it as planned. Redis Cluster itself
// detects failures, elects replicas and moves clients (MOVED); the agents
// decide what it cannot: where each instance belongs (Plan), when the
// cluster may be created (Create), whether a crashed master may come back
// (ClusterGate), which replica follows which master, which nodes are ghosts
// to forget, and when a returning master takes its shard back (Failback).

// Plan is the layout of a cluster: shard i's master on box i (port
// redis.port), its replica r on box i+r (port redis.port+r), so that no
// master shares a box with its replicas and every box runs one master.
type Plan struct {
	Boxes    []wire.Addr // cluster.peers, in order: box i's first instance
	Replicas int         // cluster.replicas
}

// Place is where an instance belongs: the shard, and 0 for its master or
// r for its r-th replica.
type Place struct {
	Shard, Replica int
}

// Shards is the number of shards: one per box.
func (p Plan) Shards() int { return len(p.Boxes) }

// Instance is the address of box's instance j (its port + j).
func (p Plan) Instance(box, j int) wire.Addr {
	b := p.Boxes[box]
	return wire.Addr{Host: b.Host, Port: b.Port + j}
}

// All lists every instance, box by box.
func (p Plan) All() []wire.Addr {
	var out []wire.Addr
	for b := range p.Boxes {
		for j := 0; j <= p.Replicas; j++ {
			out = append(out, p.Instance(b, j))
		}
	}
	return out
}

// Locate finds the box and instance number of a; false when a is not one
// of the plan's instances.
func (p Plan) Locate(a wire.Addr) (box, j int, ok bool) {
	for b := range p.Boxes {
		for j := 0; j <= p.Replicas; j++ {
			if p.Instance(b, j) == a {
				return b, j, true
			}
		}
	}
	return 0, 0, false
}

// PlaceOf is where box's instance j belongs: instance j of box b is the
// j-th replica of shard b-j.
func (p Plan) PlaceOf(box, j int) Place {
	n := len(p.Boxes)
	return Place{Shard: ((box-j)%n + n) % n, Replica: j}
}

// Member is the instance holding place pl.
func (p Plan) Member(pl Place) wire.Addr {
	return p.Instance((pl.Shard+pl.Replica)%len(p.Boxes), pl.Replica)
}

// Range is shard i's slots: the 16384 split evenly, in order.
func (p Plan) Range(i int) wire.SlotRange {
	n := len(p.Boxes)
	return wire.SlotRange{From: i * wire.Slots / n, To: (i+1)*wire.Slots/n - 1}
}

// BoxOf is the box an instance address runs on, -1 when it is none of the
// plan's.
func (p Plan) BoxOf(a wire.Addr) int {
	b, _, ok := p.Locate(a)
	if !ok {
		return -1
	}
	return b
}

// InstanceView is what one instance said when asked: its keys and its
// CLUSTER NODES, or why it did not answer.
type InstanceView struct {
	Addr wire.Addr
	Err  error // did not answer
	Keys int64 // DBSIZE
	View wire.ClusterView
}

// ID is the node id the instance gave for itself; "" when unknown.
func (iv InstanceView) ID() string {
	if me, ok := iv.View.Myself(); ok {
		return me.ID
	}
	return ""
}

// Creation is one step of creating the cluster: what to send, or why
// nothing is sent.
type Creation struct {
	State     CreateState
	Why       string
	Epochs    []SetEpoch
	Meets     []Meet
	AddSlots  []AddSlots
	Replicate []Replicate
}

// CreateState says where creation stands.
type CreateState int

const (
	CreateWait   CreateState = iota // not every instance is ready, or gossip has not spread yet
	CreateAct                       // send the commands listed
	CreateDone                      // every slot is served: the cluster exists
	CreateRefuse                    // an instance holds data or belongs elsewhere: never create over it
)

// SetEpoch gives a new master its config epoch before it meets anyone
// (CLUSTER SET-CONFIG-EPOCH): distinct epochs from the start, as
// redis-cli --cluster create gives them, instead of collisions resolved
// one at a time.
type SetEpoch struct {
	Addr  wire.Addr
	Epoch int64
}

// Meet is CLUSTER MEET sent to From, naming To.
type Meet struct{ From, To wire.Addr }

// AddSlots is CLUSTER ADDSLOTSRANGE sent to Addr.
type AddSlots struct {
	Addr   wire.Addr
	Ranges []wire.SlotRange
}

// Replicate is CLUSTER REPLICATE MasterID sent to Addr.
type Replicate struct {
	Addr     wire.Addr
	MasterID string
}

// Create decides the next step of creating the cluster from every
// instance's answer, on the box that creates it (cluster.bootstrap_primary;
// anchor is its first instance, which meets the others). Every step is
// read off what the instances say now, so an agent that dies half-way
// is followed by one that goes on where it stopped. It refuses whenever an
// instance holds keys, knows a node that is none of the plan's, or serves
// slots the plan gives to another: a cluster is never created over data.
func Create(p Plan, anchor wire.Addr, views []InstanceView) Creation {
	ids := map[string]wire.Addr{}
	byAddr := map[wire.Addr]InstanceView{}
	for _, iv := range views {
		if iv.Err != nil {
			return Creation{State: CreateWait, Why: fmt.Sprintf("waiting for %s: %v", iv.Addr, iv.Err)}
		}
		id := iv.ID()
		if id == "" {
			return Creation{State: CreateWait, Why: fmt.Sprintf("waiting for %s: no node id yet", iv.Addr)}
		}
		ids[id] = iv.Addr
		byAddr[iv.Addr] = iv
	}
	for _, iv := range views {
		if iv.View.Covered() == wire.Slots {
			return Creation{State: CreateDone, Why: "every slot is served"}
		}
	}
	// Never over data: keys, another cluster's nodes, slots against the plan.
	for _, iv := range views {
		if iv.Keys > 0 {
			return Creation{State: CreateRefuse, Why: fmt.Sprintf("%s holds %d keys: a cluster is only created over empty instances "+
				"(empty it, or move its data into the cluster once it exists)", iv.Addr, iv.Keys)}
		}
		for _, n := range iv.View {
			if n.Has("handshake") {
				continue
			}
			if _, ours := ids[n.ID]; !ours {
				return Creation{State: CreateRefuse, Why: fmt.Sprintf("%s knows node %s (%s), none of the configured instances: "+
					"it belongs to another cluster (its nodes.conf)", iv.Addr, short(n.ID), n.Addr)}
			}
			for _, r := range n.Slots {
				b, j, _ := p.Locate(ids[n.ID])
				if pr := p.Range(b); j != 0 || r.From < pr.From || r.To > pr.To {
					return Creation{State: CreateRefuse, Why: fmt.Sprintf("%s says %s serves slots %s, which the plan gives to %s",
						iv.Addr, ids[n.ID], r, p.Member(Place{Shard: p.ShardOfSlot(r.From)}))}
				}
			}
		}
	}
	var c Creation
	for i := range p.Shards() {
		m := p.Member(Place{Shard: i})
		me, _ := byAddr[m].View.Myself()
		if len(byAddr[m].View) == 1 && me.ConfigEpoch == 0 {
			c.Epochs = append(c.Epochs, SetEpoch{Addr: m, Epoch: int64(i + 1)})
		}
	}
	if len(c.Epochs) > 0 {
		// Only a node that knows nobody takes an epoch: first of all.
		c.State, c.Why = CreateAct, "config epochs"
		return c
	}
	known := byAddr[anchor].View
	for _, a := range p.All() {
		if _, ok := known.ByID(byAddr[a].ID()); !ok {
			c.Meets = append(c.Meets, Meet{From: anchor, To: a})
		}
	}
	for i := range p.Shards() {
		m := p.Member(Place{Shard: i})
		me, _ := byAddr[m].View.Myself()
		if missing := subtract(p.Range(i), me.Slots); len(missing) > 0 {
			c.AddSlots = append(c.AddSlots, AddSlots{Addr: m, Ranges: missing})
		}
		for r := 1; r <= p.Replicas; r++ {
			a := p.Member(Place{Shard: i, Replica: r})
			mid := byAddr[m].ID()
			me, _ := byAddr[a].View.Myself()
			if _, knows := byAddr[a].View.ByID(mid); knows && me.MasterID != mid {
				c.Replicate = append(c.Replicate, Replicate{Addr: a, MasterID: mid})
			}
		}
	}
	if len(c.Meets)+len(c.AddSlots)+len(c.Replicate) == 0 {
		return Creation{State: CreateWait, Why: "waiting for the nodes to learn of each other"}
	}
	c.State, c.Why = CreateAct, "meet, assign slots, replicate"
	return c
}

// ShardOfSlot is the shard whose range holds slot s.
func (p Plan) ShardOfSlot(s int) int {
	for i := range p.Shards() {
		if r := p.Range(i); s >= r.From && s <= r.To {
			return i
		}
	}
	return 0
}

// subtract lists the parts of want not covered by have, in order.
func subtract(want wire.SlotRange, have []wire.SlotRange) []wire.SlotRange {
	hs := slices.Clone(have)
	slices.SortFunc(hs, func(a, b wire.SlotRange) int { return a.From - b.From })
	var out []wire.SlotRange
	next := want.From
	for _, h := range hs {
		if h.To < next || h.From > want.To {
			continue
		}
		if h.From > next {
			out = append(out, wire.SlotRange{From: next, To: h.From - 1})
		}
		next = max(next, h.To+1)
	}
	if next <= want.To {
		out = append(out, wire.SlotRange{From: next, To: want.To})
	}
	return out
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// ClusterGate is the restart gate of one instance. A master whose redis
// crashed (or whose box lost power) must not serve its shard again while
// its replica could take over: the replica may hold writes the master
// never persisted, and a master back within cluster-node-timeout would make
// it resync to the older data. So it stays down while a replica of it and
// a majority of the masters answer, and the agent asks that replica for
// CLUSTER FAILOVER FORCE (the master is certainly dead: it is this box's,
// held down); once another node serves its slots it starts, and rejoins as
// that node's replica (the higher config epoch wins). When nothing could
// replace it — no replica, no majority, nobody answering — it starts as it
// was: holding it would leave its slots unserved for good.
type GateInput struct {
	Crashed bool
	Me      wire.Node      // myself, from its nodes.conf
	HaveMe  bool           // nodes.conf was read and names myself
	Peers   []InstanceView // every other instance of the plan, asked now
}

// GateVerdict is what the gate decides for one instance.
type GateVerdict struct {
	Hold       bool
	FailoverTo wire.Addr // with Hold: the replica to ask for CLUSTER FAILOVER FORCE; zero when none yet
	Why        string
}

// ClusterGate decides whether the instance may start.
func ClusterGate(in GateInput) GateVerdict {
	switch {
	case !in.Crashed:
		return GateVerdict{Why: "not after a crash"}
	case !in.HaveMe || !in.Me.IsMaster() || len(in.Me.Slots) == 0:
		return GateVerdict{Why: "after a crash, as a replica (it serves no slots)"}
	}
	slot := in.Me.Slots[0].From
	reached := map[string]wire.Addr{}
	var views []wire.ClusterView
	for _, iv := range in.Peers {
		if iv.Err == nil && iv.ID() != "" {
			reached[iv.ID()] = iv.Addr
			views = append(views, iv.View)
		}
	}
	if len(views) == 0 {
		return GateVerdict{Why: "after a crash as master, but no other instance answers: nothing could take its slots over"}
	}
	for _, v := range views {
		if o, ok := v.Owner(slot); ok && o.ID != in.Me.ID {
			return GateVerdict{Why: fmt.Sprintf("after a crash as master: %s serves its slots now; it rejoins as its replica", o.Addr)}
		}
	}
	v := views[0]
	masters := v.Masters()
	voters := 0
	for _, m := range masters {
		if _, ok := reached[m.ID]; ok && m.ID != in.Me.ID {
			voters++
		}
	}
	need := len(masters)/2 + 1
	var to wire.Addr
	for _, r := range v.ReplicasOf(in.Me.ID) {
		if a, ok := reached[r.ID]; ok {
			to = a
			break
		}
	}
	switch {
	case to.IsZero():
		return GateVerdict{Why: "after a crash as master, with no replica of it answering: it starts as master"}
	case voters < need:
		return GateVerdict{Why: fmt.Sprintf("after a crash as master, with %d of the %d masters needed to elect its replica answering: it starts as master", voters, need)}
	}
	return GateVerdict{Hold: true, FailoverTo: to,
		Why: fmt.Sprintf("crashed as master: held down until its replica %s takes its slots over", to)}
}

// ClusterFollow is which master an instance of the plan should replicate: the
// node serving its shard's first slot, per the instance's own view. It
// returns that node's id when the instance is a master without slots (new,
// or re-imaged) or replicates another node, and "" when it is where it
// belongs, serves slots itself, or nobody it could follow serves the shard.
func ClusterFollow(view wire.ClusterView, shard wire.SlotRange) (string, wire.Addr) {
	me, ok := view.Myself()
	if !ok {
		return "", wire.Addr{}
	}
	o, ok := view.Owner(shard.From)
	if !ok || o.ID == me.ID || o.Failing() || (me.IsMaster() && len(me.Slots) > 0) {
		return "", wire.Addr{}
	}
	if me.MasterID == o.ID {
		return "", wire.Addr{}
	}
	return o.ID, o.Addr
}

// Ghosts are the nodes an instance's view still lists that no configured
// instance is anymore: a removed box's, or the old ids of a box re-imaged at
// the same address. live maps each configured instance that answered to
// the id it gave. A node is a ghost only on evidence: flagged failing or
// without an address, serving no slot, and either at an address no
// instance is configured at or at one whose instance answers with another
// id. An instance that is merely down keeps its node.
func Ghosts(view wire.ClusterView, configured []wire.Addr, live map[wire.Addr]string) []wire.Node {
	liveIDs := map[string]bool{}
	for _, id := range live {
		liveIDs[id] = true
	}
	var out []wire.Node
	for _, n := range view {
		if n.Has("myself") || n.Has("handshake") || len(n.Slots) > 0 || liveIDs[n.ID] || !(n.Failing() || n.Has("noaddr")) {
			continue
		}
		id, answered := live[n.Addr]
		if !slices.Contains(configured, n.Addr) || (answered && id != n.ID) {
			out = append(out, n)
		}
	}
	return out
}

// Remeet lists the configured instances a view knows at another address
// than the one they answer at now, or at none: an instance whose address
// changed, met again at the new one (the old entry is then updated).
func Remeet(view wire.ClusterView, live map[wire.Addr]string) []wire.Addr {
	var out []wire.Addr
	for a, id := range live {
		n, ok := view.ByID(id)
		if !ok || n.Has("myself") {
			continue
		}
		if n.Addr != a || n.Has("noaddr") {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(x, y wire.Addr) int { return strings.Compare(x.String(), y.String()) })
	return out
}

// Failback returns a shard to its planned master once that master is back
// as a replica and caught up: CLUSTER FAILOVER on it, the zero-loss manual
// failover (the master pauses writes, the replica catches up, an election
// runs), never FORCE or TAKEOVER. One planned master per box means one
// failback per box at a time. Want is set by the agent when the planned
// master came back after a fault, not after a switchover the operator
// asked for.
type Failback struct {
	Want   bool
	Settle time.Duration // caught up at least this long before asking
	Retry  time.Duration // between two attempts (an election refused, a timeout)

	since   time.Time
	lastTry time.Time
}

// FailbackInput is what the planned master's agent sees of it.
type FailbackInput struct {
	Replica   bool  // the instance is a replica
	LinkUp    bool  // its link to its master is up
	Lag       int64 // bytes behind its master; -1 unknown
	MasterOK  bool  // its master answers and serves the shard
	ClusterOK bool  // cluster_state:ok in its view
}

// maxFailbackLag bounds how far behind a replica may be when failback asks
// it to take over: the manual failover waits until it has caught up while
// writes are paused, so the lag is the pause.
const maxFailbackLag = 1 << 20

// Step says whether to ask for the failback now.
func (f *Failback) Step(now time.Time, in FailbackInput) bool {
	if !f.Want || !in.Replica || !in.LinkUp || in.Lag < 0 || in.Lag > maxFailbackLag || !in.MasterOK || !in.ClusterOK {
		f.since = time.Time{}
		return false
	}
	if f.since.IsZero() {
		f.since = now
	}
	if now.Sub(f.since) < f.Settle || (!f.lastTry.IsZero() && now.Sub(f.lastTry) < f.Retry) {
		return false
	}
	f.lastTry = now
	return true
}

// Layout says how a cluster stands against its plan: the problems that
// make it unhealthy (slots nobody serves, a shard without a replica on
// another box, a failing node that serves slots) and the notes that do not
// (a box serving two shards: a single point of failure until failback).
//
// linked lists the replicas (by id) whose replication link is up, as they
// say themselves; nil takes the view's bus links instead.
func Layout(p Plan, view wire.ClusterView, linked map[string]bool) (problems, notes []string) {
	if c := view.Covered(); c < wire.Slots {
		problems = append(problems, fmt.Sprintf("%d of %d slots served", c, wire.Slots))
	}
	perBox := map[int][]string{}
	for _, m := range view.Masters() {
		if m.Failing() {
			problems = append(problems, fmt.Sprintf("master %s (slots %s) is failing", m.Addr, rangesString(m.Slots)))
			continue
		}
		mb := p.BoxOf(m.Addr)
		perBox[mb] = append(perBox[mb], rangesString(m.Slots))
		away := 0
		for _, r := range view.ReplicasOf(m.ID) {
			up := r.Connected
			if linked != nil {
				up = linked[r.ID]
			}
			if !r.Failing() && up && p.BoxOf(r.Addr) != mb {
				away++
			}
		}
		if away == 0 {
			problems = append(problems, fmt.Sprintf("shard %s (master %s) has no replica on another box", rangesString(m.Slots), m.Addr))
		}
	}
	for b := range p.Boxes {
		if len(perBox[b]) > 1 {
			notes = append(notes, fmt.Sprintf("box %s serves %d shards (%s): losing it loses them all until failback",
				p.Boxes[b], len(perBox[b]), strings.Join(perBox[b], ", ")))
		}
	}
	return problems, notes
}

func rangesString(rs []wire.SlotRange) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, ",")
}
