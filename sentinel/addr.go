package sentinel

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Addr is a host and port as Redis and Sentinel announce them.
type Addr struct {
	Host string
	Port int
}

// String renders host:port, bracketing IPv6 hosts.
func (a Addr) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// IsZero reports whether a is unset.
func (a Addr) IsZero() bool { return a.Host == "" && a.Port == 0 }

// ParseAddr parses "host", "host:port", "[v6]" or "[v6]:port"; a missing port
// is defPort. A bare IPv6 address ("::1") is a host without a port.
func ParseAddr(s string, defPort int) (Addr, error) {
	if s == "" {
		return Addr{}, fmt.Errorf("parse address: empty")
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		// No port: the whole string is the host, which may only contain
		// colons if it is an IPv6 address, bracketed or not.
		host, portStr = s, ""
		bracketed := len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']'
		if bracketed {
			host = s[1 : len(s)-1]
		}
		if (bracketed || strings.Contains(host, ":")) && net.ParseIP(host) == nil || strings.ContainsAny(host, "[]") {
			return Addr{}, fmt.Errorf("parse address %q: %w", s, err)
		}
	}
	if host == "" {
		return Addr{}, fmt.Errorf("parse address %q: empty host", s)
	}
	port := defPort
	if err == nil {
		p, perr := strconv.Atoi(portStr)
		if perr != nil || p < 1 || p > 65535 {
			return Addr{}, fmt.Errorf("parse address %q: bad port %q", s, portStr)
		}
		port = p
	}
	return Addr{Host: host, Port: port}, nil
}
