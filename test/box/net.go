package box

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
)

// Subnet is the bench's private network, inside its namespaces only.
const Subnet = "10.88.0.0/24"

const (
	nftTable = "rha"
	nftChain = "cut" // not "fwd": that is an nft keyword
)

// Net is one switch: a namespace holding bridge br0, with a veth port per
// member (a box or the client). Members live in namespaces of their own, see
// only their eth0 and lo, and reach nothing but each other.
type Net struct {
	prefix string // names of this bench's namespaces start with it
	sw     string // the switch namespace

	mu    sync.Mutex
	ports map[string]string // member → its port on the bridge
}

func newNet(ctx context.Context, prefix string) (*Net, error) {
	n := &Net{prefix: prefix, sw: prefix + "sw", ports: map[string]string{}}
	if err := run(ctx, "ip", "netns", "add", n.sw); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "link", "add", "br0", "type", "bridge"},
		{"ip", "link", "set", "br0", "up"},
	}
	for _, s := range steps {
		if err := n.inSwitch(ctx, s...); err != nil {
			return nil, err
		}
	}
	table := fmt.Sprintf("table bridge %s {\n chain %s { type filter hook forward priority 0; }\n}\n", nftTable, nftChain)
	if err := runInput(ctx, table, "ip", "netns", "exec", n.sw, "nft", "-f", "-"); err != nil {
		return nil, err
	}
	return n, nil
}

// Namespace returns the network namespace of member (as in /run/netns).
func (n *Net) Namespace(member string) string { return n.prefix + member }

// attach creates member's namespace and plugs it into the switch with addr
// (a /24 in Subnet) on its eth0.
func (n *Net) attach(ctx context.Context, member, addr string) error {
	port := "p-" + member
	if len(port) > 15 {
		return fmt.Errorf("net: member name %q too long for an interface name", member)
	}
	ns := n.Namespace(member)
	if err := run(ctx, "ip", "netns", "add", ns); err != nil {
		return err
	}
	if err := n.inSwitch(ctx, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns); err != nil {
		return err
	}
	if err := n.inSwitch(ctx, "ip", "link", "set", port, "master", "br0", "up"); err != nil {
		return err
	}
	for _, s := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "addr", "add", addr + "/24", "dev", "eth0"},
		{"ip", "link", "set", "eth0", "up"},
	} {
		if err := run(ctx, append([]string{"ip", "netns", "exec", ns}, s...)...); err != nil {
			return err
		}
	}
	n.mu.Lock()
	n.ports[member] = port
	n.mu.Unlock()
	return nil
}

// Cut drops every frame between any member of a and any member of b, both
// ways. Members of the same side still reach each other; cuts add up until
// Heal.
func (n *Net) Cut(ctx context.Context, a, b []string) error {
	var rules strings.Builder
	for _, x := range a {
		for _, y := range b {
			px, py, err := n.portPair(x, y)
			if err != nil {
				return err
			}
			fmt.Fprintf(&rules, "add rule bridge %s %s iifname %s oifname %s drop\n", nftTable, nftChain, px, py)
			fmt.Fprintf(&rules, "add rule bridge %s %s iifname %s oifname %s drop\n", nftTable, nftChain, py, px)
		}
	}
	return runInput(ctx, rules.String(), "ip", "netns", "exec", n.sw, "nft", "-f", "-")
}

// Heal removes every cut.
func (n *Net) Heal(ctx context.Context) error {
	return n.inSwitch(ctx, "nft", "flush", "chain", "bridge", nftTable, nftChain)
}

// Unplug takes member's port on the switch down: frames to and from it are
// dropped, as with a machine whose power is off. Plug puts it back.
func (n *Net) Unplug(ctx context.Context, member string) error { return n.setPort(ctx, member, "down") }

// Plug undoes Unplug.
func (n *Net) Plug(ctx context.Context, member string) error { return n.setPort(ctx, member, "up") }

func (n *Net) setPort(ctx context.Context, member, state string) error {
	port, _, err := n.portPair(member, member)
	if err != nil {
		return err
	}
	return n.inSwitch(ctx, "ip", "link", "set", port, state)
}

// Throttle limits the frames the switch sends to member to rate (tc's
// units: "1mbit"), with a short queue: a slow link, not a cut. Small frames
// still get through, late.
func (n *Net) Throttle(ctx context.Context, member, rate string) error {
	port, _, err := n.portPair(member, member)
	if err != nil {
		return err
	}
	return n.inSwitch(ctx, "tc", "qdisc", "replace", "dev", port, "root", "tbf", "rate", rate, "burst", "16kb", "latency", "50ms")
}

// Unthrottle removes member's Throttle.
func (n *Net) Unthrottle(ctx context.Context, member string) error {
	port, _, err := n.portPair(member, member)
	if err != nil {
		return err
	}
	return n.inSwitch(ctx, "tc", "qdisc", "del", "dev", port, "root")
}

// Rules returns the switch's nftables ruleset, for a failing test's log.
func (n *Net) Rules(ctx context.Context) string {
	out, _ := exec.CommandContext(ctx, "ip", "netns", "exec", n.sw, "nft", "list", "table", "bridge", nftTable).CombinedOutput()
	return string(out)
}

func (n *Net) portPair(x, y string) (string, string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	px, okx := n.ports[x]
	py, oky := n.ports[y]
	if !okx || !oky {
		return "", "", fmt.Errorf("net: cut %s/%s: unknown member", x, y)
	}
	return px, py, nil
}

func (n *Net) inSwitch(ctx context.Context, args ...string) error {
	return run(ctx, append([]string{"ip", "netns", "exec", n.sw}, args...)...)
}

func run(ctx context.Context, args ...string) error {
	return runInput(ctx, "", args...)
}

func runInput(ctx context.Context, stdin string, args ...string) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
