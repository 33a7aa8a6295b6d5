// Package cluster runs three real agents on loopback, each supervising a real
// redis-server and sentinel, and checks what a user of the group would see.
package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

const password = "s3cret-pass"

// agentBin is the binary under test, built once by TestMain.
var agentBin string

func TestMain(m *testing.M) {
	logging.Disable() // go-redis reconnect noise during deliberate faults
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flagShort := false
	for _, a := range os.Args {
		if a == "-test.short=true" || a == "-test.short" {
			flagShort = true
		}
	}
	if flagShort {
		return m.Run() // every test here skips itself in -short
	}
	dir, err := os.MkdirTemp("", "rha-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	agentBin = filepath.Join(dir, "redis-ha-agent")
	build := exec.Command("go", "build", "-o", agentBin, "../../cmd/redis-ha-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build agent: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// group is three agents on 127.0.0.1 with redis on base+1..base+3 and their
// sentinels 20000 above.
type group struct {
	t     *testing.T
	root  string
	base  int
	nodes []*agentProc
	tls   *tls.Config // the clients' side when the group has tls.enabled
}

type agentProc struct {
	scheme  string // of the HTTP API: https with tls.enabled
	i       int
	dir     string
	port    int
	logPath string

	mu  sync.Mutex
	cmd *exec.Cmd
}

func newGroup(t *testing.T, base int, downAfter string) *group {
	t.Helper()
	return newGroupWith(t, base, downAfter, nil)
}

// newGroupTLS is newGroup with tls.enabled: every box has a certificate of
// ca for 127.0.0.1, and the test's clients trust ca.
func newGroupTLS(t *testing.T, base int, downAfter string, ca *testutil.CA) *group {
	t.Helper()
	return newGroupWith(t, base, downAfter, ca)
}

func newGroupWith(t *testing.T, base int, downAfter string, ca *testutil.CA) *group {
	t.Helper()
	testutil.RequireRedis(t)
	testutil.RequireRoot(t, "the agent drops its children to the redis user")
	// Children run as the redis user and must traverse to their state dirs.
	root, err := os.MkdirTemp("", "rha-group-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	g := &group{t: t, root: root, base: base}
	pw := filepath.Join(root, "password")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	var peers []string
	for i := 1; i <= 3; i++ {
		peers = append(peers, fmt.Sprintf(`"127.0.0.1:%d"`, base+i))
	}
	for i := 1; i <= 3; i++ {
		port := base + i
		dir := filepath.Join(root, fmt.Sprintf("node%d", i))
		for _, d := range []string{dir, filepath.Join(dir, "conf.d")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		conf := fmt.Sprintf(`[cluster]
peers = [%s]
bootstrap_primary = "127.0.0.1:%d"

[node]
announce = "127.0.0.1:%d"
data_dir = "%s/data"
run_dir = "%s/run"

[redis]
port = %d

[sentinel]
down_after = %q
failover_timeout = "10s"

[auth]
password_file = %q

[tuning]
enabled = false

[http]
listen = "127.0.0.1:%d"

[hooks]
on_role_change = "%s/hook.sh"
`, strings.Join(peers, ", "), base+1, port, dir, dir, port, downAfter, pw, port+12000, dir)
		if ca != nil {
			tlsDir := ca.WriteTLS(t, filepath.Join(dir, "tls"), "127.0.0.1")
			conf += fmt.Sprintf("\n[tls]\nenabled = true\ncert_file = \"%[1]s/redis.crt\"\nkey_file = \"%[1]s/redis.key\"\nca_file = \"%[1]s/ca.crt\"\n", tlsDir)
		}
		hook := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %s/hook.log\n", dir)
		if err := os.WriteFile(filepath.Join(dir, "hook.sh"), []byte(hook), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "redis-ha.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		scheme := "http"
		if ca != nil {
			scheme = "https"
		}
		g.nodes = append(g.nodes, &agentProc{scheme: scheme, i: i, dir: dir, port: port, logPath: filepath.Join(dir, "agent.log")})
	}
	t.Cleanup(func() {
		for _, n := range g.nodes {
			n.stop(t)
		}
		if t.Failed() {
			for _, n := range g.nodes {
				b, _ := os.ReadFile(n.logPath)
				// The agent's own lines tell the story; redis' and
				// sentinel's would push them out of a CI log's tail
				// (RHA_KEEP_LOGS keeps everything).
				var own strings.Builder
				for l := range strings.Lines(string(b)) {
					if !strings.Contains(l, "component=redis") && !strings.Contains(l, "component=sentinel") {
						own.WriteString(l)
					}
				}
				t.Logf("---- agent %d log, without redis' and sentinel's lines ----\n%s", n.i, testutil.Tail(own.String(), 60))
				if d := os.Getenv("RHA_KEEP_LOGS"); d != "" {
					_ = os.WriteFile(filepath.Join(d, fmt.Sprintf("agent%d.log", n.i)), b, 0o644)
				}
			}
		}
		os.RemoveAll(root)
	})
	if ca != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca.PEM)
		g.tls = &tls.Config{RootCAs: pool}
	}
	return g
}

func (n *agentProc) confPath() string { return filepath.Join(n.dir, "redis-ha.conf") }
func (n *agentProc) httpURL() string  { return fmt.Sprintf("%s://127.0.0.1:%d", n.scheme, n.port+12000) }
func (n *agentProc) addr() string     { return fmt.Sprintf("127.0.0.1:%d", n.port) }

func (n *agentProc) start(t *testing.T) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(agentBin, "run", "--config", n.confPath())
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	n.cmd = cmd
}

// stop sends SIGTERM and waits: the agent stops sentinel, then redis.
func (n *agentProc) stop(t *testing.T) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Errorf("agent %d did not stop in 60s", n.i)
		_ = n.cmd.Process.Kill()
		<-done
	}
	n.cmd = nil
}

// kill sends SIGKILL to the agent alone: its redis and sentinel live on in
// their own process groups, as they would after an agent crash.
func (n *agentProc) kill(t *testing.T) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
	n.cmd = nil
}

func (n *agentProc) log() string {
	b, _ := os.ReadFile(n.logPath)
	return string(b)
}

func (n *agentProc) pid(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.dir, "run", name+".pid"))
	if err != nil {
		t.Fatalf("read %s pid of node %d: %v", name, n.i, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("parse %s pid: %v", name, err)
	}
	return pid
}

func (g *group) startAll() {
	for _, n := range g.nodes {
		n.start(g.t)
	}
}

func (g *group) client(n *agentProc) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: n.addr(), Password: password, MaxRetries: -1, TLSConfig: g.tls,
		DialTimeout: 300 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second,
	})
	g.t.Cleanup(func() { c.Close() })
	return c
}

func (g *group) sentinelClient(n *agentProc) *redis.SentinelClient {
	c := redis.NewSentinelClient(&redis.Options{
		Addr: fmt.Sprintf("127.0.0.1:%d", n.port+20000), Password: password, MaxRetries: -1, TLSConfig: g.tls,
		DialTimeout: 300 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second,
	})
	g.t.Cleanup(func() { c.Close() })
	return c
}

// role asks a node's redis for ROLE: "master", "slave" or "" when down.
func (g *group) role(n *agentProc) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	v, err := g.client(n).Do(ctx, "ROLE").Slice()
	if err != nil || len(v) == 0 {
		return ""
	}
	s, _ := v[0].(string)
	return s
}

func (g *group) sentinelMaster(n *agentProc) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	v, err := g.sentinelClient(n).GetMasterAddrByName(ctx, "main").Result()
	if err != nil || len(v) != 2 {
		return ""
	}
	return v[0] + ":" + v[1]
}

// converged reports whether exactly one node is master, the others its
// connected replicas, and all three sentinels name it.
func (g *group) converged() (master *agentProc, why string) {
	var masters []*agentProc
	for _, n := range g.nodes {
		if g.role(n) == "master" {
			masters = append(masters, n)
		}
	}
	if len(masters) != 1 {
		return nil, fmt.Sprintf("%d masters", len(masters))
	}
	m := masters[0]
	for _, n := range g.nodes {
		if s := g.sentinelMaster(n); s != m.addr() {
			return nil, fmt.Sprintf("sentinel of node %d names %q, not %s", n.i, s, m.addr())
		}
		// Sentinels that have not discovered each other cannot fail over.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ck, err := g.sentinelClient(n).CkQuorum(ctx, "main").Result()
		cancel()
		if err != nil || !strings.HasPrefix(ck, "OK 3 usable") {
			return nil, fmt.Sprintf("sentinel of node %d: %q %v", n.i, ck, err)
		}
		if n == m {
			continue
		}
		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
		info, err := g.client(n).Info(ctx, "replication").Result()
		cancel()
		if err != nil {
			return nil, fmt.Sprintf("node %d: %v", n.i, err)
		}
		if !strings.Contains(info, "master_port:"+strconv.Itoa(m.port)) || !strings.Contains(info, "master_link_status:up") {
			return nil, fmt.Sprintf("node %d is not a connected replica of %s", n.i, m.addr())
		}
	}
	return m, ""
}

// waitNewMaster waits until a node other than old is master and its own
// sentinel names it, and returns it.
func (g *group) waitNewMaster(t *testing.T, old *agentProc, timeout time.Duration, what string) *agentProc {
	t.Helper()
	var next *agentProc
	testutil.WaitUntil(t, timeout, what, func() bool {
		for _, n := range g.nodes {
			if n != old && g.role(n) == "master" && g.sentinelMaster(n) == n.addr() {
				next = n
				return true
			}
		}
		return false
	})
	return next
}

func (g *group) waitConverged(timeout time.Duration) *agentProc {
	g.t.Helper()
	var why string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var m *agentProc
		if m, why = g.converged(); m != nil {
			return m
		}
		time.Sleep(200 * time.Millisecond)
	}
	g.t.Fatalf("group did not converge in %v: %s", timeout, why)
	return nil
}

// cli runs the agent binary with args and returns its output and exit code.
func cli(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(agentBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), code
}

// primaries samples GET /primary on every node until stop is closed and
// records every instant at which more than one node answered 200.
type primaries struct {
	stop    chan struct{}
	done    chan struct{}
	samples int
	doubles []string
}

func samplePrimaries(g *group) *primaries {
	p := &primaries{stop: make(chan struct{}), done: make(chan struct{})}
	client := g.httpClient(200 * time.Millisecond)
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var up []string
			for _, n := range g.nodes {
				resp, err := client.Get(n.httpURL() + "/primary")
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					up = append(up, n.addr())
				}
			}
			p.samples++
			if len(up) > 1 {
				p.doubles = append(p.doubles, time.Now().Format("15:04:05.000")+" "+strings.Join(up, ","))
			}
		}
	}()
	return p
}

// httpClient asks the agents' HTTP APIs, over TLS when the group has it.
func (g *group) httpClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: g.tls}}
}

func (p *primaries) end() {
	close(p.stop)
	<-p.done
}
