//go:build linux

package vip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// The veth pair every test builds inside its own network namespace: the VIP goes on ifA,
// ifB plays the rest of the segment.
const ifA, ifB = "vipt0", "vipt1"

// inNetns runs fn in a fresh network namespace (testutil.InNewNetns): the
// package-level netlink functions open their socket on the calling thread,
// so netlink calls, raw sockets and the veth pair all live there.
func inNetns(t *testing.T, fn func() error) {
	t.Helper()
	testutil.RequireRoot(t, "unshare(CLONE_NEWNET), CAP_NET_ADMIN, CAP_NET_RAW")
	skip, err := testutil.InNewNetns(fn)
	if skip != "" {
		t.Skip(skip)
	}
	if err != nil {
		t.Error(err)
	}
	for _, name := range []string{ifA, ifB} {
		if _, err := net.InterfaceByName(name); err == nil {
			t.Errorf("interface %s exists in the host namespace: the test leaked out of its netns", name)
		}
	}
}

func needIPv6(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		t.Skip("kernel without IPv6")
	}
}

// remote is a second network namespace standing for another host on the segment: a kernel
// takes an address held anywhere in its own namespace as local and ignores gratuitous ARP
// for it, so the end that judges an announcement must live apart. home and away are
// namespace fds; do moves the locked thread into away for fn and back.
type remote struct{ home, away int }

// newRemote creates the namespace from inside the test's own (unshare, then setns back),
// so the thread never passes through the host's.
func newRemote() (*remote, error) {
	const path = "/proc/thread-self/ns/net"
	home, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		unix.Close(home)
		return nil, err
	}
	away, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = unix.Setns(home, unix.CLONE_NEWNET)
	}
	if err != nil {
		// Still in a namespace of our own; it dies with the thread.
		return nil, fmt.Errorf("remote netns: %w", err)
	}
	return &remote{home: home, away: away}, nil
}

func (r *remote) do(fn func() error) error {
	if err := unix.Setns(r.away, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns remote: %w", err)
	}
	err := fn()
	if serr := unix.Setns(r.home, unix.CLONE_NEWNET); serr != nil {
		err = errors.Join(err, fmt.Errorf("setns home: %w", serr))
	}
	return err
}

func (r *remote) close() {
	unix.Close(r.away)
	unix.Close(r.home)
}

// vethPair creates ifA <-> ifB, ifB in r's namespace unless r is nil, and waits for the kernel
// to report both up: until linkwatch has run, the qdisc is noop and every frame sent is dropped.
func vethPair(r *remote) (a, b *net.Interface, err error) {
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: ifA}, PeerName: ifB}
	there := func(fn func() error) error { return fn() }
	if r != nil {
		veth.PeerNamespace = netlink.NsFd(r.away)
		there = r.do
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, nil, fmt.Errorf("add veth: %w", err)
	}
	setUp := func(name string) func() error {
		return func() error {
			link, err := netlink.LinkByName(name)
			if err == nil {
				err = netlink.LinkSetUp(link)
			}
			if err != nil {
				return fmt.Errorf("set %s up: %w", name, err)
			}
			return nil
		}
	}
	if err := setUp(ifA)(); err != nil {
		return nil, nil, err
	}
	if err := there(setUp(ifB)); err != nil {
		return nil, nil, err
	}
	isUp := func(name string) func() error {
		return func() error {
			link, err := netlink.LinkByName(name)
			if err == nil && link.Attrs().OperState != netlink.OperUp {
				err = fmt.Errorf("%s is %s", name, link.Attrs().OperState)
			}
			return err
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := isUp(ifA)()
		if err == nil {
			err = there(isUp(ifB))
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("veth pair not up after 5s: %w", err)
		}
	}
	if a, err = net.InterfaceByName(ifA); err != nil {
		return nil, nil, err
	}
	err = there(func() (err error) {
		b, err = net.InterfaceByName(ifB)
		return err
	})
	return a, b, err
}

func TestAddRemove(t *testing.T) {
	for _, tt := range []struct {
		name string
		vip  string
	}{
		{"ipv4", "10.0.0.100/24"},
		{"ipv6", "fd00::100/64"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := netip.MustParsePrefix(tt.vip)
			if p.Addr().Is6() {
				needIPv6(t)
			}
			inNetns(t, func() error {
				if _, _, err := vethPair(nil); err != nil {
					return err
				}
				step := func(what string, got, want bool, err error) error {
					if err != nil || got != want {
						return fmt.Errorf("%s = %v, %v; want %v, nil", what, got, err, want)
					}
					return nil
				}
				ok, err := Present(ifA, p)
				if err := step("Present before Add", ok, false, err); err != nil {
					return err
				}
				changed, err := Add(ifA, p)
				if err := step("Add", changed, true, err); err != nil {
					return err
				}
				ok, err = Present(ifA, p)
				if err := step("Present after Add", ok, true, err); err != nil {
					return err
				}
				host := netip.PrefixFrom(p.Addr(), p.Addr().BitLen())
				ok, err = Present(ifA, host)
				if err := step("Present with another prefix length", ok, false, err); err != nil {
					return err
				}
				ok, err = Present(ifB, p)
				if err := step("Present on the peer", ok, false, err); err != nil {
					return err
				}
				changed, err = Add(ifA, p)
				if err := step("second Add", changed, false, err); err != nil {
					return err
				}
				if err := checkAddr(p); err != nil {
					return err
				}
				changed, err = Remove(ifA, p)
				if err := step("Remove", changed, true, err); err != nil {
					return err
				}
				ok, err = Present(ifA, p)
				if err := step("Present after Remove", ok, false, err); err != nil {
					return err
				}
				changed, err = Remove(ifA, p)
				if err := step("second Remove", changed, false, err); err != nil {
					return err
				}

				want := fmt.Sprintf("vip add %s on nosuch0: ", p)
				if _, err := Add("nosuch0", p); err == nil || !strings.HasPrefix(err.Error(), want) {
					return fmt.Errorf("Add on a missing interface: %v; want an error starting %q", err, want)
				}
				return nil
			})
		})
	}
}

// checkAddr looks at the address as the kernel holds it, and proves it usable at once: an IPv6
// address still tentative (no IFA_F_NODAD) could not be bound for about a second.
func checkAddr(p netip.Prefix) error {
	link, err := netlink.LinkByName(ifA)
	if err != nil {
		return err
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	var found []netlink.Addr
	for _, a := range addrs {
		if ip, _ := netip.AddrFromSlice(a.IP); ip.Unmap() == p.Addr() {
			found = append(found, a)
		}
	}
	if len(found) != 1 {
		return fmt.Errorf("kernel holds %d copies of %s on %s (%v), want 1", len(found), p, ifA, found)
	}
	a := found[0]
	if p.Addr().Is6() {
		if a.Flags&unix.IFA_F_NODAD == 0 || a.Flags&unix.IFA_F_TENTATIVE != 0 {
			return fmt.Errorf("%s flags %#x: want IFA_F_NODAD and not IFA_F_TENTATIVE", p, a.Flags)
		}
	} else if a.Label != ifA+labelSuffix {
		return fmt.Errorf("%s label %q, want %q", p, a.Label, ifA+labelSuffix)
	}
	c, err := net.ListenPacket("udp", netip.AddrPortFrom(p.Addr(), 0).String())
	if err != nil {
		return fmt.Errorf("bind right after Add: %w", err)
	}
	return c.Close()
}

func TestInterfaceFor(t *testing.T) {
	needIPv6(t)
	inNetns(t, func() error {
		if _, _, err := vethPair(nil); err != nil {
			return err
		}
		for _, add := range []struct{ iface, vip string }{
			{ifA, "10.0.0.1/24"},
			{ifB, "10.0.0.2/24"},
			{ifB, "fd00::2/64"},
			{ifA, "192.168.7.7/32"},
			{ifB, "192.168.7.7/32"},
		} {
			if _, err := Add(add.iface, netip.MustParsePrefix(add.vip)); err != nil {
				return err
			}
		}
		var problems []string
		for _, tt := range []struct {
			ip, want, wantErr string
		}{
			{ip: "10.0.0.1", want: ifA},
			{ip: "10.0.0.2", want: ifB},
			{ip: "fd00::2", want: ifB},
			{ip: "::ffff:10.0.0.1", want: ifA},
			{ip: "10.0.0.3", wantErr: "vip interface for 10.0.0.3: no interface holds it"},
			{ip: "192.168.7.7", wantErr: "held by [vipt0 vipt1]"},
		} {
			got, err := InterfaceFor(netip.MustParseAddr(tt.ip))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					problems = append(problems, fmt.Sprintf("InterfaceFor(%s) = %q, %v; want error containing %q", tt.ip, got, err, tt.wantErr))
				}
			} else if got != tt.want || err != nil {
				problems = append(problems, fmt.Sprintf("InterfaceFor(%s) = %q, %v; want %q", tt.ip, got, err, tt.want))
			}
		}
		if problems != nil {
			return errors.New(strings.Join(problems, "\n"))
		}
		return nil
	})
}

// listen opens a packet socket on ifindex that receives frames of one ethertype, payload only
// (SOCK_DGRAM), with a short read timeout so collect can poll.
func listen(ifindex int, ethertype uint16) (int, error) {
	// Protocol 0 until bound, so nothing from other interfaces queues up in between.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethertype), Ifindex: ifindex})
	if err == nil {
		err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 20000})
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// collect reads the frames received (not sent) on fd for d and returns those describe
// turns into a non-empty string.
func collect(fd int, d time.Duration, describe func(payload []byte, from *unix.SockaddrLinklayer) string) ([]string, error) {
	var got []string
	buf := make([]byte, 2048)
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		n, sa, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return got, fmt.Errorf("recvfrom: %w", err)
		}
		ll, ok := sa.(*unix.SockaddrLinklayer)
		if !ok || ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if s := describe(buf[:n], ll); s != "" {
			got = append(got, s)
		}
	}
	return got, nil
}

func pkttype(t uint8) string {
	switch t {
	case unix.PACKET_BROADCAST:
		return "broadcast"
	case unix.PACKET_MULTICAST:
		return "multicast"
	case unix.PACKET_HOST:
		return "unicast"
	}
	return fmt.Sprint(t)
}

func describeARP(b []byte, from *unix.SockaddrLinklayer) string {
	if len(b) < 28 {
		return fmt.Sprintf("short ARP payload % x", b)
	}
	ip := func(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b)) }
	return fmt.Sprintf("htype=%d ptype=%#04x hlen=%d plen=%d op=%d sha=%s spa=%s tha=%s tpa=%s | eth src=%s %s",
		binary.BigEndian.Uint16(b[0:]), binary.BigEndian.Uint16(b[2:]), b[4], b[5], binary.BigEndian.Uint16(b[6:]),
		net.HardwareAddr(b[8:14]), ip(b[14:18]), net.HardwareAddr(b[18:24]), ip(b[24:28]),
		net.HardwareAddr(from.Addr[:from.Halen]), pkttype(from.Pkttype))
}

// describeNA returns "" for everything but neighbour advertisements: the kernel's own DAD,
// MLD and router solicitations share the wire.
func describeNA(b []byte, from *unix.SockaddrLinklayer) string {
	if len(b) < 40+24 || b[6] != unix.IPPROTO_ICMPV6 || b[40] != 136 {
		return ""
	}
	src, dst := netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
	msg := b[40 : 40+int(binary.BigEndian.Uint16(b[4:]))]
	opt := "none"
	if len(msg) >= 32 {
		opt = fmt.Sprintf("type=%d len=%d lladdr=%s", msg[24], msg[25], net.HardwareAddr(msg[26:32]))
	}
	return fmt.Sprintf("ip6 src=%s dst=%s hlim=%d | icmp6 type=%d code=%d checksum=%s flags=%#02x target=%s opt %s | eth src=%s %s",
		src, dst, b[7], msg[0], msg[1], checksum(src, dst, msg), msg[4], netip.AddrFrom16([16]byte(msg[8:24])), opt,
		net.HardwareAddr(from.Addr[:from.Halen]), pkttype(from.Pkttype))
}

// checksum verifies the ICMPv6 checksum over the pseudo-header (RFC 8200 8.1), which the
// kernel, not our code, fills in.
func checksum(src, dst netip.Addr, msg []byte) string {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	add(binary.BigEndian.AppendUint32(nil, uint32(len(msg))))
	add([]byte{0, 0, 0, unix.IPPROTO_ICMPV6})
	add(msg)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	if sum != 0xffff {
		return fmt.Sprintf("bad(%#04x)", binary.BigEndian.Uint16(msg[2:]))
	}
	return "ok"
}

// seedNeighbour makes the kernel behind ifB believe ip lives at a made-up MAC, as confirmed
// reachable, which only an announcement that kernel accepts as overriding replaces.
func seedNeighbour(ifindex int, ip netip.Addr) error {
	family := netlink.FAMILY_V4
	if ip.Is6() {
		family = netlink.FAMILY_V6
	}
	return netlink.NeighAdd(&netlink.Neigh{
		LinkIndex:    ifindex,
		Family:       family,
		State:        netlink.NUD_REACHABLE,
		IP:           ip.AsSlice(),
		HardwareAddr: net.HardwareAddr{0x02, 0xde, 0xad, 0xbe, 0xef, 0x01},
	})
}

// neighbourMAC is where the kernel behind ifindex now sends frames for ip.
func neighbourMAC(ifindex int, ip netip.Addr) (string, error) {
	neighs, err := netlink.NeighList(ifindex, netlink.FAMILY_ALL)
	if err != nil {
		return "", err
	}
	for _, n := range neighs {
		if got, _ := netip.AddrFromSlice(n.IP); got.Unmap() == ip {
			return n.HardwareAddr.String(), nil
		}
	}
	return "", fmt.Errorf("no neighbour entry for %s", ip)
}

// announceSetup builds the segment for an Announce test: the VIP on ifA; in the remote
// namespace, ifB with peerAddr, a seeded neighbour entry for the VIP, and a packet socket
// capturing ethertype on ifB.
func announceSetup(p, peerAddr netip.Prefix, ethertype uint16) (r *remote, a *net.Interface, fd int, err error) {
	if r, err = newRemote(); err != nil {
		return nil, nil, -1, err
	}
	a, b, err := vethPair(r)
	if err == nil {
		_, err = Add(ifA, p)
	}
	if err == nil {
		err = r.do(func() error {
			if _, err := Add(ifB, peerAddr); err != nil {
				return err
			}
			if err := seedNeighbour(b.Index, p.Addr()); err != nil {
				return err
			}
			fd, err = listen(b.Index, ethertype)
			return err
		})
	}
	if err != nil {
		r.close()
		return nil, nil, -1, err
	}
	return r, a, fd, nil
}

// peerBelieves checks that the remote kernel now sends frames for the VIP to ifA's MAC,
// replacing the seeded entry: only an announcement it accepts as overriding does that.
func peerBelieves(r *remote, ip netip.Addr, mac net.HardwareAddr) error {
	return r.do(func() error {
		b, err := net.InterfaceByName(ifB)
		if err != nil {
			return err
		}
		if got, err := neighbourMAC(b.Index, ip); err != nil || got != mac.String() {
			return fmt.Errorf("peer neighbour entry for %s = %s, %v; want %s", ip, got, err, mac)
		}
		return nil
	})
}

func TestAnnounceARP(t *testing.T) {
	p := netip.MustParsePrefix("10.0.0.100/24")
	inNetns(t, func() error {
		r, a, fd, err := announceSetup(p, netip.MustParsePrefix("10.0.0.2/24"), unix.ETH_P_ARP)
		if err != nil {
			return err
		}
		defer r.close()
		defer unix.Close(fd)
		ctx := context.Background()

		// Not holding the address: refused, and nothing goes out (the collect below sees
		// only the VIP's frames).
		other := netip.MustParsePrefix("10.0.0.101/24")
		if err := Announce(ctx, ifA, other, 1, 0); err == nil || !strings.Contains(err.Error(), "not on the interface") {
			return fmt.Errorf("Announce of an address not held = %v, want a refusal", err)
		}

		const repeat, gap = 3, 40 * time.Millisecond
		start := time.Now()
		if err := Announce(ctx, ifA, p, repeat, gap); err != nil {
			return err
		}
		if el := time.Since(start); el < (repeat-1)*gap {
			return fmt.Errorf("Announce took %v, want at least %v for %d bursts %v apart", el, (repeat-1)*gap, repeat, gap)
		}
		if err := peerBelieves(r, p.Addr(), a.HardwareAddr); err != nil {
			return err
		}
		got, err := collect(fd, 300*time.Millisecond, describeARP)
		if err != nil {
			return err
		}
		mac := a.HardwareAddr
		request := fmt.Sprintf("htype=1 ptype=0x0800 hlen=6 plen=4 op=1 sha=%s spa=10.0.0.100 tha=00:00:00:00:00:00 tpa=10.0.0.100 | eth src=%s broadcast", mac, mac)
		reply := fmt.Sprintf("htype=1 ptype=0x0800 hlen=6 plen=4 op=2 sha=%s spa=10.0.0.100 tha=%s tpa=10.0.0.100 | eth src=%s broadcast", mac, mac, mac)
		var want []string
		for range repeat {
			want = append(want, request, reply)
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("received on %s:\n  %s\nwant:\n  %s", ifB, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}

		// Cancelled during the first gap: one burst, then ctx's error, without waiting an hour.
		ctx, cancel := context.WithCancel(context.Background())
		stop := time.AfterFunc(50*time.Millisecond, cancel)
		defer stop.Stop()
		start = time.Now()
		err = Announce(ctx, ifA, p, 5, time.Hour)
		if !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
			return fmt.Errorf("Announce cancelled after %v = %v, want context.Canceled", time.Since(start), err)
		}
		if got, err = collect(fd, 300*time.Millisecond, describeARP); err != nil || !slices.Equal(got, want[:2]) {
			return fmt.Errorf("after cancel received %q, %v; want one request and one reply", got, err)
		}
		// Already cancelled: nothing at all.
		if err := Announce(ctx, ifA, p, 5, 0); !errors.Is(err, context.Canceled) {
			return fmt.Errorf("Announce with a done ctx = %v, want context.Canceled", err)
		}
		if got, err = collect(fd, 100*time.Millisecond, describeARP); err != nil || len(got) != 0 {
			return fmt.Errorf("with a done ctx received %q, %v; want nothing", got, err)
		}
		return nil
	})
}

func TestAnnounceNA(t *testing.T) {
	needIPv6(t)
	p := netip.MustParsePrefix("fd00::100/64")
	inNetns(t, func() error {
		r, a, fd, err := announceSetup(p, netip.MustParsePrefix("fd00::2/64"), unix.ETH_P_IPV6)
		if err != nil {
			return err
		}
		defer r.close()
		defer unix.Close(fd)

		const repeat = 3
		if err := Announce(context.Background(), ifA, p, repeat, 10*time.Millisecond); err != nil {
			return err
		}
		if err := peerBelieves(r, p.Addr(), a.HardwareAddr); err != nil {
			return err
		}
		got, err := collect(fd, 300*time.Millisecond, describeNA)
		if err != nil {
			return err
		}
		mac := a.HardwareAddr
		na := fmt.Sprintf("ip6 src=fd00::100 dst=ff02::1 hlim=255 | icmp6 type=136 code=0 checksum=ok flags=0x20 target=fd00::100 opt type=2 len=1 lladdr=%s | eth src=%s multicast", mac, mac)
		want := slices.Repeat([]string{na}, repeat)
		if !slices.Equal(got, want) {
			return fmt.Errorf("received on %s:\n  %s\nwant:\n  %s", ifB, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}

		// An address still in duplicate address detection (added without NODAD, by hand) must
		// not be advertised: a duplicate would steal it from its owner.
		tentative := netip.MustParsePrefix("fd00::200/64")
		link, err := netlink.LinkByName(ifA)
		if err == nil {
			err = netlink.AddrAdd(link, toAddr(tentative))
		}
		if err != nil {
			return err
		}
		if err := Announce(context.Background(), ifA, tentative, 1, 0); !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("Announce of tentative %s = %v, want a refusal to bind (EADDRNOTAVAIL)", tentative, err)
		}
		if got, err = collect(fd, 100*time.Millisecond, describeNA); err != nil || len(got) != 0 {
			return fmt.Errorf("for a tentative address received %q, %v; want nothing", got, err)
		}
		return nil
	})
}

func TestAnnounceRefusesLoopback(t *testing.T) {
	inNetns(t, func() error {
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			return err
		}
		p := netip.MustParsePrefix("10.9.9.9/32")
		if _, err := Add("lo", p); err != nil {
			return err
		}
		if err := Announce(context.Background(), "lo", p, 1, 0); err == nil || !strings.Contains(err.Error(), "loopback or NOARP") {
			return fmt.Errorf("Announce on lo = %v, want a refusal", err)
		}
		return nil
	})
}
