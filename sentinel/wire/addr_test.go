package wire

import (
	"strings"
	"testing"
)

func TestParseAddr(t *testing.T) {
	cases := []struct {
		in   string
		want Addr
		err  string
	}{
		{in: "10.0.0.1", want: Addr{"10.0.0.1", 6379}},
		{in: "10.0.0.1:6380", want: Addr{"10.0.0.1", 6380}},
		{in: "Redis-A.Example.net", want: Addr{"redis-a.example.net", 6379}},
		{in: "redis-a:7000", want: Addr{"redis-a", 7000}},
		{in: "::1", want: Addr{"::1", 6379}},
		{in: "[::1]", want: Addr{"::1", 6379}},
		{in: "[2001:db8::0001]", want: Addr{"2001:db8::1", 6379}},
		{in: "[2001:db8::1]:6380", want: Addr{"2001:db8::1", 6380}},
		{in: "::ffff:10.0.0.1", want: Addr{"10.0.0.1", 6379}},
		{in: "host:", want: Addr{"host", 6379}}, // as net.SplitHostPort reads it
		{in: "", err: "not an IP address or host name"},
		{in: ":6379", err: "not an IP address or host name"},
		{in: "bad host", err: "not an IP address or host name"},
		{in: "-bad", err: "not an IP address or host name"},
		{in: "10.0.0.1:0", err: "want 1..65535"},
		{in: "10.0.0.1:65536", err: "want 1..65535"},
		{in: "10.0.0.1:x", err: "want 1..65535"},
		{in: "[10.0.0.1]", err: "brackets are for IPv6"},
		{in: "[nope]", err: "brackets are for IPv6"},
		{in: "[::1", err: "want host or host:port"},
		{in: "0.0.0.0", err: "cannot be a peer's address"},
		{in: "ff02::1", err: "cannot be a peer's address"},
		{in: "a:b:c", err: "want host or host:port"},
		{in: "fe80::1%eth0", err: "want host or host:port"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseAddr(tc.in, 6379)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseAddr(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseAddr(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
	if a, err := ParseAddr("10.0.0.1", 0); err != nil || a.Port != 0 {
		t.Errorf("ParseAddr without a port and defPort 0 = %v, %v; want port 0", a, err)
	}
}

func TestAddrString(t *testing.T) {
	for a, want := range map[Addr]string{
		{"::1", 6379}:      "[::1]:6379",
		{"10.0.0.1", 6379}: "10.0.0.1:6379",
		{"redis-a", 1}:     "redis-a:1",
	} {
		if got := a.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", a, got, want)
		}
	}
}

// FuzzParseAddr: whatever an operator types, ParseAddr either refuses it or
// returns an address that parses back to itself.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "[::1]:6380", "Redis-A:7000", "a:b:c", "[10.0.0.1]:1", "host:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddr(s, 6379)
		if err != nil {
			return
		}
		if a.Port < 1 || a.Port > 65535 || !ValidHost(a.Host) {
			t.Fatalf("ParseAddr(%q) = %#v: not a usable address", s, a)
		}
		b, err := ParseAddr(a.String(), 1)
		if err != nil || b != a {
			t.Fatalf("ParseAddr(%q) = %v, which parses back as %v, %v", s, a, b, err)
		}
	})
}
