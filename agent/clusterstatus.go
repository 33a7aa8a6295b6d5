package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// InstanceStatus is one redis instance of a cluster, as `status` and /status
// report it.
type InstanceStatus struct {
	Instance     string `json:"instance"`
	Box          string `json:"box"`
	Planned      string `json:"planned"`         // "master of shard 0", "replica 1 of shard 2"
	Shard        int    `json:"shard"`           // the shard it serves or replicates now (-1: none)
	Slots        string `json:"slots,omitempty"` // a master's slot ranges
	SlotCount    int    `json:"slot_count"`
	Role         string `json:"role"` // master, replica, down
	Reachable    bool   `json:"reachable"`
	Master       string `json:"master,omitempty"` // a replica's master
	Link         string `json:"link,omitempty"`
	Offset       int64  `json:"offset"`
	LagBytes     int64  `json:"lag_bytes"`
	Epoch        int64  `json:"config_epoch"`
	NodeID       string `json:"node_id,omitempty"`
	ClusterState string `json:"cluster_state,omitempty"`
	Fenced       bool   `json:"fenced"`
	Gated        bool   `json:"restart_gated,omitempty"` // /status only: the gate holds it down
	Restarts     int64  `json:"restarts,omitempty"`      // /status only
	Error        string `json:"error,omitempty"`
}

// ClusterStatus is the whole cluster (`status --json`), or this box's
// instances (/status).
type ClusterStatus struct {
	Name        string           `json:"name"`
	Mode        string           `json:"mode"`
	State       string           `json:"state"` // cluster_state as the instances see it
	SlotsServed int              `json:"slots_served"`
	Masters     int              `json:"masters"`
	Replicas    int              `json:"replicas"`
	Healthy     bool             `json:"healthy"`
	Problems    []string         `json:"problems"`
	Notes       []string         `json:"notes,omitempty"`
	Status      string           `json:"status,omitempty"` // /status: the STATUS= line
	Instances   []InstanceStatus `json:"instances"`
	// ConfiguredPeers is the box's cluster.peers (/status): check compares
	// them across boxes.
	ConfiguredPeers []string `json:"configured_peers,omitempty"`
}

// instanceProbe is what one instance said.
type instanceProbe struct {
	up     bool
	err    string
	id     string
	role   wire.Role
	view   wire.ClusterView
	info   map[string]string
	lag    int64
	fenced bool
}

// instanceStatus describes the instance at a from what it said.
func instanceStatus(p ha.Plan, a wire.Addr, pr instanceProbe) InstanceStatus {
	is := InstanceStatus{Instance: a.String(), Box: a.Host, Role: "down", Shard: -1, Error: pr.err, LagBytes: pr.lag}
	if b, j, ok := p.Locate(a); ok {
		is.Box = p.Boxes[b].String()
		is.Planned = placeString(p.PlaceOf(b, j))
	}
	if !pr.up {
		return is
	}
	is.Reachable, is.NodeID, is.Offset, is.Fenced = true, pr.id, pr.role.Offset, pr.fenced
	is.ClusterState = pr.info["cluster_state"]
	me, _ := pr.view.Myself()
	is.Epoch = me.ConfigEpoch
	slots := me.Slots
	if pr.role.Kind == "master" {
		is.Role = "master"
		is.Slots, is.SlotCount = rangeList(me.Slots), me.SlotCount()
	} else {
		is.Role, is.Master, is.Link = "replica", pr.role.Master.String(), pr.role.Link
		if m, ok := pr.view.ByID(me.MasterID); ok {
			slots = m.Slots
		}
	}
	if len(slots) > 0 {
		is.Shard = p.ShardOfSlot(slots[0].From)
	}
	return is
}

// probeInstance asks one instance everything status shows.
func probeInstance(ctx context.Context, pool *sentinel.Pool, a wire.Addr) instanceProbe {
	pr := instanceProbe{lag: -1}
	r := pool.Get(a)
	var err error
	if pr.role, err = r.Role(ctx); err != nil {
		pr.err = err.Error()
		return pr
	}
	pr.up = true
	if pr.view, err = r.ClusterNodes(ctx); err != nil {
		pr.err = err.Error()
	}
	if pr.info, err = r.ClusterInfo(ctx); err != nil {
		pr.info = map[string]string{}
	}
	if me, ok := pr.view.Myself(); ok {
		pr.id = me.ID
	}
	pr.fenced, _ = r.ClusterFenced(ctx)
	if pr.role.Kind == "slave" && pr.role.Link == "connected" {
		if m, err := pool.Get(pr.role.Master).Role(ctx); err == nil && m.Kind == "master" {
			pr.lag = max(m.Offset-pr.role.Offset, 0)
		}
	}
	return pr
}

// probeCluster asks every instance of the plan, in parallel, and sums up.
func probeCluster(ctx context.Context, cfg *config.Config) ClusterStatus {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	plan := clusterPlan(cfg)
	var pool sentinel.Pool
	pool.Use(cfg.Creds())
	defer pool.Close()
	all := plan.All()
	probes := make([]instanceProbe, len(all))
	var wg sync.WaitGroup
	for i, a := range all {
		wg.Go(func() { probes[i] = probeInstance(ctx, &pool, a) })
	}
	wg.Wait()
	return summarizeCluster(cfg.Cluster.Name, plan, all, probes)
}

// summarizeCluster decides health: every instance answers, every slot is
// served, every shard has a replica on another box linked to its master,
// no master is fenced. Two shards on one box is a note, not a problem:
// failback ends it by itself.
func summarizeCluster(name string, plan ha.Plan, all []wire.Addr, probes []instanceProbe) ClusterStatus {
	cs := ClusterStatus{Name: name, Mode: config.ModeCluster, Problems: []string{}}
	var view wire.ClusterView
	linked := map[string]bool{}
	for i, a := range all {
		pr := probes[i]
		is := instanceStatus(plan, a, pr)
		cs.Instances = append(cs.Instances, is)
		switch {
		case !pr.up:
			cs.Problems = append(cs.Problems, fmt.Sprintf("%s unreachable", a))
			continue
		case len(pr.view) <= 1:
			cs.Problems = append(cs.Problems, fmt.Sprintf("%s is in no cluster", a))
			continue
		case is.ClusterState != "ok":
			cs.Problems = append(cs.Problems, fmt.Sprintf("%s: cluster state %s", a, is.ClusterState))
		}
		if is.Role == "master" && is.Fenced {
			cs.Problems = append(cs.Problems, fmt.Sprintf("%s is fenced: it refuses writes", a))
		}
		if is.Role == "replica" && is.Link == "connected" {
			linked[pr.id] = true
		}
		// The view of an instance that is ok and answers for itself; a
		// master's first.
		if view == nil || (is.ClusterState == "ok" && is.Role == "master" && cs.State != "ok") {
			view = pr.view
			cs.State = is.ClusterState
		}
	}
	if view != nil {
		problems, notes := ha.Layout(plan, view, linked)
		cs.Problems = append(cs.Problems, problems...)
		cs.Notes = notes
		cs.SlotsServed = view.Covered()
		for _, is := range cs.Instances {
			switch is.Role {
			case "master":
				if is.SlotCount > 0 {
					cs.Masters++
				}
			case "replica":
				cs.Replicas++
			}
		}
	} else {
		cs.Problems = append(cs.Problems, "no instance is in a cluster")
	}
	cs.Healthy = len(cs.Problems) == 0
	return cs
}

func clusterStatusCmd(ctx context.Context, cfg *config.Config, asJSON bool, out io.Writer) error {
	cs := probeCluster(ctx, cfg)
	return writeStatus(out, asJSON, cs, func() { printClusterStatus(out, cs) }, cs.Healthy)
}

func printClusterStatus(out io.Writer, cs ClusterStatus) {
	fmt.Fprintf(out, "Cluster %q · state %s · %d/%d slots served · %d masters, %d replicas\n",
		cs.Name, orDash(cs.State), cs.SlotsServed, wire.Slots, cs.Masters, cs.Replicas)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tSHARD\tSLOTS\tROLE\tMASTER\tLINK\tOFFSET\tLAG\tEPOCH\tFENCED\tPLANNED")
	for _, is := range cs.Instances {
		shard, offset, lag, epoch, fenced := "-", "-", "-", "-", "-"
		if is.Shard >= 0 {
			shard = fmt.Sprint(is.Shard)
		}
		if is.Reachable {
			offset, epoch = fmt.Sprint(is.Offset), fmt.Sprint(is.Epoch)
		}
		if is.Role == "replica" && is.LagBytes >= 0 {
			lag = fmt.Sprint(is.LagBytes)
		}
		if is.Fenced && is.Role == "master" {
			fenced = "FENCED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", is.Instance, shard, orDash(is.Slots), is.Role,
			orDash(is.Master), orDash(is.Link), offset, lag, epoch, fenced, is.Planned)
	}
	tw.Flush()
	for _, n := range cs.Notes {
		fmt.Fprintln(out, "note:", n)
	}
	if cs.Healthy {
		fmt.Fprintln(out, "healthy")
		return
	}
	for _, p := range cs.Problems {
		fmt.Fprintln(out, "problem:", p)
	}
}

// clusterCheck is `check` in cluster mode: the instances' ports and cluster
// bus ports here, the other boxes' reachable, and the plan.
func clusterCheck(ctx context.Context, cfg *config.Config, report func(ok, warnOnly bool, format string, args ...any)) {
	if fi, err := os.Stat(cfg.Redis.Binary); err != nil || fi.Mode()&0o111 == 0 {
		report(false, false, "redis.binary %s is not an executable file", cfg.Redis.Binary)
	} else {
		report(true, false, "redis.binary %s", cfg.Redis.Binary)
	}
	plan := clusterPlan(cfg)
	for _, a := range plan.All() {
		for _, p := range []struct {
			what string
			addr wire.Addr
		}{{"redis", a}, {"cluster bus", wire.Addr{Host: a.Host, Port: config.BusPort(a)}}} {
			if plan.BoxOf(a) == plan.BoxOf(cfg.Self) {
				if l, err := net.Listen("tcp", p.addr.String()); err == nil {
					l.Close()
					report(true, false, "%s port %s is free", p.what, p.addr)
				} else if dialOK(ctx, p.addr) {
					report(true, true, "%s port %s is in use (by a running agent?)", p.what, p.addr)
				} else {
					report(false, false, "%s port %s cannot be bound: %v", p.what, p.addr, err)
				}
				continue
			}
			ok := dialOK(ctx, p.addr)
			report(ok, true, "peer %s %s %s", p.what, p.addr, reachable(ok))
		}
	}
	for i := range plan.Shards() {
		line := fmt.Sprintf("plan: shard %d (slots %s): master %s", i, plan.Range(i), plan.Member(ha.Place{Shard: i}))
		for r := 1; r <= plan.Replicas; r++ {
			line += fmt.Sprintf(", replica %s", plan.Member(ha.Place{Shard: i, Replica: r}))
		}
		report(true, false, "%s", line)
	}
	checkKernel(cfg, report)
	for _, l := range peerListDiffs(ctx, cfg) {
		report(l.ok, l.warn, "%s", l.text)
	}
}
