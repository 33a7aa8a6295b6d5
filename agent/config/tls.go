package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/internal/safefile"
)

// maxPEM bounds a certificate, key or CA file: a chain of a few
// certificates is a few kB.
const maxPEM = 1 << 20

// tlsFacts is what validateTLS needs of the machine: the three files and
// the time.
type tlsFacts struct {
	cert, key, ca fileFact
	now           time.Time
}

func gatherTLS(c *Config) tlsFacts {
	f := tlsFacts{now: time.Now()}
	if !c.TLS.Enabled {
		return f
	}
	read := func(path string) fileFact {
		var ff fileFact
		if !filepath.IsAbs(path) {
			return ff
		}
		var fi fs.FileInfo
		ff.data, fi, ff.err = safefile.ReadConfig(path, maxPEM)
		if fi != nil {
			ff.mode = fi.Mode()
		}
		return ff
	}
	f.cert, f.key, f.ca = read(c.TLS.CertFile), read(c.TLS.KeyFile), read(c.TLS.CAFile)
	return f
}

// validateTLS checks tls.* and resolves Certs: every file readable, the
// key not readable by others and matching the certificate, the
// certificate current, signed by the CA, fit for both ends of a connection
// (redis presents it to clients and, replicating, to its master) and
// naming node.announce, the address peers and the agent dial.
func validateTLS(v *checker, c *Config, f tlsFacts) {
	if !c.TLS.Enabled {
		return
	}
	before := len(v.probs)
	ok := true
	for _, file := range []struct {
		key, path string
		fact      fileFact
	}{{"tls.cert_file", c.TLS.CertFile, f.cert}, {"tls.key_file", c.TLS.KeyFile, f.key}, {"tls.ca_file", c.TLS.CAFile, f.ca}} {
		switch {
		case !filepath.IsAbs(file.path):
			v.add(file.key, "%q: must be an absolute path", file.path)
			ok = false
		case file.fact.err != nil:
			v.add(file.key, "%s: %s", file.path, ioMsg("read", file.fact.err))
			v.probs[len(v.probs)-1].access = errors.Is(file.fact.err, fs.ErrPermission)
			ok = false
		}
	}
	if !ok {
		return
	}
	if f.key.mode&0o007 != 0 {
		v.add("tls.key_file", "%s is readable or writable by others (mode %04o): run chmod 0600 %s", c.TLS.KeyFile, f.key.mode.Perm(), c.TLS.KeyFile)
		return
	}
	pair, err := tls.X509KeyPair(f.cert.data, f.key.data)
	if err != nil {
		v.add("tls.key_file", "%s and %s do not make a key pair: %v", c.TLS.CertFile, c.TLS.KeyFile, err)
		return
	}
	leaf := pair.Leaf
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(f.ca.data) {
		v.add("tls.ca_file", "%s holds no PEM certificate", c.TLS.CAFile)
		return
	}
	switch {
	case f.now.After(leaf.NotAfter):
		v.add("tls.cert_file", "%s expired on %s", c.TLS.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	case f.now.Before(leaf.NotBefore):
		v.add("tls.cert_file", "%s is not valid before %s (is this box's clock right?)", c.TLS.CertFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if ic, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(ic)
		}
	}
	// At a time the certificate is valid: expiry is reported above.
	at := f.now
	if at.Before(leaf.NotBefore) || at.After(leaf.NotAfter) {
		at = leaf.NotBefore
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		v.add("tls.cert_file", "%s is not signed by tls.ca_file %s: %v", c.TLS.CertFile, c.TLS.CAFile, err)
	}
	if u := leaf.ExtKeyUsage; len(u) > 0 && !slices.Contains(u, x509.ExtKeyUsageAny) {
		for _, want := range []struct {
			eku  x509.ExtKeyUsage
			name string
		}{{x509.ExtKeyUsageServerAuth, "serverAuth"}, {x509.ExtKeyUsageClientAuth, "clientAuth"}} {
			if !slices.Contains(u, want.eku) {
				v.add("tls.cert_file", "%s's extended key usage lacks %s: redis presents it as a server to clients and as a client to its master and the sentinels", c.TLS.CertFile, want.name)
			}
		}
	}
	if host := c.Self.Host; host != "" {
		if err := leaf.VerifyHostname(host); err != nil {
			v.add("tls.cert_file", "%s does not name %s, this box's address (node.announce): its names are %s", c.TLS.CertFile, host, certNames(leaf))
		}
	}
	if len(v.probs) > before {
		return
	}
	c.Certs = &Certs{Cert: f.cert.data, Key: f.key.data, CA: f.ca.data, NotAfter: leaf.NotAfter,
		Client: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}
}

func certNames(c *x509.Certificate) string {
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "none (no subject alternative names)"
	}
	return strings.Join(names, ", ")
}
