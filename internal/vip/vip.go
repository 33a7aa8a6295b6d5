// Package vip owns one virtual IP on a local interface: putting it there, taking it off,
// and telling the segment that it moved here (gratuitous ARP for IPv4, an unsolicited
// neighbour advertisement for IPv6). It must not decide when to do any of that: the
// agent's reconcile loop compares who should hold the address with what Present reports
// and calls Add and Announce, or Remove. Every call is stateless and idempotent, so a loop
// that repeats itself after a crash or a lost race does no harm.
//
// Add and Remove need CAP_NET_ADMIN, Announce needs CAP_NET_RAW. Only Linux is supported;
// elsewhere every operation but Parse fails with errors.ErrUnsupported.
package vip

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// Parse parses "10.0.0.100/24" or "fd00::100/64". The prefix length is the subnet the
// address lives in, which decides the route the kernel adds with it; /32 or /128 adds none.
// It rejects addresses that no client could use as a service address.
func Parse(cidr string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		if !strings.Contains(cidr, "/") {
			if _, aerr := netip.ParseAddr(cidr); aerr == nil {
				return netip.Prefix{}, fmt.Errorf("vip parse %q: missing prefix length (e.g. %s/24, or /32 for a lone address)", cidr, cidr)
			}
		}
		return netip.Prefix{}, fmt.Errorf("vip parse: %w", err)
	}
	a := p.Addr()
	var why string
	switch {
	case a.Is4In6():
		why = "an IPv4-mapped IPv6 address; write it as IPv4"
	case a.IsUnspecified():
		why = "the unspecified address"
	case a.IsLoopback():
		why = "a loopback address"
	case a.IsMulticast():
		why = "a multicast address"
	case a.Is6() && a.IsLinkLocalUnicast():
		why = "link-local; clients could not reach it without a zone"
	case a.Is4() && p.Bits() <= 30 && a == p.Masked().Addr():
		why = "the network address of " + p.Masked().String()
	case a.Is4() && p.Bits() <= 30 && a == lastIPv4(p):
		why = "the broadcast address of " + p.Masked().String()
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "the limited broadcast address"
	}
	if why != "" {
		return netip.Prefix{}, fmt.Errorf("vip parse %q: %s", cidr, why)
	}
	return p, nil
}

// lastIPv4 returns the highest address of p: its broadcast address when p is /30 or shorter
// (/31 has none, RFC 3021).
func lastIPv4(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | (uint32(1)<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
