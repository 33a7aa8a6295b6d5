package cluster

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// TestTLS: a group with tls.enabled, on loopback. Every hop is TLS (the
// agents' probes, replication, the sentinels, the HTTP API); plain text is
// refused on every port; failover and switchover keep their bounds for a
// TLS client; a renewed certificate is taken on reload without a restart;
// a box whose tls.enabled differs is reported.
func TestTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: three real agents")
	}
	ca := testutil.NewCA(t)
	g := newGroupTLS(t, 6740, "2s", ca)
	g.startAll()
	master := g.waitConverged(90 * time.Second)
	caFile := filepath.Join(g.nodes[0].dir, "tls", "ca.crt")

	t.Run("plain text is refused on every port", func(t *testing.T) {
		for _, n := range g.nodes {
			for _, port := range []int{n.port, n.port + 20000} {
				if reply := plainPing(t, port); strings.HasPrefix(reply, "+") || strings.HasPrefix(reply, "-") {
					t.Errorf("node %d port %d answered plain text: %q", n.i, port, reply)
				}
			}
			url := strings.Replace(n.httpURL(), "https://", "http://", 1) + "/primary"
			if r, err := (&http.Client{Timeout: time.Second}).Get(url); err == nil {
				r.Body.Close()
				if r.StatusCode == 200 || r.StatusCode == 503 {
					t.Errorf("node %d: plain GET /primary answered %d", n.i, r.StatusCode)
				}
			}
		}
	})

	t.Run("redis-cli --tls with the CA works", func(t *testing.T) {
		for _, port := range []int{master.port, master.port + 20000} {
			out, err := exec.Command("redis-cli", "-p", fmt.Sprint(port), "--tls", "--cacert", caFile,
				"-a", password, "--no-auth-warning", "ping").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "PONG" {
				t.Errorf("redis-cli --tls -p %d ping: %q, %v", port, out, err)
			}
		}
	})

	t.Run("status and check over TLS", func(t *testing.T) {
		if out, code := cli(t, "status", "--config", g.nodes[1].confPath()); code != 0 {
			t.Errorf("status: exit %d\n%s", code, out)
		}
		out, _ := cli(t, "check", "--config", g.nodes[1].confPath())
		if !strings.Contains(out, "  tls: ") || !strings.Contains(out, "names 127.0.0.1, signed by") {
			t.Errorf("check says nothing of the certificate:\n%s", out)
		}
	})

	t.Run("a box whose tls.enabled differs is reported", func(t *testing.T) {
		n := g.nodes[1]
		b, err := os.ReadFile(n.confPath())
		if err != nil {
			t.Fatal(err)
		}
		plain := filepath.Join(t.TempDir(), "redis-ha.conf")
		if err := os.WriteFile(plain, []byte(strings.Replace(string(b), "enabled = true", "enabled = false", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, code := cli(t, "check", "--config", plain)
		if code == 0 || !strings.Contains(out, "tls.enabled differs") {
			t.Errorf("check of a plain box in a TLS group: exit %d\n%s", code, out)
		}
		out, code = cli(t, "status", "--config", plain)
		if code == 0 || !strings.Contains(out, "tls.enabled differs") {
			t.Errorf("status of a plain box in a TLS group: exit %d\n%s", code, out)
		}
	})

	t.Run("kill -9 of the master's redis, a TLS client writing", func(t *testing.T) {
		w := startWriter(t, g)
		testutil.WaitUntil(t, 10*time.Second, "writes flowing", func() bool { return w.ackedCount() > 200 })
		killedAt := time.Now()
		if err := syscall.Kill(master.pid(t, "redis"), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		next := g.waitNewMaster(t, master, 60*time.Second, "a new master")
		t.Logf("new master node %d, %.1fs after the kill", next.i, time.Since(killedAt).Seconds())
		if m := g.waitConverged(60 * time.Second); m != next {
			t.Fatalf("converged on node %d, want %d", m.i, next.i)
		}
		time.Sleep(time.Second)
		w.halt()
		lost := w.lost(t, g.client(next))
		t.Logf("acknowledged writes: %d, lost: %d, errors: %d", w.ackedCount(), len(lost), w.errors)
		if len(lost) > 10 {
			t.Errorf("%d acknowledged writes lost (bound 10)", len(lost))
		}
		master = next
	})

	t.Run("switchover, a TLS client writing", func(t *testing.T) {
		w := startWriter(t, g)
		testutil.WaitUntil(t, 10*time.Second, "writes flowing", func() bool { return w.ackedCount() > 200 })
		out, code := cli(t, "switchover", "--config", master.confPath())
		t.Logf("switchover: %s", strings.TrimSpace(out))
		if code != 0 {
			t.Fatalf("switchover: exit %d", code)
		}
		next := g.waitConverged(60 * time.Second)
		time.Sleep(time.Second)
		w.halt()
		lost := w.lost(t, g.client(next))
		t.Logf("acknowledged writes: %d, lost: %d, errors: %d", w.ackedCount(), len(lost), w.errors)
		if len(lost) > 0 || next == master {
			t.Errorf("switchover from node %d to node %d lost %d acknowledged writes", master.i, next.i, len(lost))
		}
		master = next
	})

	t.Run("a renewed certificate is taken on reload, without a restart", func(t *testing.T) {
		n := g.nodes[2]
		pid := n.pid(t, "redis")
		ca.WriteTLS(t, filepath.Join(n.dir, "tls"), "127.0.0.1")
		want := serialOf(t, filepath.Join(n.dir, "tls", "redis.crt"))
		if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		testutil.WaitUntil(t, 15*time.Second, "redis presents the renewed certificate", func() bool {
			return servedSerial(g, n.port) == want
		})
		testutil.WaitUntil(t, 30*time.Second, "the sentinel presents the renewed certificate", func() bool {
			return servedSerial(g, n.port+20000) == want
		})
		if got := n.pid(t, "redis"); got != pid {
			t.Errorf("redis restarted (pid %d -> %d) for a renewed certificate", pid, got)
		}
		g.waitConverged(60 * time.Second)
	})
}

// plainPing sends PING in plain text and returns the first line back ("" =
// the connection was closed or nothing came).
func plainPing(t *testing.T, port int) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return ""
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return line
}

func serialOf(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

func servedSerial(g *group, port int) string {
	d := &net.Dialer{Timeout: time.Second}
	c, err := tls.DialWithDialer(d, "tcp", fmt.Sprintf("127.0.0.1:%d", port), g.tls)
	if err != nil {
		return ""
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}
