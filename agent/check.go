package agent

import (
	"context"
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
func check(ctx context.Context, path string, out io.Writer) error {
	cfg, err := config.Load(path, config.DefaultEnv())
	if err != nil {
		return err
	}
	failed := false
	report := func(ok bool, warnOnly bool, format string, args ...any) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			if warnOnly {
				mark = "warn"
			} else {
				failed = true
			}
		}
		fmt.Fprintf(out, "%s  %s\n", mark, fmt.Sprintf(format, args...))
	}
	report(true, false, "configuration: %s", cfg.Describe())

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
		report(dialOK(ctx, a), true, "peer redis %s reachable", a)
		report(dialOK(ctx, s), true, "peer sentinel %s reachable", s)
		if ps, err := peerServer(ctx, cfg, a); err == nil {
			servers[a.String()] = ps
		}
	}
	if why := sentinel.Mixed(servers); why != "" {
		report(false, false, "%s", why)
	} else if len(servers) > 1 {
		report(true, false, "servers: %s", describeServers(servers))
	}

	if cfg.Tuning.Enabled {
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

	switch n := len(cfg.Peers); {
	case n == 0:
		report(true, false, "single-box mode: no failover")
	case n == 2:
		report(false, true, "2 peers: losing either box loses the majority, so no automatic failover; use 3")
	case n%2 == 0:
		report(false, true, "%d peers: an even count tolerates no more failures than %d", n, n-1)
	default:
		report(true, false, "%d peers, quorum %d: survives the loss of %d box(es)", n, cfg.Quorum, (n-1)/2)
	}
	if failed {
		return errUnhealthy
	}
	return nil
}

// peerServer asks a peer's redis which server it is (INFO server).
func peerServer(ctx context.Context, cfg *config.Config, a wire.Addr) (sentinel.Server, error) {
	c := sentinel.NewRedis(a, cfg.Password)
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

func dialOK(ctx context.Context, a wire.Addr) bool {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", a.String())
	if err != nil {
		return false
	}
	c.Close()
	return true
}
