package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
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
	// Fenced: this master refuses every write because its agent fenced it
	// (min-replicas-to-write above the replicas that can exist).
	Fenced bool `json:"fenced"`
	// VIPHeld: whether vip.address is on this box. Absent when no VIP is
	// configured or nobody could tell (the box's HTTP API is off or down).
	VIPHeld *bool `json:"vip_held,omitempty"`
	// PendingRestart says why the box's redis should restart (its binary
	// was replaced on disk, a restart-only setting changed); from the box's
	// /status, so unknown when its HTTP API is off or down.
	PendingRestart string `json:"pending_restart,omitempty"`
	// Drained: the box is never promoted until undrained (from its /status).
	Drained bool `json:"drained,omitempty"`
	// ConfiguredPeers is the box's cluster.peers (its /status only): check
	// compares them across boxes.
	ConfiguredPeers []string `json:"configured_peers,omitempty"`
	Error           string   `json:"error,omitempty"`
}

// GroupStatus is the whole group: the basis of `status`, its exit code and
// (later) the HTTP /status endpoint.
type GroupStatus struct {
	Name           string   `json:"name"`
	Quorum         int      `json:"quorum"`
	Master         string   `json:"master"`
	SentinelsAgree int      `json:"sentinels_agree"`
	Sentinels      int      `json:"sentinels"`
	Healthy        bool     `json:"healthy"`
	Problems       []string `json:"problems"`
	VIP            string   `json:"vip,omitempty"`         // vip.address, when configured
	VIPHolders     []string `json:"vip_holders,omitempty"` // the boxes known to hold it
	// Paused: the group is in maintenance (pause); PausedUntil, when set,
	// is when that ends by itself.
	Paused      bool   `json:"paused"`
	PausedUntil string `json:"paused_until,omitempty"`
	// Via says where the report comes from when not from redis and the
	// sentinels themselves.
	Via   string       `json:"via,omitempty"`
	Peers []PeerStatus `json:"peers"`
}

func status(ctx context.Context, path string, asJSON bool, out io.Writer) error {
	var gs GroupStatus
	cfg, err := config.Load(path, config.DefaultEnv())
	var cerr *config.Error
	switch {
	case errors.As(err, &cerr) && cerr.AccessOnly():
		// A user who may not read the password (the monitoring user, an
		// operator without sudo) still gets the group's state: from each
		// agent's read-only /status instead of redis and the sentinels.
		cfg, err = config.LoadPublic(path, config.DefaultEnv())
		if err != nil {
			return err
		}
		gs = agentsView(ctx, cfg)
	case err != nil:
		return err
	case cfg.ClusterMode():
		return clusterStatusCmd(ctx, cfg, asJSON, out)
	default:
		gs = probeGroup(ctx, cfg)
	}
	return writeStatus(out, asJSON, gs, func() { printStatus(out, gs) }, gs.Healthy)
}

// writeStatus prints a status report as JSON or as text (both modes), and
// makes an unhealthy one the command's failure.
func writeStatus(out io.Writer, asJSON bool, report any, text func(), healthy bool) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return fmt.Errorf("status: %w", err)
		}
	} else {
		text()
	}
	if !healthy {
		return errUnhealthy
	}
	return nil
}

// agentsView is the group as its agents report it in /status, for a user
// who cannot read the password; a box whose agent does not answer is down,
// with why. Each box vouches for itself only, so this is the agents' view,
// not a probe of redis: the report says so.
func agentsView(ctx context.Context, cfg *config.Config) GroupStatus {
	var paused atomic.Bool
	gs := summarize(cfg, askMembers(ctx, cfg, func(ctx context.Context, a wire.Addr) PeerStatus {
		st, err := peerBoxStatus(ctx, cfg, a)
		if err != nil {
			return PeerStatus{Member: a.String(), Role: "down", Error: "its agent's /status: " + err.Error()}
		}
		if st.Paused {
			paused.Store(true)
		}
		ps := st.PeerStatus
		ps.Member = a.String()
		return ps
	}))
	gs.Paused = paused.Load()
	gs.Via = "each agent's /status: this user cannot read " + cfg.Auth.PasswordFile + " (as root, status asks redis and the sentinels themselves)"
	return gs
}

// probeGroup asks every peer's redis and sentinel in parallel, each bounded.
func probeGroup(ctx context.Context, cfg *config.Config) GroupStatus {
	gs := summarize(cfg, askMembers(ctx, cfg, func(ctx context.Context, a wire.Addr) PeerStatus {
		return probePeer(ctx, cfg, a)
	}))
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	gs.Paused, gs.PausedUntil = readGroupPause(pctx, cfg, gs)
	return gs
}

// askMembers asks every member of the group in parallel, within 2 s in all.
func askMembers(ctx context.Context, cfg *config.Config, ask func(context.Context, wire.Addr) PeerStatus) []PeerStatus {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs := cfg.Members()
	peers := make([]PeerStatus, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() { peers[i] = ask(ctx, a) })
	}
	wg.Wait()
	return peers
}

// readGroupPause reads the pause from the master, else from the first box
// that answers (a replica holds the same record).
func readGroupPause(ctx context.Context, cfg *config.Config, gs GroupStatus) (bool, string) {
	order := []string{gs.Master}
	for _, p := range gs.Peers {
		if p.Reachable {
			order = append(order, p.Member)
		}
	}
	for _, m := range order {
		a, err := wire.ParseAddr(m, cfg.Redis.Port)
		if m == "" || err != nil {
			continue
		}
		c := sentinel.NewRedis(a, cfg.Creds())
		p, ok, err := c.ReadPause(ctx)
		c.Close()
		if err != nil {
			continue
		}
		if !ok {
			return false, ""
		}
		if p.Until.IsZero() {
			return true, ""
		}
		return true, p.Until.UTC().Format(time.RFC3339)
	}
	return false, ""
}

func probePeer(ctx context.Context, cfg *config.Config, a wire.Addr) PeerStatus {
	ps := PeerStatus{Member: a.String(), Role: "down"}
	c := sentinel.NewRedis(a, cfg.Creds())
	defer c.Close()
	if r, err := c.Role(ctx); err != nil {
		ps.Error = err.Error()
		if m := speaksMismatch(ctx, cfg, a); m != "" {
			ps.Error = m
		} else if errors.Is(err, syscall.ECONNREFUSED) {
			// The box is up but its redis is not: its agent may know why, in
			// redis' own words on its last exit. (A box that does not answer
			// at all is not asked again.)
			actx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			if st, err := peerBoxStatus(actx, cfg, a); err == nil && strings.HasPrefix(st.Status, "redis ") {
				ps.Error = "its agent says: " + st.Status
			}
			cancel()
		}
	} else {
		ps.Reachable = true
		ps.Offset = r.Offset
		ps.Role = "master"
		if r.Kind != "master" {
			ps.Role = "replica"
			ps.ReplicaOf = r.Master.String()
			ps.Link = r.Link
		} else if f, err := c.Fenced(ctx, len(cfg.Peers)); err == nil {
			ps.Fenced = f
		}
	}
	ps.VIPHeld = probeVIP(ctx, cfg, a)
	if st, err := peerBoxStatus(ctx, cfg, a); err == nil {
		ps.PendingRestart, ps.Drained = st.PendingRestart, st.Drained
	}
	if len(cfg.Peers) > 0 {
		sc := sentinel.NewSentinel(cfg.SentinelOf(a), cfg.Creds())
		defer sc.Close()
		if m, err := sc.MasterAddr(ctx, cfg.Cluster.Name); err == nil {
			ps.SentinelUp = true
			ps.SentinelMaster = m.String()
			ps.SentinelSees, _, _ = sc.Usable(ctx, cfg.Cluster.Name)
		} else if errors.Is(err, wire.ErrNoMaster) {
			ps.SentinelUp = true
		}
	}
	return ps
}

// summarize decides health: exactly one master, the one a quorum of
// sentinels names, every other box its connected replica.
func summarize(cfg *config.Config, peers []PeerStatus) GroupStatus {
	gs := GroupStatus{Name: cfg.Cluster.Name, Quorum: cfg.SentinelQuorum(), Peers: peers}
	var masters, named []string
	for _, p := range peers {
		if p.Role == "master" {
			masters = append(masters, p.Member)
		}
		if p.SentinelUp {
			gs.Sentinels++
		}
		named = append(named, p.SentinelMaster)
	}
	gs.Master, gs.SentinelsAgree, _ = ha.MostNamed(named)
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
		case !p.Reachable && strings.HasPrefix(p.Error, "its agent says: "):
			problems = append(problems, p.Member+" unreachable: "+p.Error)
		case !p.Reachable && strings.Contains(p.Error, "tls.enabled differs"):
			problems = append(problems, p.Error)
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
		if p.Fenced {
			problems = append(problems, p.Member+" is fenced: it refuses writes")
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
	gs.VIP = cfg.VIP.Address
	problems = append(problems, vipProblems(&gs)...)
	gs.Problems = problems
	gs.Healthy = len(problems) == 0
	if gs.Problems == nil {
		gs.Problems = []string{}
	}
	return gs
}

func printStatus(out io.Writer, gs GroupStatus) {
	if gs.Via != "" {
		fmt.Fprintf(out, "(from %s)\n", gs.Via)
	}
	fmt.Fprintf(out, "Group %q · master %s · sentinels %d/%d agree (quorum %d)",
		gs.Name, orDash(gs.Master), gs.SentinelsAgree, gs.Sentinels, gs.Quorum)
	if gs.VIP != "" {
		fmt.Fprintf(out, " · vip %s on %s", gs.VIP, orDash(strings.Join(gs.VIPHolders, ", ")))
	}
	if gs.Paused {
		fmt.Fprintf(out, " · PAUSED (no automatic failover")
		if gs.PausedUntil != "" {
			fmt.Fprintf(out, " until %s", gs.PausedUntil)
		}
		fmt.Fprintf(out, ")")
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	header := "MEMBER\tROLE\tFENCED\tOFFSET\tLAG\tLINK\tSENTINEL SAYS"
	if gs.VIP != "" {
		header += "\tVIP"
	}
	fmt.Fprintln(tw, header)
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
		fenced := "-"
		if p.Fenced {
			fenced = "FENCED"
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", p.Member, p.Role, fenced, offset, lag, link, says)
		if gs.VIP != "" {
			line += "\t" + vipCell(p)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	for _, p := range gs.Peers {
		if p.Drained {
			fmt.Fprintf(out, "drained: %s is never promoted until undrained\n", p.Member)
		}
		if p.PendingRestart != "" {
			fmt.Fprintf(out, "restart pending on %s: %s (redis-ha-agent restart --rolling --pending)\n", p.Member, p.PendingRestart)
		}
	}
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

// probeVIP says whether the box at a holds the VIP: this box asks its own
// kernel; another box only knows it itself, so its agent's /status is asked.
// nil when no VIP is configured or the answer is unknown.
func probeVIP(ctx context.Context, cfg *config.Config, a wire.Addr) *bool {
	if cfg.VIP.Address == "" {
		return nil
	}
	if a == cfg.Self {
		return localVIPHeld(cfg)
	}
	held, err := peerVIPHeld(ctx, cfg, a)
	if err != nil {
		return nil
	}
	return held
}

// peerVIPHeld asks the HTTP API of the box at a for its /status and returns
// its vip_held.
func peerVIPHeld(ctx context.Context, cfg *config.Config, a wire.Addr) (*bool, error) {
	st, err := peerBoxStatus(ctx, cfg, a)
	if err != nil {
		return nil, fmt.Errorf("vip: %w", err)
	}
	return st.VIPHeld, nil
}

// peerBoxStatus asks the HTTP API of the box whose redis is at a for its
// /status: what only that box's agent knows. Boxes listen on this box's
// http.listen port; agents sharing one address (a lab, the loopback tests)
// on ports as far apart as their redis ports.
func peerBoxStatus(ctx context.Context, cfg *config.Config, a wire.Addr) (BoxStatus, error) {
	var st BoxStatus
	if cfg.HTTPListen == "" {
		return st, errors.New("http api off: a peer's /status cannot be read")
	}
	_, p, err := net.SplitHostPort(cfg.HTTPListen)
	if err != nil {
		return st, fmt.Errorf("http.listen: %w", err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return st, fmt.Errorf("http.listen: %w", err)
	}
	if a.Host == cfg.Self.Host {
		port += a.Port - cfg.Self.Port
	}
	host := a.Host
	scheme, client := "http", http.DefaultClient
	if cfg.Certs != nil {
		tc := cfg.Certs.Client.Clone()
		tc.ServerName = host
		scheme, client = "https", &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
	url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return st, fmt.Errorf("get %s: %w", url, err)
	}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return st, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&st); err != nil {
		return st, fmt.Errorf("get %s: %w", url, err)
	}
	return st, nil
}

// vipProblems holds the VIP to what the reconcile loop promises: on the
// master the sentinels name, unfenced, and nowhere else.
func vipProblems(gs *GroupStatus) []string {
	if gs.VIP == "" {
		return nil
	}
	var problems []string
	for _, p := range gs.Peers {
		if p.VIPHeld == nil || !*p.VIPHeld {
			continue
		}
		gs.VIPHolders = append(gs.VIPHolders, p.Member)
		switch {
		case p.Fenced:
			problems = append(problems, fmt.Sprintf("vip %s held by %s, which is fenced", gs.VIP, p.Member))
		case p.Member != gs.Master || p.Role != "master":
			problems = append(problems, fmt.Sprintf("vip %s held by %s, which is not the master", gs.VIP, p.Member))
		}
	}
	if len(gs.VIPHolders) > 1 {
		problems = append(problems, fmt.Sprintf("vip %s held by %d boxes: %s", gs.VIP, len(gs.VIPHolders), strings.Join(gs.VIPHolders, ", ")))
	}
	for _, p := range gs.Peers {
		if p.Member == gs.Master && p.VIPHeld != nil && !*p.VIPHeld && !p.Fenced {
			problems = append(problems, fmt.Sprintf("vip %s is not on the master %s", gs.VIP, p.Member))
		}
	}
	return problems
}

// vipCell is the VIP column: held, -, or ? when nobody could tell.
func vipCell(p PeerStatus) string {
	switch {
	case p.VIPHeld == nil:
		return "?"
	case *p.VIPHeld:
		return "held"
	default:
		return "-"
	}
}
