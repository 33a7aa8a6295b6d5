package wire

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// SlotRange is the hash slots From..To, both included.
type SlotRange struct{ From, To int }

func (r SlotRange) String() string {
	if r.From == r.To {
		return strconv.Itoa(r.From)
	}
	return strconv.Itoa(r.From) + "-" + strconv.Itoa(r.To)
}

// Len is how many slots r holds.
func (r SlotRange) Len() int { return r.To - r.From + 1 }

// Node is one line of CLUSTER NODES (and of a nodes.conf): a node as the
// node asked knows it.
type Node struct {
	ID          string
	Addr        Addr // zero when the node has no address (noaddr, or a handshake not yet answered)
	BusPort     int
	Flags       []string // myself, master, slave, fail?, fail, handshake, noaddr, nofailover
	MasterID    string   // a replica's master; "" for a master
	ConfigEpoch int64
	Connected   bool // link-state "connected"
	Slots       []SlotRange
}

// Has reports whether the node carries flag.
func (n Node) Has(flag string) bool { return slices.Contains(n.Flags, flag) }

// IsMaster says the node is flagged master.
func (n Node) IsMaster() bool { return n.Has("master") }

// Failing says the node is flagged failing, by this node alone (fail?) or
// by the cluster (fail).
func (n Node) Failing() bool { return n.Has("fail") || n.Has("fail?") }

// SlotCount is how many slots the node serves.
func (n Node) SlotCount() int {
	c := 0
	for _, r := range n.Slots {
		c += r.Len()
	}
	return c
}

// Owns reports whether the node serves slot.
func (n Node) Owns(slot int) bool {
	for _, r := range n.Slots {
		if slot >= r.From && slot <= r.To {
			return true
		}
	}
	return false
}

// ClusterView is every node one node knows, as its CLUSTER NODES lists them.
type ClusterView []Node

// Myself is the node that answered; false when the view has none (a
// nodes.conf that is empty or torn).
func (v ClusterView) Myself() (Node, bool) {
	for _, n := range v {
		if n.Has("myself") {
			return n, true
		}
	}
	return Node{}, false
}

// ByID finds a node.
func (v ClusterView) ByID(id string) (Node, bool) {
	for _, n := range v {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

// Owner is the master serving slot in this view.
func (v ClusterView) Owner(slot int) (Node, bool) {
	for _, n := range v {
		if n.IsMaster() && n.Owns(slot) {
			return n, true
		}
	}
	return Node{}, false
}

// ReplicasOf lists the replicas of the master id.
func (v ClusterView) ReplicasOf(id string) []Node {
	var out []Node
	for _, n := range v {
		if n.MasterID == id && n.Has("slave") {
			out = append(out, n)
		}
	}
	return out
}

// Masters lists the masters that serve slots: the voters of a failover.
func (v ClusterView) Masters() []Node {
	var out []Node
	for _, n := range v {
		if n.IsMaster() && len(n.Slots) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// Covered counts the slots some master serves.
func (v ClusterView) Covered() int {
	seen := make([]bool, Slots)
	c := 0
	for _, n := range v.Masters() {
		for _, r := range n.Slots {
			for s := max(r.From, 0); s <= min(r.To, Slots-1); s++ {
				if !seen[s] {
					seen[s] = true
					c++
				}
			}
		}
	}
	return c
}

// ParseNodes parses the output of CLUSTER NODES, or a nodes.conf (whose
// "vars" line it skips).
func ParseNodes(text string) (ClusterView, error) {
	var v ClusterView
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "vars ") {
			continue
		}
		n, err := parseNode(line)
		if err != nil {
			return nil, err
		}
		v = append(v, n)
	}
	return v, nil
}

func parseNode(line string) (Node, error) {
	f := strings.Fields(line)
	if len(f) < 8 {
		return Node{}, fmt.Errorf("cluster nodes: short line %q", line)
	}
	n := Node{ID: f[0], Flags: strings.Split(f[2], ",")}
	// ip:port@cport[,hostname]; ":0@0" when the address is not known.
	addr, _, _ := strings.Cut(f[1], ",")
	hostPort, bus, _ := strings.Cut(addr, "@")
	if i := strings.LastIndexByte(hostPort, ':'); i > 0 {
		port, err := strconv.Atoi(hostPort[i+1:])
		if err != nil {
			return Node{}, fmt.Errorf("cluster nodes: address %q", f[1])
		}
		host := strings.TrimSuffix(strings.TrimPrefix(hostPort[:i], "["), "]")
		if port > 0 {
			n.Addr = Addr{Host: host, Port: port}
		}
	}
	n.BusPort, _ = strconv.Atoi(bus)
	if f[3] != "-" {
		n.MasterID = f[3]
	}
	epoch, err := strconv.ParseInt(f[6], 10, 64)
	if err != nil {
		return Node{}, fmt.Errorf("cluster nodes: config epoch %q", f[6])
	}
	n.ConfigEpoch = epoch
	n.Connected = f[7] == "connected"
	for _, s := range f[8:] {
		if strings.HasPrefix(s, "[") {
			continue // a slot being migrated or imported
		}
		lo, hi, isRange := strings.Cut(s, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a > b {
			return Node{}, fmt.Errorf("cluster nodes: slots %q", s)
		}
		n.Slots = append(n.Slots, SlotRange{a, b})
	}
	return n, nil
}
