package vip

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    string // the prefix as returned, address not masked
		wantErr string // substring of the error
	}{
		{in: "10.0.0.100/24", want: "10.0.0.100/24"},
		{in: "10.0.0.100/32", want: "10.0.0.100/32"},
		{in: "192.168.1.0/31", want: "192.168.1.0/31"}, // RFC 3021: both /31 addresses are hosts
		{in: "192.168.1.1/31", want: "192.168.1.1/31"},
		{in: "fd00::100/64", want: "fd00::100/64"},
		{in: "2001:db8::1/128", want: "2001:db8::1/128"},
		{in: "10.0.0.100", wantErr: "missing prefix length"},
		{in: "fd00::100", wantErr: "missing prefix length"},
		{in: "", wantErr: "vip parse"},
		{in: "eth0", wantErr: "vip parse"},
		{in: "10.0.0.100/33", wantErr: "vip parse"},
		{in: "10.0.0.100/", wantErr: "vip parse"},
		{in: " 10.0.0.100/24", wantErr: "vip parse"},
		{in: "fe80::1%eth0/64", wantErr: "vip parse"},
		{in: "fe80::1/64", wantErr: "link-local"},
		{in: "::ffff:10.0.0.1/120", wantErr: "IPv4-mapped"},
		{in: "0.0.0.0/0", wantErr: "unspecified"},
		{in: "::/0", wantErr: "unspecified"},
		{in: "127.0.0.2/8", wantErr: "loopback"},
		{in: "::1/128", wantErr: "loopback"},
		{in: "224.0.0.18/32", wantErr: "multicast"},
		{in: "ff02::1/128", wantErr: "multicast"},
		{in: "10.0.0.0/24", wantErr: "network address of 10.0.0.0/24"},
		{in: "10.0.0.255/24", wantErr: "broadcast address of 10.0.0.0/24"},
		{in: "10.0.0.3/30", wantErr: "broadcast address of 10.0.0.0/30"},
		{in: "255.255.255.255/32", wantErr: "limited broadcast"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				if got != (netip.Prefix{}) {
					t.Errorf("Parse(%q) returned %v with its error; want the zero prefix", tt.in, got)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("Parse(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}
