package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
)

// PeerStatus is one box as `status` sees it, probed directly (not through its
// agent): what its redis says and what its sentinel says.
type PeerStatus struct {
	Member         string `json:"member"`
	Role           string `json:"role"` // master, replica, down
	Reachable      bool   `json:"reachable"`
	Offset         int64  `json:"offset"`
	LagBytes       int64  `json:"lag_bytes"`
	ReplicaOf      string `json:"replica_of,omitempty"`
	Link           string `json:"link,omitempty"`
	SentinelUp     bool   `json:"sentinel_up"`
	SentinelMaster string `json:"sentinel_master,omitempty"`
	SentinelSees   int    `json:"sentinel_sees"` // sentinels (itself included) it counts as usable (CKQUORUM)
	Error          string `json:"error,omitempty"`
}

// GroupStatus is the whole group: the basis of `status`, its exit code and
// (later) the HTTP /status endpoint.
type GroupStatus struct {
	Name           string       `json:"name"`
	Quorum         int          `json:"quorum"`
	Master         string       `json:"master"`
	SentinelsAgree int          `json:"sentinels_agree"`
	Sentinels      int          `json:"sentinels"`
	Healthy        bool         `json:"healthy"`
	Problems       []string     `json:"problems"`
	Peers          []PeerStatus `json:"peers"`
}

func status(ctx context.Context, path string, asJSON bool, out io.Writer) error {
	cfg, err := LoadConfig(path, DefaultConfigEnv())
	if err != nil {
		return err
	}
	gs := probeGroup(ctx, cfg)
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(gs); err != nil {
			return fmt.Errorf("status: %w", err)
		}
	} else {
		printStatus(out, gs)
	}
	if !gs.Healthy {
		return errUnhealthy
	}
	return nil
}

// members lists the boxes to probe: the peers, or this box alone.
func members(cfg *Config) []sentinel.Addr {
	if len(cfg.Peers) == 0 {
		return []sentinel.Addr{selfAddr(cfg)}
	}
	return peerAddrs(cfg)
}

// probeGroup asks every peer's redis and sentinel in parallel, each bounded.
func probeGroup(ctx context.Context, cfg *Config) GroupStatus {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs := members(cfg)
	peers := make([]PeerStatus, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			peers[i] = probePeer(ctx, cfg, a)
		}()
	}
	wg.Wait()
	return summarize(cfg, peers)
}

func probePeer(ctx context.Context, cfg *Config, a sentinel.Addr) PeerStatus {
	ps := PeerStatus{Member: a.String(), Role: "down"}
	c := sentinel.NewRedisClient(a, cfg.Password)
	defer c.Close()
	if r, err := sentinel.ProbeRole(ctx, c); err != nil {
		ps.Error = err.Error()
	} else {
		ps.Reachable = true
		ps.Offset = r.Offset
		ps.Role = "master"
		if r.Kind != "master" {
			ps.Role = "replica"
			ps.ReplicaOf = r.Master.String()
			ps.Link = r.Link
		}
	}
	if len(cfg.Peers) > 0 {
		sc := sentinel.NewSentinelClient(sentinelOf(cfg, a), cfg.Password)
		defer sc.Close()
		if m, err := sentinel.MasterAddr(ctx, sc, cfg.Cluster.Name); err == nil {
			ps.SentinelUp = true
			ps.SentinelMaster = m.String()
			ps.SentinelSees, _, _ = sentinel.UsableSentinels(ctx, sc, cfg.Cluster.Name)
		} else if err == sentinel.ErrNoMaster {
			ps.SentinelUp = true
		}
	}
	return ps
}

// summarize decides health: exactly one master, the one a quorum of
// sentinels names, every other box its connected replica.
func summarize(cfg *Config, peers []PeerStatus) GroupStatus {
	gs := GroupStatus{Name: cfg.Cluster.Name, Quorum: sentinelQuorum(cfg), Peers: peers}
	var masters []string
	votes := map[string]int{}
	for _, p := range peers {
		if p.Role == "master" {
			masters = append(masters, p.Member)
		}
		if p.SentinelUp {
			gs.Sentinels++
		}
		if p.SentinelMaster != "" {
			votes[p.SentinelMaster]++
		}
	}
	for m, v := range votes {
		if v > gs.SentinelsAgree || (v == gs.SentinelsAgree && m < gs.Master) {
			gs.Master, gs.SentinelsAgree = m, v
		}
	}
	if len(cfg.Peers) == 0 && len(masters) == 1 {
		gs.Master = masters[0]
	}
	var problems []string
	switch {
	case len(masters) == 0:
		problems = append(problems, "no master")
	case len(masters) > 1:
		problems = append(problems, "more than one master: "+strings.Join(masters, ", "))
	}
	if len(cfg.Peers) > 0 {
		if gs.SentinelsAgree < gs.Quorum {
			problems = append(problems, fmt.Sprintf("only %d sentinels agree on a master (quorum %d)", gs.SentinelsAgree, gs.Quorum))
		} else if len(masters) == 1 && masters[0] != gs.Master {
			problems = append(problems, fmt.Sprintf("sentinels name %s but %s acts as master", gs.Master, masters[0]))
		}
		if gs.SentinelsAgree < gs.Sentinels {
			problems = append(problems, fmt.Sprintf("sentinels disagree: %d of %d name %s", gs.SentinelsAgree, gs.Sentinels, gs.Master))
		}
	}
	var masterOffset int64
	for _, p := range peers {
		if p.Member == gs.Master {
			masterOffset = p.Offset
		}
	}
	for i := range peers {
		p := &peers[i]
		switch {
		case !p.Reachable:
			problems = append(problems, p.Member+" unreachable")
		case p.Role == "replica":
			p.LagBytes = max(masterOffset-p.Offset, 0)
			if p.ReplicaOf != gs.Master {
				problems = append(problems, fmt.Sprintf("%s replicates from %s, not the master", p.Member, p.ReplicaOf))
			} else if p.Link != "connected" {
				problems = append(problems, fmt.Sprintf("%s link to master is %s", p.Member, p.Link))
			}
		}
		switch {
		case len(cfg.Peers) == 0:
		case !p.SentinelUp:
			problems = append(problems, p.Member+": sentinel unreachable")
		case p.SentinelSees < len(cfg.Peers):
			// A sentinel that has not discovered its peers cannot authorize
			// a failover: the group is not protected yet.
			problems = append(problems, fmt.Sprintf("%s: sentinel sees %d of %d sentinels", p.Member, p.SentinelSees, len(cfg.Peers)))
		}
	}
	gs.Problems = problems
	gs.Healthy = len(problems) == 0
	if gs.Problems == nil {
		gs.Problems = []string{}
	}
	return gs
}

func printStatus(out io.Writer, gs GroupStatus) {
	fmt.Fprintf(out, "Group %q · master %s · sentinels %d/%d agree (quorum %d)\n",
		gs.Name, orDash(gs.Master), gs.SentinelsAgree, gs.Sentinels, gs.Quorum)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tROLE\tOFFSET\tLAG\tLINK\tSENTINEL SAYS")
	for _, p := range gs.Peers {
		lag, link, says := "-", "-", "-"
		if p.Role == "replica" {
			lag = fmt.Sprint(p.LagBytes)
			link = p.Link
		}
		if p.SentinelMaster != "" {
			says = p.SentinelMaster
		} else if !p.SentinelUp {
			says = "(down)"
		}
		offset := "-"
		if p.Reachable {
			offset = fmt.Sprint(p.Offset)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Member, p.Role, offset, lag, link, says)
	}
	tw.Flush()
	if gs.Healthy {
		fmt.Fprintln(out, "healthy")
		return
	}
	for _, p := range gs.Problems {
		fmt.Fprintln(out, "problem:", p)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
