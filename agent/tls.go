package agent

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/internal/atomicfile"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// redis and sentinel run as the redis user and cannot read tls.key_file,
// which only root may (PRODUCT.md refuses a key readable by others). The
// agent hands them copies in the state directory, theirs and private, as it
// hands them the password inside redis.conf; a reload rewrites the copies
// before it tells redis to read them again.

// tlsFiles is where redis and sentinel read tls.*; nil when TLS is off.
func tlsFiles(cfg *config.Config) *sentinel.TLSFiles {
	if cfg.Certs == nil {
		return nil
	}
	h := sha256.New()
	for _, b := range [][]byte{cfg.Certs.Cert, cfg.Certs.Key, cfg.Certs.CA} {
		fmt.Fprintf(h, "%d\x00", len(b))
		h.Write(b)
	}
	dir := cfg.Node.DataDir
	return &sentinel.TLSFiles{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key"),
		CA: filepath.Join(dir, "tls-ca.crt"), Digest: hex.EncodeToString(h.Sum(nil)[:12])}
}

// writeTLS writes the copies tlsFiles names, owned by the children's user.
func (n *node) writeTLS(cfg *config.Config) error {
	f := tlsFiles(cfg)
	if f == nil {
		return nil
	}
	uid, gid := n.owner()
	for _, w := range []struct {
		path string
		data []byte
	}{{f.Cert, cfg.Certs.Cert}, {f.Key, cfg.Certs.Key}, {f.CA, cfg.Certs.CA}} {
		if err := atomicfile.WriteFile(w.path, w.data, 0o600, uid, gid); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
	}
	return nil
}

// httpTLS is the HTTP API's server side when tls.enabled: the certificate
// in force, read at each handshake, so that a renewal applies without
// moving the listener.
func (n *node) httpTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		cfg := n.config()
		if cfg.Certs == nil || len(cfg.Certs.Client.Certificates) == 0 {
			return nil, errors.New("tls is off")
		}
		return &cfg.Certs.Client.Certificates[0], nil
	}}
}

// speaksMismatch says when a peer's port speaks the other protocol than
// this box (tls.enabled differs between boxes), "" when it speaks the same
// or cannot be told. Plain and TLS are never mixed silently: check and
// status say so.
func speaksMismatch(ctx context.Context, cfg *config.Config, a wire.Addr) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", a.String())
	if err != nil {
		return ""
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if cfg.Certs != nil {
		tc := cfg.Certs.Client.Clone()
		tc.ServerName = a.Host
		var rh tls.RecordHeaderError
		if err := tls.Client(conn, tc).HandshakeContext(ctx); errors.As(err, &rh) {
			return fmt.Sprintf("%s answers in plain text, this box has tls.enabled: tls.enabled differs between the boxes", a)
		}
		return ""
	}
	// A plain redis or sentinel answers PING with +PONG or -NOAUTH; a TLS
	// port reads the bytes as a broken handshake and closes, or answers
	// with a TLS alert.
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return ""
	}
	var b [1]byte
	if n, _ := conn.Read(b[:]); n == 0 || (b[0] != '+' && b[0] != '-') {
		return fmt.Sprintf("%s does not answer in plain text (TLS?), this box has tls.enabled false: tls.enabled differs between the boxes", a)
	}
	return ""
}
