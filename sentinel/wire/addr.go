package wire

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Addr is a host and port as Redis and Sentinel announce them, and as
// cluster.peers names a box (its redis).
type Addr struct {
	Host string
	Port int
}

// String renders host:port, bracketing IPv6 hosts.
func (a Addr) String() string {
	if strings.Contains(a.Host, ":") {
		return "[" + a.Host + "]:" + strconv.Itoa(a.Port)
	}
	return a.Host + ":" + strconv.Itoa(a.Port)
}

// IsZero reports whether a is unset.
func (a Addr) IsZero() bool { return a.Host == "" && a.Port == 0 }

// ParseAddr parses "host", "host:port", "[v6]" or "[v6]:port", as an
// operator writes a box's address (cluster.peers, switchover --to). IP hosts
// come back canonical and names lower-cased, so that equal addresses compare
// equal. Without a port, Port is defPort (0 tells the caller none was given).
func ParseAddr(s string, defPort int) (Addr, error) {
	host, port := s, ""
	switch {
	case isIP(s): // a bare IPv6 address has colons but no port
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		host = s[1 : len(s)-1]
		if ip, err := netip.ParseAddr(host); err != nil || ip.Zone() != "" || ip.Is4() || ip.Is4In6() {
			return Addr{}, fmt.Errorf("%q: brackets are for IPv6 addresses", s)
		}
	case strings.Contains(s, ":"):
		var ok bool
		if host, port, ok = splitHostPort(s); !ok {
			return Addr{}, fmt.Errorf("%q: want host or host:port", s)
		}
	}
	if !ValidHost(host) {
		if host == s {
			return Addr{}, fmt.Errorf("%q is not an IP address or host name", s)
		}
		return Addr{}, fmt.Errorf("%q: %q is not an IP address or host name", s, host)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if ip.IsUnspecified() || ip.IsMulticast() {
			return Addr{}, fmt.Errorf("%q: %s cannot be a peer's address", s, ip)
		}
		host = ip.String()
	} else {
		host = strings.ToLower(host)
	}
	a := Addr{Host: host, Port: defPort}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return Addr{}, fmt.Errorf("%q: port %q: want 1..65535", s, port)
		}
		a.Port = n
	}
	return a, nil
}

// splitHostPort splits "host:port" and "[v6]:port" like net.SplitHostPort,
// which would pull the whole resolver into this package's dependencies.
func splitHostPort(s string) (host, port string, ok bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", false
	}
	host, port = s[:i], s[i+1:]
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return "", "", false
		}
		host = host[1 : len(host)-1]
	} else if strings.ContainsAny(host, ":[]") {
		return "", "", false
	}
	return host, port, true
}

// isIP accepts what net.ParseIP does: IPv4 and IPv6 without a zone.
func isIP(s string) bool {
	ip, err := netip.ParseAddr(s)
	return err == nil && ip.Zone() == ""
}

// ValidHost accepts an IP address or an RFC 1123 host name.
func ValidHost(h string) bool {
	if isIP(h) {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
