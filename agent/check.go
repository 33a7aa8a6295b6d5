package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
	"github.com/redis-ha-agent/redis-ha-agent/sysctl"
)

// check is the preflight an operator runs before (or after) enabling the
// unit: every finding is printed, and any failure makes the exit code 1.
func check(ctx context.Context, path string, asJSON bool, out io.Writer) error {
	cfg, err := config.Load(path, config.DefaultEnv())
	if err != nil {
		return err
	}
	var findings []checkFinding
	report := func(ok bool, warnOnly bool, format string, args ...any) {
		f := checkFinding{Status: "ok", Text: fmt.Sprintf(format, args...)}
		if !ok {
			f.Status = "fail"
			if warnOnly {
				f.Status = "warn"
			}
		}
		findings = append(findings, f)
		if !asJSON {
			fmt.Fprintf(out, "%-4s  %s\n", map[string]string{"ok": "ok", "warn": "warn", "fail": "FAIL"}[f.Status], f.Text)
		}
	}
	failed := func() bool {
		return slices.ContainsFunc(findings, func(f checkFinding) bool { return f.Status == "fail" })
	}
	defer func() {
		if asJSON {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			_ = enc.Encode(struct {
				OK       bool           `json:"ok"`
				Findings []checkFinding `json:"findings"`
			}{!failed(), findings})
		}
	}()
	report(true, false, "configuration: %s", cfg.Describe())
	if cfg.ClusterMode() {
		clusterCheck(ctx, cfg, report)
		if failed() {
			return errUnhealthy
		}
		return nil
	}

	// Which server, and whether it loads the data this box holds.
	servers := map[string]sentinel.Server{}
	srv, err := serverFor(ctx, cfg)
	switch {
	case srv.Name == "":
		report(false, false, "%v", err)
	case err != nil:
		report(false, false, "%v", err)
	default:
		report(true, false, "redis.binary %s: %s", cfg.Redis.Binary, srv)
	}
	if srv.Name != "" {
		servers["this box"] = srv
	}

	ports := []struct {
		name string
		addr wire.Addr
	}{{"redis.port", cfg.Self}}
	if len(cfg.Peers) > 0 {
		ports = append(ports, struct {
			name string
			addr wire.Addr
		}{"sentinel.port", cfg.LocalSentinel()})
	}
	for _, p := range ports {
		if l, err := net.Listen("tcp", p.addr.String()); err == nil {
			l.Close()
			report(true, false, "%s %s is free", p.name, p.addr)
		} else if dialOK(ctx, p.addr) {
			// Busy: fine when it is ours (the agent is already running).
			report(true, true, "%s %s is in use (by a running agent?)", p.name, p.addr)
		} else {
			report(false, false, "%s %s cannot be bound: %v", p.name, p.addr, err)
		}
	}

	self := cfg.Self
	for _, p := range cfg.Peers {
		a := p
		if a == self {
			continue
		}
		s := cfg.SentinelOf(a)
		for _, p := range []struct {
			what string
			addr wire.Addr
		}{{"redis", a}, {"sentinel", s}} {
			ok := dialOK(ctx, p.addr)
			report(ok, true, "peer %s %s %s", p.what, p.addr, reachable(ok))
			if m := speaksMismatch(ctx, cfg, p.addr); ok && m != "" {
				report(false, false, "peer %s %s", p.what, m)
			}
		}
		if ps, err := peerServer(ctx, cfg, a); err == nil {
			servers[a.String()] = ps
		}
	}
	if why := sentinel.Mixed(servers); why != "" {
		report(false, false, "%s", why)
	} else if len(servers) > 1 {
		report(true, false, "servers: %s", describeServers(servers))
	}

	if c := cfg.Certs; c != nil {
		left := time.Until(c.NotAfter)
		report(left > 14*24*time.Hour, true, "tls: %s names %s, signed by %s, valid until %s (%d days)",
			cfg.TLS.CertFile, cfg.Self.Host, cfg.TLS.CAFile, c.NotAfter.UTC().Format(time.DateOnly), int(left.Hours()/24))
	}

	checkKernel(cfg, report)

	switch n := len(cfg.Peers); {
	case n == 0:
		report(true, false, "single-box mode: no failover")
	case n == 2:
		report(false, true, "2 peers: losing either box loses the majority, so no automatic failover; use 3")
	case n%2 == 0:
		report(false, true, "%d peers survive the loss of %d box(es), no more than %d would: use an odd count", n, (n-1)/2, n-1)
	default:
		report(true, false, "%d peers, quorum %d: survives the loss of %d box(es)", n, cfg.Quorum, (n-1)/2)
	}
	if len(cfg.Peers) > 0 {
		for _, line := range peerListDiffs(ctx, cfg) {
			report(line.ok, line.warn, "%s", line.text)
		}
	}
	if failed() {
		return errUnhealthy
	}
	return nil
}

// checkFinding is one line of check's report; check --json prints them.
type checkFinding struct {
	Status string `json:"status"` // ok, warn (does not fail the check), fail
	Text   string `json:"text"`
}

// peerServer asks a peer's redis which server it is (INFO server).
func peerServer(ctx context.Context, cfg *config.Config, a wire.Addr) (sentinel.Server, error) {
	c := sentinel.NewRedis(a, cfg.Creds())
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return c.Server(ctx)
}

func describeServers(servers map[string]sentinel.Server) string {
	var parts []string
	for _, who := range slices.Sorted(maps.Keys(servers)) {
		parts = append(parts, fmt.Sprintf("%s %s", who, servers[who]))
	}
	return strings.Join(parts, ", ")
}

func reachable(ok bool) string {
	if ok {
		return "reachable"
	}
	return "unreachable"
}

type checkLine struct {
	ok, warn bool
	text     string
}

// peerListDiffs compares this box's cluster.peers with every other box's,
// as each box's agent reports them in /status: membership is changed by
// editing the peers on every box, and until every box lists the same ones
// the sentinels and agents disagree on who belongs.
func peerListDiffs(ctx context.Context, cfg *config.Config) []checkLine {
	mine := peerList(addrStrings(cfg.Peers))
	var lines []checkLine
	same := 0
	for _, a := range cfg.Peers {
		if a == cfg.Self {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := peerBoxStatus(cctx, cfg, a)
		cancel()
		switch {
		case err != nil:
			lines = append(lines, checkLine{warn: true, text: fmt.Sprintf("peer %s: its peer list cannot be read: %v", a, err)})
		case st.ConfiguredPeers == nil:
			lines = append(lines, checkLine{warn: true, text: fmt.Sprintf("peer %s: its agent does not report its peer list (an older version?)", a)})
		case peerList(st.ConfiguredPeers) != mine:
			lines = append(lines, checkLine{text: fmt.Sprintf("peer %s lists peers [%s], this box [%s]: edit cluster.peers alike on every box",
				a, peerList(st.ConfiguredPeers), mine)})
		default:
			same++
		}
	}
	if same == len(cfg.Peers)-1 {
		lines = append(lines, checkLine{ok: true, text: fmt.Sprintf("every box lists the same %d peers", len(cfg.Peers))})
	}
	return lines
}

// peerList is a peer list in a form that compares alike whatever the
// order.
func peerList(peers []string) string {
	s := slices.Clone(peers)
	slices.Sort(s)
	return strings.Join(s, ", ")
}

func addrStrings(as []wire.Addr) []string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return s
}

func dialOK(ctx context.Context, a wire.Addr) bool {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", a.String())
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// checkKernel reports whether the kernel settings the agent applies are in
// effect (both modes' check).
func checkKernel(cfg *config.Config, report func(ok, warnOnly bool, format string, args ...any)) {
	if !cfg.Tuning.Enabled {
		return
	}
	drift, err := sysctl.Verify(sysctl.Roots{Proc: "/proc", Sys: "/sys"}, desiredKernel(cfg))
	switch {
	case err != nil:
		report(false, true, "kernel settings: %v", err)
	case len(drift) > 0:
		report(false, true, "kernel settings not in effect (the agent applies them at start as root): %s", describeDrift(drift))
	default:
		report(true, false, "kernel settings in effect")
	}
}
