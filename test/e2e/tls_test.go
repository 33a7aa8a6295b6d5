package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9/logging"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
	"github.com/redis-ha-agent/redis-ha-agent/test/box"
)

// tlsACLConf turns TLS and the ACL users on, as a user's drop-in would.
const tlsACLConf = "printf '[tls]\\nenabled = true\\n[auth]\\nacl = true\\n' > /etc/redis-ha/conf.d/20-tls.conf\n"

// TestTLS replays the user's story twice side by side: as shipped, and with
// tls.enabled and auth.acl (certificates from a CA made here, one per box
// naming its address, in /etc/redis-ha/tls). On each group a kill -9 of
// the master's redis and a switchover are measured as TestFault measures
// them, the clients being go-redis as users configure it, over TLS with the
// CA on the second: the same bounds hold. On the TLS group redis-cli --tls
// works and plain text is refused on every port. The reports end in one
// table, plain beside TLS.
func TestTLS(t *testing.T) {
	requireDeb(t, "RHA_DEB")
	logging.Disable()
	var res results
	t.Cleanup(func() { t.Logf("plain beside TLS + ACL:\n%s", res.table()) })
	faults := []fault{
		{name: "master's redis killed (-9)", lost: 10, outage: 2 * time.Second, failovers: 1, inject: killRedis},
		{name: "planned switchover", lost: 0, outage: time.Second, failovers: 1, inject: switchover},
	}
	measure := func(t *testing.T, ctx context.Context, fg *faultGroup, label string, order int) {
		for i, f := range faults {
			if !t.Run(f.name, func(t *testing.T) {
				rep := fg.run(t, ctx, f)
				rep.Fault = label + ": " + rep.Fault
				res.add(order+2*i, rep)
			}) {
				return
			}
		}
	}

	t.Run("plain", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t, 12*time.Minute)
		measure(t, ctx, newFaultGroup(t, ctx), "plain", 1)
	})

	t.Run("tls+acl", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t, 12*time.Minute)
		ca := testutil.NewCA(t)
		caFile := filepath.Join(t.TempDir(), "ca.crt")
		if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca.PEM)
		fg := newFaultGroupOpts(t, ctx, groupOpts{
			extra:  tlsACLConf,
			tls:    &tls.Config{RootCAs: pool},
			caFile: caFile,
			setup: func(bx *box.Box) {
				ca.WriteTLS(t, bx.Path("/etc/redis-ha/tls"), bx.Addr)
			},
		})
		tlsOnly(t, ctx, fg)
		measure(t, ctx, fg, "tls+acl", 2)
		tlsOnly(t, ctx, fg)
	})
}

// tlsOnly checks that a TLS client with the CA is served and plain text is
// refused, on every box's redis, sentinel and HTTP API, and that the users
// are the ACL's.
func tlsOnly(t *testing.T, ctx context.Context, fg *faultGroup) {
	t.Helper()
	for _, bx := range fg.boxes {
		out := shIn(t, ctx, bx, `pw=$(cat /etc/redis-ha/password)
tls="--tls --cacert /etc/redis-ha/tls/ca.crt -h `+bx.Addr+`"
redis-cli $tls -a "$pw" --no-auth-warning ping
redis-cli $tls -p 26379 -a "$pw" --no-auth-warning ping
redis-cli $tls -a "$pw" --no-auth-warning acl users | tr '\n' ' '; echo
for p in 6379 26379; do timeout 3 redis-cli -h `+bx.Addr+` -p $p -a "$pw" --no-auth-warning ping 2>&1 | head -1; done
timeout 3 bash -c 'exec 3<>/dev/tcp/`+bx.Addr+`/8008; printf "GET /primary HTTP/1.0\r\n\r\n" >&3; head -1 <&3' 2>&1 | head -1; true`)
		lines := strings.Split(out, "\n")
		t.Logf("box %s:\n%s", bx.Name, out)
		if len(lines) < 6 || lines[0] != "PONG" || lines[1] != "PONG" || strings.TrimSpace(lines[2]) != "agent default replica sentinel" {
			t.Errorf("box %s: TLS clients not served as they should be:\n%s", bx.Name, out)
			continue
		}
		for _, l := range lines[3:] {
			if l == "PONG" || strings.HasPrefix(l, "HTTP/1.") && !strings.Contains(l, " 400 ") {
				t.Errorf("box %s: plain text served: %q", bx.Name, l)
			}
		}
	}
	// And from the clients' namespace, through the group's redis-cli.
	if out, err := fg.client(ctx, fg.boxes[0].Addr+":6379", "PING"); err != nil || out != "PONG" {
		t.Errorf("redis-cli --tls from the clients' namespace: %q, %v", out, err)
	}
}
