package faultcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
)

const testPassword = "s3cret-pass"

// FC_DEBUG=1 keeps go-redis's log and prints every server's log tail, which
// is how to see when each sentinel announced +switch-master.
func TestMain(m *testing.M) {
	if os.Getenv("FC_DEBUG") == "" {
		logging.Disable() // go-redis reconnect noise during deliberate faults
	}
	os.Exit(m.Run())
}

// group is one master, two replicas and three sentinels started as plain
// processes on 127.0.0.1: redis on base+1..3, sentinels on base+11..13.
type group struct {
	t         *testing.T
	target    Target
	redis     []*proc
	sentinels map[string]*redis.SentinelClient
}

type proc struct {
	conf, log string
	args      []string
	cmd       *exec.Cmd
}

func requireRedis(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs real redis-server (run without -short)")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
}

func startGroup(t *testing.T, base int) *group {
	t.Helper()
	requireRedis(t)
	g := &group{t: t, target: Target{MasterName: "main", Password: testPassword},
		sentinels: map[string]*redis.SentinelClient{}}
	master := fmt.Sprintf("127.0.0.1:%d", base+1)
	for i := 1; i <= 3; i++ {
		port := base + i
		dir := t.TempDir()
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nrequirepass %s\nmasterauth %s\nsave \"\"\nappendonly no\n",
			port, dir, testPassword, testPassword)
		if i > 1 {
			conf += fmt.Sprintf("replicaof 127.0.0.1 %d\n", base+1)
		}
		g.redis = append(g.redis, g.start(dir, conf))
		g.target.Redis = append(g.target.Redis, fmt.Sprintf("127.0.0.1:%d", port))
	}
	for i := 11; i <= 13; i++ {
		port := base + i
		dir := t.TempDir()
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nrequirepass %s\n"+
			"sentinel sentinel-pass %s\n"+
			"sentinel monitor main 127.0.0.1 %d 2\n"+
			"sentinel auth-pass main %s\n"+
			"sentinel down-after-milliseconds main "+strconv.Itoa(int(downAfter.Milliseconds()))+"\n"+
			"sentinel failover-timeout main 10000\n",
			port, dir, testPassword, testPassword, base+1, testPassword)
		g.start(dir, conf, "--sentinel")
		g.target.Sentinels = append(g.target.Sentinels, fmt.Sprintf("127.0.0.1:%d", port))
	}
	g.waitReady(master)
	return g
}

func (g *group) start(dir, conf string, args ...string) *proc {
	g.t.Helper()
	p := &proc{conf: filepath.Join(dir, "conf"), log: filepath.Join(dir, "log"), args: args}
	if err := os.WriteFile(p.conf, []byte(conf), 0o600); err != nil {
		g.t.Fatal(err)
	}
	p.run(g.t)
	g.t.Cleanup(func() {
		p.kill()
		if g.t.Failed() || os.Getenv("FC_DEBUG") != "" {
			out, _ := os.ReadFile(p.log)
			g.t.Logf("%s log tail:\n%s", p.conf, tail(out, 40))
		}
	})
	return p
}

func (p *proc) run(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command("redis-server", append([]string{p.conf}, p.args...)...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its fork children die with it
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

// kill sends SIGKILL to the process group and reaps it; it is idempotent.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.cmd = nil
}

func tail(b []byte, n int) []byte {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	return bytes.Join(lines[max(0, len(lines)-n):], []byte("\n"))
}

func (g *group) client(addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, Password: testPassword, MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	g.t.Cleanup(func() { _ = c.Close() })
	return c
}

// eventually polls cond every 100ms until it returns nil or limit passes.
func (g *group) eventually(limit time.Duration, what string, cond func(ctx context.Context) error) {
	g.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s: not within %v: %v", what, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReady waits until replication is up and every sentinel knows both
// replicas and both other sentinels, so that a failover can be elected.
func (g *group) waitReady(master string) {
	g.t.Helper()
	g.eventually(30*time.Second, "group ready", func(ctx context.Context) error {
		for _, s := range g.target.Sentinels {
			c := g.sentinelClient(s)
			reps, err := c.Replicas(ctx, "main").Result()
			if err != nil {
				return err
			}
			ok := 0
			for _, r := range reps {
				if r["flags"] == "slave" && r["master-link-status"] == "ok" {
					ok++
				}
			}
			sens, err := c.Sentinels(ctx, "main").Result()
			if err != nil {
				return err
			}
			if ok != 2 || len(sens) != 2 {
				return fmt.Errorf("sentinel %s: %d good replicas, %d peers", s, ok, len(sens))
			}
		}
		return g.masterIs(ctx, master)
	})
}

func (g *group) sentinelClient(addr string) *redis.SentinelClient {
	c, ok := g.sentinels[addr]
	if !ok {
		c = redis.NewSentinelClient(&redis.Options{Addr: addr, Password: testPassword, MaxRetries: -1,
			DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
		g.t.Cleanup(func() { _ = c.Close() })
		g.sentinels[addr] = c
	}
	return c
}

// masterIs reports whether every sentinel names addr.
func (g *group) masterIs(ctx context.Context, addr string) error {
	for _, s := range g.target.Sentinels {
		hp, err := g.sentinelClient(s).GetMasterAddrByName(ctx, "main").Result()
		if err != nil {
			return err
		}
		if got := hp[0] + ":" + hp[1]; got != addr {
			return fmt.Errorf("sentinel %s names %s", s, got)
		}
	}
	return nil
}

// newMaster waits until every sentinel names the same master other than old.
func (g *group) newMaster(limit time.Duration, old string) string {
	g.t.Helper()
	var named string
	g.eventually(limit, "sentinels agree on a new master", func(ctx context.Context) error {
		hp, err := g.sentinelClient(g.target.Sentinels[0]).GetMasterAddrByName(ctx, "main").Result()
		if err != nil {
			return err
		}
		named = hp[0] + ":" + hp[1]
		if named == old {
			return fmt.Errorf("still %s", old)
		}
		return g.masterIs(ctx, named)
	})
	return named
}

// verify checks a report against the log and the servers independently of
// Check: every ack names a known server, and Lost is the number of acked
// keys a plain GET does not find on the reported master.
func (g *group) verify(l *WriteLog, rep Report) (missing int) {
	g.t.Helper()
	for _, r := range l.Records {
		if r.Acked && !slices.Contains(g.target.Redis, r.Server) {
			g.t.Fatalf("write %d acked by %q, not a redis address", r.Seq, r.Server)
		}
	}
	c := g.client(rep.Master)
	var first []string
	for _, r := range l.Records {
		if !r.Acked {
			continue
		}
		v, err := c.Get(context.Background(), l.Key(r.Seq)).Result()
		switch {
		case errors.Is(err, redis.Nil):
			missing++
			if len(first) < maxLostKeys {
				first = append(first, l.Key(r.Seq))
			}
		case err != nil:
			g.t.Fatalf("get %s: %v", l.Key(r.Seq), err)
		case v != strconv.FormatInt(r.Seq, 10):
			g.t.Fatalf("%s = %q, want %d", l.Key(r.Seq), v, r.Seq)
		}
	}
	if rep.Lost != missing || !slices.Equal(rep.LostKeys, first) {
		g.t.Errorf("report: lost %d %v; GET finds %d missing %v", rep.Lost, rep.LostKeys, missing, first)
	}
	return missing
}

// ackSpans summarises which server acknowledged what and when, for the log.
func ackSpans(l *WriteLog) string {
	var b bytes.Buffer
	for _, sp := range l.AckSpans() {
		fmt.Fprintf(&b, "\n  %s: %d acks, +%.3fs..+%.3fs", sp.Server, sp.Acks, sp.From.Sub(l.Started).Seconds(), sp.To.Sub(l.Started).Seconds())
	}
	return b.String()
}

// TestSentinelFailover runs two writers through SENTINEL FAILOVER: one whose
// client follows the sentinel that leads the failover and one that follows
// another. The old master stays writable until the sentinels' next INFO poll,
// and the leader announces +switch-master only at failover end, so what each
// client loses differs; the test checks the accounting and logs the numbers.
func TestSentinelFailover(t *testing.T) {
	g := startGroup(t, 17200)
	oldMaster := g.target.Redis[0]
	ctx := context.Background()

	leader, follower := g.target, g.target
	leader.Sentinels = g.target.Sentinels[:1]
	follower.Sentinels = g.target.Sentinels[1:2]
	writers := []*Writer{Start(ctx, leader, 200), Start(ctx, follower, 200)}
	names := []string{"SENTINEL FAILOVER, client on leader", "SENTINEL FAILOVER, client on follower"}
	time.Sleep(2 * time.Second)
	for i, w := range writers {
		w.MarkFault(names[i])
	}
	if err := g.sentinelClient(g.target.Sentinels[0]).Failover(ctx, "main").Err(); err != nil {
		for _, w := range writers {
			w.Stop()
		}
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	newMaster := g.newMaster(15*time.Second, oldMaster)
	// Long enough for the leader's failover end (its replica's resync).
	time.Sleep(8 * time.Second)

	var logs []*WriteLog
	for _, w := range writers {
		logs = append(logs, w.Stop())
	}

	var (
		reports []Report
		both    []Record
		spans   string
	)
	for i, l := range logs {
		rep, err := Check(ctx, g.target, l, 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Converged || rep.Master != newMaster {
			t.Errorf("%s: converged %v on %s (%s), want %s", names[i], rep.Converged, rep.Master, rep.ConvergeDetail, newMaster)
		}
		if rep.LongestOutage <= 0 || rep.Acked == 0 {
			t.Errorf("%s: outage %v with %d acks", names[i], rep.LongestOutage, rep.Acked)
		}
		g.verify(l, rep)
		reports = append(reports, rep)
		both = append(both, l.Records...)
		spans += "\n" + names[i] + ":" + ackSpans(l)

		if i == 0 {
			// A group that cannot converge (one box never answers) is
			// reported as such, and loss is still counted against the
			// sentinels' master.
			stuck := g.target
			stuck.Redis = append(slices.Clone(g.target.Redis), "127.0.0.1:17299")
			srep, err := Check(ctx, stuck, l, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if srep.Converged || !strings.Contains(srep.ConvergeDetail, "127.0.0.1:17299") || srep.Lost != rep.Lost || srep.Master != newMaster {
				t.Errorf("unconvergeable group: %+v", srep)
			}
		}
	}
	// Each writer sees one master at a time; the two together show how
	// long old and new master both took writes.
	slices.SortFunc(both, func(a, b Record) int { return a.End.Compare(b.End) })
	t.Logf("\n%s%s\nboth writers together: double-master window %v",
		Table(reports), spans, doubleMaster(both))
}

// downAfter is the test sentinels' down-after. At 1 s, equal to Sentinel's
// ping period, a loaded CI host once saw a sentinel mark the freshly
// elected master down one second after the switch (its first PONG late) and
// fail over a second time.
const downAfter = 2 * time.Second

func TestKillMaster(t *testing.T) {
	g := startGroup(t, 17220)
	oldMaster := g.target.Redis[0]
	ctx := context.Background()
	var dials atomic.Int64 // the injected dialer must carry everything
	g.target.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, addr)
	}

	w := Start(ctx, g.target, 200)
	time.Sleep(2 * time.Second)
	w.MarkFault("kill -9 master")
	killedAt := time.Now()
	g.redis[0].kill()
	newMaster := g.newMaster(30*time.Second, oldMaster)
	time.Sleep(2 * time.Second)
	// The bench's agent restarts a killed redis; here the test does, and
	// the sentinels turn the empty old master into a replica.
	g.redis[0].run(t)
	time.Sleep(time.Second)
	l := w.Stop()

	rep, err := Check(ctx, g.target, l, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s\n%s%s", rep.JSON(), Table([]Report{rep}), ackSpans(l))
	if !rep.Converged || rep.Master != newMaster {
		t.Errorf("converged %v on %s (%s), want %s", rep.Converged, rep.Master, rep.ConvergeDetail, newMaster)
	}
	// The outage must span the kill: from the last ack before it to the
	// first ack after it, and last at least down-after.
	var lastBefore, firstAfter time.Time
	for _, r := range l.Records {
		if !r.Acked {
			continue
		}
		// A write in flight at the kill may still be acknowledged by the
		// dying master: it belongs before the outage.
		if r.Start.Before(killedAt) {
			lastBefore = r.End
		} else if firstAfter.IsZero() {
			firstAfter = r.End
		}
	}
	if firstAfter.IsZero() {
		t.Fatal("no write acknowledged after the kill")
	}
	if !rep.OutageStart.Equal(lastBefore) || !rep.OutageStart.Add(rep.LongestOutage).Equal(firstAfter) {
		t.Errorf("outage +%v..+%v, want the gap around the kill +%v..+%v",
			rep.OutageStart.Sub(l.Started), rep.OutageStart.Add(rep.LongestOutage).Sub(l.Started),
			lastBefore.Sub(l.Started), firstAfter.Sub(l.Started))
	}
	if rep.LongestOutage < downAfter {
		t.Errorf("outage %v is shorter than down-after (%v)", rep.LongestOutage, downAfter)
	}
	g.verify(l, rep)
	if dials.Load() == 0 {
		t.Error("the target's Dialer was never used")
	}
}
