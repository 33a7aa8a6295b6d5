package config

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// TestTLSChecked: what check-config says of tls.* files, each case a clear
// problem at tls.*, and a good set resolved into Certs.
func TestTLSChecked(t *testing.T) {
	ca := testutil.NewCA(t)
	other := testutil.NewCA(t)
	cases := []struct {
		name  string
		setup func(t *testing.T, tlsDir string)
		want  string // "" = accepted
	}{
		{"good", nil, ""},
		{"key readable by others", func(t *testing.T, d string) {
			if err := os.Chmod(filepath.Join(d, "redis.key"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "tls.key_file: @TLS@/redis.key is readable or writable by others (mode 0644)"},
		{"key of another certificate", func(t *testing.T, d string) {
			_, key := ca.Issue(t, nil, "10.0.0.1")
			writeFile(t, filepath.Join(d, "redis.key"), string(key), 0o600)
		}, "tls.key_file: @TLS@/redis.crt and @TLS@/redis.key do not make a key pair"},
		{"expired", func(t *testing.T, d string) {
			cert, key := ca.Issue(t, func(c *x509.Certificate) {
				c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
			}, "10.0.0.1")
			writeFile(t, filepath.Join(d, "redis.crt"), string(cert), 0o644)
			writeFile(t, filepath.Join(d, "redis.key"), string(key), 0o600)
		}, "tls.cert_file: @TLS@/redis.crt expired on"},
		{"signed by another CA", func(t *testing.T, d string) {
			cert, key := other.Issue(t, nil, "10.0.0.1")
			writeFile(t, filepath.Join(d, "redis.crt"), string(cert), 0o644)
			writeFile(t, filepath.Join(d, "redis.key"), string(key), 0o600)
		}, "tls.cert_file: @TLS@/redis.crt is not signed by tls.ca_file @TLS@/ca.crt"},
		{"names another box", func(t *testing.T, d string) {
			cert, key := ca.Issue(t, nil, "10.0.0.2", "redis-b.example.net")
			writeFile(t, filepath.Join(d, "redis.crt"), string(cert), 0o644)
			writeFile(t, filepath.Join(d, "redis.key"), string(key), 0o600)
		}, "tls.cert_file: @TLS@/redis.crt does not name 10.0.0.1, this box's address (node.announce): its names are redis-b.example.net, 10.0.0.2"},
		{"server only", func(t *testing.T, d string) {
			cert, key := ca.Issue(t, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }, "10.0.0.1")
			writeFile(t, filepath.Join(d, "redis.crt"), string(cert), 0o644)
			writeFile(t, filepath.Join(d, "redis.key"), string(key), 0o600)
		}, "tls.cert_file: @TLS@/redis.crt's extended key usage lacks clientAuth"},
		{"no CA", func(t *testing.T, d string) {
			if err := os.Remove(filepath.Join(d, "ca.crt")); err != nil {
				t.Fatal(err)
			}
		}, "tls.ca_file: @TLS@/ca.crt: file not found"},
		{"CA is not PEM", func(t *testing.T, d string) {
			writeFile(t, filepath.Join(d, "ca.crt"), "not a certificate\n", 0o644)
		}, "tls.ca_file: @TLS@/ca.crt holds no PEM certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := secTree(t)
			tlsDir := ca.WriteTLS(t, filepath.Join(dir, "tls"), "10.0.0.1")
			if tc.setup != nil {
				tc.setup(t, tlsDir)
			}
			writeFile(t, filepath.Join(dir, "conf.d", "10-tls.conf"), fmt.Sprintf(`[cluster]
peers = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
bootstrap_primary = "10.0.0.1"
[tls]
enabled = true
cert_file = "%[1]s/redis.crt"
key_file = "%[1]s/redis.key"
ca_file = "%[1]s/ca.crt"
`, tlsDir), 0o644)
			c, err := Load(filepath.Join(dir, "redis-ha.conf"), testEnv([]string{"127.0.0.1", "10.0.0.1"}, nil))
			want := strings.ReplaceAll(tc.want, "@TLS@", tlsDir)
			switch {
			case want == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case want == "":
				if c.Certs == nil || c.Certs.Client == nil || len(c.Certs.Client.Certificates) != 1 {
					t.Fatalf("Certs not resolved: %+v", c.Certs)
				}
			case err == nil || !strings.Contains(err.Error(), want):
				t.Errorf("Load: %v\nwant a problem containing %q", err, want)
			}
		})
	}
}

// TestTLSRenewalChangesSum: a renewed certificate must reach redis on the
// next reload although no configuration file changed.
func TestTLSRenewalChangesSum(t *testing.T) {
	ca := testutil.NewCA(t)
	dir := secTree(t)
	tlsDir := ca.WriteTLS(t, filepath.Join(dir, "tls"), "127.0.0.1")
	writeFile(t, filepath.Join(dir, "conf.d", "10-tls.conf"), fmt.Sprintf("[tls]\nenabled = true\ncert_file = \"%[1]s/redis.crt\"\nkey_file = \"%[1]s/redis.key\"\nca_file = \"%[1]s/ca.crt\"\n", tlsDir), 0o644)
	load := func() *Config {
		c, err := Load(filepath.Join(dir, "redis-ha.conf"), testEnv([]string{"127.0.0.1"}, nil))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := load()
	if again := load(); again.Sum != before.Sum {
		t.Fatal("the same files give another sum")
	}
	ca.WriteTLS(t, tlsDir, "127.0.0.1")
	if after := load(); after.Sum == before.Sum {
		t.Error("a renewed certificate leaves the sum unchanged: a reload would not apply it")
	}
}
