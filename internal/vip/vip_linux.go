//go:build linux

package vip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// labelSuffix marks the IPv4 address as ours in `ip addr` (the kernel wants labels to start
// with the interface name and fit IFNAMSIZ; IPv6 has no labels).
const labelSuffix = ":rha"

// InterfaceFor returns the name of the interface holding ip (for vip.interface's default:
// the interface holding node.announce). An address held by more than one interface is an
// error rather than a guess.
func InterfaceFor(ip netip.Addr) (string, error) {
	ip = ip.WithZone("").Unmap()
	addrs, err := addrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return "", fmt.Errorf("vip interface for %s: %w", ip, err)
	}
	var index []int
	for _, a := range addrs {
		if got, ok := netip.AddrFromSlice(a.IP); ok && got.Unmap() == ip && !slices.Contains(index, a.LinkIndex) {
			index = append(index, a.LinkIndex)
		}
	}
	var names []string
	for _, i := range index {
		link, err := netlink.LinkByIndex(i)
		if err != nil {
			return "", fmt.Errorf("vip interface for %s: link %d: %w", ip, i, err)
		}
		names = append(names, link.Attrs().Name)
	}
	switch len(names) {
	case 0:
		return "", fmt.Errorf("vip interface for %s: no interface holds it", ip)
	case 1:
		return names[0], nil
	}
	slices.Sort(names)
	return "", fmt.Errorf("vip interface for %s: held by %v; name the interface", ip, names)
}

// Present reports whether the address, with this prefix length, is on the interface.
func Present(iface string, p netip.Prefix) (bool, error) {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return false, fmt.Errorf("vip present %s on %s: %w", p, iface, err)
	}
	ok, err := present(link, p)
	if err != nil {
		return false, fmt.Errorf("vip present %s on %s: %w", p, iface, err)
	}
	return ok, nil
}

// Add puts the address on the interface if missing and returns whether it changed anything.
// IPv6 goes on with IFA_F_NODAD: duplicate address detection would keep it tentative, neither
// bindable nor usable as a source, for about a second after every failover.
func Add(iface string, p netip.Prefix) (changed bool, err error) {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return false, fmt.Errorf("vip add %s on %s: %w", p, iface, err)
	}
	ok, err := present(link, p)
	if err != nil {
		return false, fmt.Errorf("vip add %s on %s: %w", p, iface, err)
	}
	if ok {
		return false, nil
	}
	a := toAddr(p)
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	} else if len(iface)+len(labelSuffix) < unix.IFNAMSIZ {
		a.Label = iface + labelSuffix
	}
	if err := netlink.AddrAdd(link, a); err != nil {
		// Someone else added it between our look and our add: the outcome we wanted.
		if errors.Is(err, unix.EEXIST) {
			if ok, perr := present(link, p); perr == nil && ok {
				return false, nil
			}
		}
		return false, fmt.Errorf("vip add %s on %s: %w", p, iface, err)
	}
	return true, nil
}

// Remove deletes the address from the interface if present and returns whether it changed
// anything. The same address with another prefix length is left alone.
func Remove(iface string, p netip.Prefix) (changed bool, err error) {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return false, fmt.Errorf("vip remove %s on %s: %w", p, iface, err)
	}
	ok, err := present(link, p)
	if err != nil {
		return false, fmt.Errorf("vip remove %s on %s: %w", p, iface, err)
	}
	if !ok {
		return false, nil
	}
	if err := netlink.AddrDel(link, toAddr(p)); err != nil {
		if errors.Is(err, unix.EADDRNOTAVAIL) { // removed by someone else meanwhile
			return false, nil
		}
		return false, fmt.Errorf("vip remove %s on %s: %w", p, iface, err)
	}
	return true, nil
}

// Announce tells the segment that the address moved here, so that neighbours replace the old
// holder's MAC in their caches now instead of when the entries time out.
//
// IPv4 sends gratuitous ARP in both forms, a request (op 1, SPA = TPA = VIP, THA = 0) and a
// reply (op 2, THA = our MAC), because devices differ in which one they honour. IPv6 sends an
// unsolicited neighbour advertisement to ff02::1 with the Override flag and hop limit 255
// (receivers drop any other, RFC 4861 7.1.2). Each is sent repeat times (at least once), gap
// apart, to survive a lost frame. It refuses an address not on the interface: announcing an
// address we do not hold would steal it. A cancelled ctx stops it between bursts.
func Announce(ctx context.Context, iface string, p netip.Prefix, repeat int, gap time.Duration) error {
	fail := func(err error) error { return fmt.Errorf("vip announce %s on %s: %w", p, iface, err) }
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return fail(err)
	}
	attrs := link.Attrs()
	mac := attrs.HardwareAddr
	switch {
	case attrs.RawFlags&unix.IFF_NOARP != 0 || attrs.Flags&net.FlagLoopback != 0:
		return fail(errors.New("interface does not resolve neighbours (loopback or NOARP)"))
	case len(mac) != 6:
		return fail(fmt.Errorf("interface has no Ethernet address (%q)", mac))
	}
	if ok, err := present(link, p); err != nil {
		return fail(err)
	} else if !ok {
		return fail(errors.New("address is not on the interface"))
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}

	var fd int
	var bursts [][]byte
	var to unix.Sockaddr
	if p.Addr().Is4() {
		// SOCK_DGRAM: we write the ARP payload, the kernel adds the Ethernet header for the
		// destination in to. Protocol 0 on the socket itself keeps it from receiving anything.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fail(fmt.Errorf("socket: %w", err))
		}
		bursts = [][]byte{
			arpPacket(1, mac, p.Addr(), make(net.HardwareAddr, 6)),
			arpPacket(2, mac, p.Addr(), mac),
		}
		to = &unix.SockaddrLinklayer{
			Protocol: htons(unix.ETH_P_ARP),
			Ifindex:  attrs.Index,
			Halen:    6,
			Addr:     [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		}
	} else {
		fd, err = icmp6Socket(attrs.Index, p.Addr())
		if err != nil {
			return fail(err)
		}
		bursts = [][]byte{naPacket(mac, p.Addr())}
		to = &unix.SockaddrInet6{Addr: netip.IPv6LinkLocalAllNodes().As16(), ZoneId: uint32(attrs.Index)}
	}
	defer unix.Close(fd)

	for i := 0; ; i++ {
		for _, b := range bursts {
			if err := unix.Sendto(fd, b, 0, to); err != nil {
				return fail(fmt.Errorf("send: %w", err))
			}
		}
		if i+1 >= repeat {
			return nil
		}
		t := time.NewTimer(gap)
		select {
		case <-ctx.Done():
			t.Stop()
			return fail(ctx.Err())
		case <-t.C:
		}
	}
}

// icmp6Socket opens a raw ICMPv6 socket that sends link-scope multicast out of ifindex with
// hop limit 255 and the VIP as source, as the kernel does for its own unsolicited adverts.
// Binding fails while the address is tentative, and a tentative address must not be advertised.
// The kernel fills in the ICMPv6 checksum on raw ICMPv6 sockets (RFC 3542 3.1).
func icmp6Socket(ifindex int, src netip.Addr) (int, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	// Receive nothing: the socket only sends, and would otherwise queue every ICMPv6 packet.
	var blockAll unix.ICMPv6Filter
	for i := range blockAll.Data {
		blockAll.Data[i] = ^uint32(0)
	}
	err = unix.SetsockoptICMPv6Filter(fd, unix.SOL_ICMPV6, unix.ICMPV6_FILTER, &blockAll)
	if err == nil {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255)
	}
	if err == nil {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifindex)
	}
	if err == nil { // our own stack would log "advertised our address" for a looped-back copy
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("setsockopt: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: src.As16(), ZoneId: uint32(ifindex)}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind %s: %w", src, err)
	}
	return fd, nil
}

// arpPacket builds the 28-byte ARP payload for Ethernet/IPv4 claiming ip for mac.
func arpPacket(op uint16, mac net.HardwareAddr, ip netip.Addr, tha net.HardwareAddr) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1) // hardware type Ethernet
	binary.BigEndian.PutUint16(b[2:], unix.ETH_P_IP)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], op)
	ip4 := ip.As4()
	copy(b[8:14], mac)
	copy(b[14:18], ip4[:])
	copy(b[18:24], tha)
	copy(b[24:28], ip4[:])
	return b
}

// naPacket builds an unsolicited neighbour advertisement (RFC 4861 4.4) for ip at mac:
// Override set so that receivers replace a cached MAC, Solicited and Router clear, and a
// target link-layer address option. The checksum is left to the kernel.
func naPacket(mac net.HardwareAddr, ip netip.Addr) []byte {
	b := make([]byte, 32)
	b[0] = 136  // ICMPv6 neighbour advertisement, code 0
	b[4] = 0x20 // Override
	t := ip.As16()
	copy(b[8:24], t[:])
	b[24], b[25] = 2, 1 // target link-layer address option, 8 octets
	copy(b[26:32], mac)
	return b
}

func present(link netlink.Link, p netip.Prefix) (bool, error) {
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := addrList(link, family)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		ones, _ := a.Mask.Size()
		if got, ok := netip.AddrFromSlice(a.IP); ok && got.Unmap() == p.Addr() && ones == p.Bits() {
			return true, nil
		}
	}
	return false, nil
}

// addrList retries a dump that the kernel flags as interrupted by a concurrent change,
// since its result may be missing exactly the address we are looking for.
func addrList(link netlink.Link, family int) ([]netlink.Addr, error) {
	var err error
	for range 5 {
		var addrs []netlink.Addr
		addrs, err = netlink.AddrList(link, family)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return addrs, err
		}
	}
	return nil, fmt.Errorf("list addresses: %w", err)
}

func toAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
}

// htons converts to network byte order for the AF_PACKET protocol fields.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
