package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/redis-ha-agent/redis-ha-agent/test/box"
	"github.com/redis-ha-agent/redis-ha-agent/test/faultcheck"
)

// The client paths under test besides Sentinel: the virtual IP (on the
// bench's subnet, not the client's 10.88.0.100) and HAProxy in the client
// namespace, checking each box's /primary.
const (
	vipAddr = "10.88.0.200"
	vipConf = "printf '[vip]\\naddress = \"" + vipAddr + "/24\"\\n' > /etc/redis-ha/conf.d/20-vip.conf\n"
	// hookConf installs hooks.on_role_change: a script that logs its
	// arguments (new role, master host, master port), one line a call, in
	// the state directory: the unit's sandbox (ProtectSystem=strict,
	// PrivateTmp) lets a hook write there and in /run/redis-ha only.
	hookConf = "printf '#!/bin/sh\\necho \"$1 $2:$3\" >> " + hookLog + "\\n' > /usr/local/bin/rha-hook\n" +
		"chmod 755 /usr/local/bin/rha-hook\n" +
		"printf '[hooks]\\non_role_change = \"/usr/local/bin/rha-hook\"\\n' > /etc/redis-ha/conf.d/30-hook.conf\n"
	hookLog   = "/var/lib/redis-ha/hook.log"
	proxyAddr = "127.0.0.1:6400"
	httpPort  = "8008"
	lagBound  = "1MB" // /replica?lag= in the lag check
	// vipSlack is how long the VIP may stay on a box that /status no longer
	// calls an unfenced master: the agent observes its role every second and
	// reconciles the VIP four times a second, so a box demoted (or whose
	// redis died) keeps it up to one observation plus one round. Longer is a
	// bug. Two holders at once have no slack.
	vipSlack = 1500 * time.Millisecond
	// Sampling periods.
	vipEvery     = 100 * time.Millisecond
	primaryEvery = 40 * time.Millisecond
)

// haproxyConf is the configuration a user writes for HAProxy in front of
// the group: TCP to whichever box answers /primary with 200.
const haproxyConf = `global
	maxconn 512
defaults
	mode tcp
	timeout connect 1s
	timeout client 1m
	timeout server 1m
	timeout check 500ms
frontend redis
	bind ` + proxyAddr + `
	default_backend primary
backend primary
	option httpchk GET /primary
	http-check expect status 200
	default-server check port ` + httpPort + ` inter 200ms fall 1 rise 1 on-marked-down shutdown-sessions
	server n1 10.88.0.11:6379
	server n2 10.88.0.12:6379
	server n3 10.88.0.13:6379
`

// TestClientPaths checks, on one group with vip.address set, the ways
// PRODUCT.md offers clients that are not Sentinel-aware: first that
// /replica?lag= flips to 503 while a replica falls behind on a slow link
// and back once it catches up; then, with a client writing through HAProxy
// and a plain redis-cli writing to the VIP, a kill -9 of the master's redis,
// a switchover and a power-off of the master's box. All along it samples
// which box holds the VIP (ip addr in each box) and answers /primary: never
// two at once, never the VIP on a box that is not an unfenced master.
func TestClientPaths(t *testing.T) {
	t.Parallel()
	requireDeb(t, "RHA_DEB")
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Fatal("haproxy is not installed: make deps installs it")
	}
	logging.Disable()
	ctx := ctxFor(t, 12*time.Minute)
	cp := newClientPaths(t, ctx)
	var rows []string
	t.Cleanup(func() { t.Logf("client paths, measured:\n%s", strings.Join(rows, "\n")) })

	vips := cp.sampleVIP(ctx)
	primaries := cp.samplePrimary(ctx)
	rows = append(rows, cp.lagFlip(t, ctx))
	if t.Failed() {
		return
	}

	start := time.Now() // the first phase's window starts with the writers
	viaProxy := faultcheck.Start(ctx, cp.proxyTarget(), writeRate)
	t.Cleanup(func() { viaProxy.Stop() })
	viaVIP := cp.startVIPLoop(ctx)
	t.Cleanup(func() { viaVIP.stop() })
	time.Sleep(warmUp)

	phases := []phase{
		{name: "master's redis killed (-9)", lost: 10, inject: killRedis},
		{name: "planned switchover", lost: 0, inject: switchover},
		{name: "master box powered off", lost: 10, inject: cp.powerOff},
	}
	for i := range phases {
		p := &phases[i]
		p.from = start
		if !t.Run(p.name, func(t *testing.T) { cp.run(t, ctx, p) }) {
			break
		}
		start = p.done
	}
	proxyLog, vipLog := viaProxy.Stop(), viaVIP.stop()
	vipSamples, primarySamples := vips.stop(), primaries.stop()

	rows = append(rows, fmt.Sprintf("%-28s | %-22s | %-22s | %-13s | %-13s", "fault",
		"haproxy: outage, lost", "vip: outage, lost", "vip 0 holders", "/primary 0×200"))
	for _, p := range phases {
		if p.done.IsZero() {
			continue
		}
		row := fmt.Sprintf("%-28s | %-22s | %-22s | %-13s | %-13s", p.name,
			cp.clientRow(t, ctx, p, proxyLog), cp.clientRow(t, ctx, p, vipLog),
			secs(vipSamples.longestZero(p.at, p.done)), secs(primarySamples.longestZero(p.at, p.done)))
		rows = append(rows, row)
	}
	rows = append(rows, vipSamples.check(t), primarySamples.check(t))
	if err := cp.metricsValid(ctx); err != nil {
		t.Error(err)
	}
	if err := eventually(ctx, 15*time.Second, cp.hooksRan); err != nil {
		t.Error(err)
	}
}

// metricsValid runs promtool check metrics on every running box's /metrics,
// as it answers after the faults above.
func (cp *clientPaths) metricsValid(ctx context.Context) error {
	if _, err := exec.LookPath("promtool"); err != nil {
		return fmt.Errorf("promtool is not installed (make deps installs it): %w", err)
	}
	for _, bx := range cp.boxes {
		if !bx.Running() {
			continue
		}
		code, body, err := cp.get(ctx, bx, "/metrics")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("box %s: GET /metrics: %d %v", bx.Name, code, err)
		}
		cmd := exec.CommandContext(ctx, "promtool", "check", "metrics")
		cmd.Stdin = strings.NewReader(string(body))
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("box %s: promtool check metrics: %v\n%s", bx.Name, err, out)
		}
	}
	return nil
}

// hooksRan checks that hooks.on_role_change ran on every box once for each
// change to master or replica that the box's role history records, in
// order, with the new role and master.
func (cp *clientPaths) hooksRan(ctx context.Context) error {
	for _, bx := range cp.boxes {
		out, errOut, err := bx.Sh(ctx, "redis-ha-agent history --json")
		if err != nil {
			return fmt.Errorf("box %s: history: %v: %s", bx.Name, err, errOut)
		}
		var changes []struct{ To, Master string }
		if err := json.Unmarshal([]byte(out), &changes); err != nil {
			return fmt.Errorf("box %s: history --json: %w", bx.Name, err)
		}
		var want []string
		for _, c := range changes {
			// The package starts the agent single-box on 127.0.0.1 before
			// the story's drop-ins (the hook among them) are written.
			if strings.HasPrefix(c.Master, "127.0.0.1:") {
				continue
			}
			if (c.To == "master" || c.To == "replica") && c.Master != "" {
				want = append(want, c.To+" "+c.Master)
			}
		}
		log, _, _ := bx.Sh(ctx, "cat "+hookLog)
		var ran []string
		if log = strings.TrimSpace(log); log != "" {
			ran = strings.Split(log, "\n")
		}
		// Every box changed role in the faults above (the first master's
		// first role was taken single-box, before the hook was set).
		if len(want) == 0 || !slices.Equal(ran, want) {
			return fmt.Errorf("box %s: the hook ran %q, the history has %q", bx.Name, ran, want)
		}
	}
	return nil
}

// clientPaths is the group, HAProxy in front of it, and a way to ask each
// box's HTTP API from the client namespace.
type clientPaths struct {
	*faultGroup
	http *http.Client
}

func newClientPaths(t *testing.T, ctx context.Context) *clientPaths {
	fg := newFaultGroupWith(t, ctx, vipConf+hookConf)
	cp := &clientPaths{faultGroup: fg, http: &http.Client{
		Transport: &http.Transport{DialContext: fg.b.ClientDial, MaxIdleConnsPerHost: 4},
		Timeout:   300 * time.Millisecond,
	}}
	t.Cleanup(cp.http.CloseIdleConnections)
	if err := eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		return cp.vipOn(ctx, "n1")
	}); err != nil {
		t.Fatal(err)
	}
	out, _, _ := fg.boxes[2].Exec(ctx, "redis-ha-agent", "status")
	t.Logf("box %s: redis-ha-agent status, with the VIP column:\n%s", fg.boxes[2].Name, out)
	cp.startHAProxy(t)
	if err := eventually(ctx, 30*time.Second, func(ctx context.Context) error {
		return cp.proxyServes(ctx, "10.88.0.11:6379")
	}); err != nil {
		t.Fatal(err)
	}
	return cp
}

// startHAProxy runs Debian's haproxy in the foreground in the client
// namespace until the test ends.
func (cp *clientPaths) startHAProxy(t *testing.T) {
	conf := filepath.Join(cp.b.Dir(), "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(haproxyConf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, errOut, err := cp.b.Client(ctx, nil, "haproxy", "-db", "-f", conf)
		if ctx.Err() == nil {
			t.Errorf("haproxy exited: %v\n%s", err, errOut)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func (cp *clientPaths) proxyTarget() faultcheck.Target {
	tg := cp.target
	tg.Via = proxyAddr
	return tg
}

// proxyServes checks that a connection through HAProxy reaches master's
// redis (the same run_id) and that it takes a write there.
func (cp *clientPaths) proxyServes(ctx context.Context, master string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	via := cp.redis(proxyAddr)
	defer via.Close()
	direct := cp.redis(master)
	defer direct.Close()
	got, err := runID(ctx, via)
	if err != nil {
		return fmt.Errorf("through haproxy: %w", err)
	}
	want, err := runID(ctx, direct)
	if err != nil {
		return fmt.Errorf("%s: %w", master, err)
	}
	if got != want {
		return fmt.Errorf("haproxy leads to run_id %s, the master %s is %s", got, master, want)
	}
	if err := via.Set(ctx, "e2e:via-haproxy", master, 0).Err(); err != nil {
		return fmt.Errorf("write through haproxy: %w", err)
	}
	return nil
}

func (cp *clientPaths) redis(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, Password: password, Dialer: cp.b.ClientDial,
		MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
}

func runID(ctx context.Context, c *redis.Client) (string, error) {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(l, "run_id:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("no run_id in INFO")
}

// boxStatus is the part of a box's /status the samplers read.
type boxStatus struct {
	Role     string `json:"role"`
	Fenced   bool   `json:"fenced"`
	LagBytes int64  `json:"lag_bytes"`
}

func (cp *clientPaths) get(ctx context.Context, bx *box.Box, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+bx.Addr+":"+httpPort+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := cp.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, body, err
}

func (cp *clientPaths) status(ctx context.Context, bx *box.Box) (boxStatus, error) {
	var st boxStatus
	_, body, err := cp.get(ctx, bx, "/status")
	if err == nil {
		err = json.Unmarshal(body, &st)
	}
	return st, err
}

// holdsVIP looks at the box's eth0 from inside it, as its owner would.
func holdsVIP(ctx context.Context, bx *box.Box) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	out, _, err := bx.Exec(ctx, "ip", "-o", "addr", "show", "dev", "eth0")
	return strings.Contains(out, " "+vipAddr+"/"), err
}

// vipOn checks that the box named holds the VIP and no other running box
// does.
func (cp *clientPaths) vipOn(ctx context.Context, name string) error {
	var holders []string
	for _, bx := range cp.boxes {
		if !bx.Running() {
			continue
		}
		held, err := holdsVIP(ctx, bx)
		if err != nil {
			return err
		}
		if held {
			holders = append(holders, bx.Name)
		}
	}
	if !slices.Equal(holders, []string{name}) {
		return fmt.Errorf("vip held by %v, want %s alone", holders, name)
	}
	return nil
}

func (cp *clientPaths) boxNamed(addr string) *box.Box {
	for _, bx := range cp.boxes {
		if bx.Addr+":6379" == addr || bx.Addr == addr {
			return bx
		}
	}
	return nil
}

// lagFlip slows the link to one replica while large writes go to the
// master: its /replica?lag= must turn 503 and, once the link is fast again
// and the replica has caught up, 200. The other replica stays 200.
func (cp *clientPaths) lagFlip(t *testing.T, ctx context.Context) string {
	slow, fast := cp.boxes[2], cp.boxes[1]
	path := "/replica?lag=" + lagBound
	code := func(bx *box.Box) int {
		c, _, _ := cp.get(ctx, bx, path)
		return c
	}
	if err := eventually(ctx, 30*time.Second, func(context.Context) error {
		if c := code(slow); c != 200 {
			return fmt.Errorf("%s %s: %d before the slow link", slow.Name, path, c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	bulk := cp.bulkWriter(ctx, "10.88.0.11:6379")
	defer bulk()
	if err := cp.b.Throttle(slow.Name, "1mbit"); err != nil {
		t.Fatal(err)
	}
	throttled := time.Now()
	unthrottle := sync.OnceFunc(func() {
		if err := cp.b.Unthrottle(slow.Name); err != nil {
			t.Error(err)
		}
	})
	defer unthrottle()

	var maxLag int64
	unknown, fastBad := 0, 0
	watch := func(until func(int) bool, limit time.Duration) time.Duration {
		begin := time.Now()
		for time.Since(begin) < limit {
			if st, err := cp.status(ctx, slow); err == nil {
				maxLag = max(maxLag, st.LagBytes)
				if st.LagBytes < 0 {
					unknown++
				}
			}
			if code(fast) != 200 {
				fastBad++
			}
			if until(code(slow)) {
				return time.Since(begin)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return -1
	}
	down := watch(func(c int) bool { return c == 503 }, 30*time.Second)
	time.Sleep(2 * time.Second) // behind for a while, the writes going on
	bulk()
	unthrottle()
	up := watch(func(c int) bool { return c == 200 }, 30*time.Second)
	if down < 0 {
		t.Errorf("%s %s stayed 200 for 30s on a 1mbit link under %s", slow.Name, path, time.Since(throttled).Round(time.Second))
	}
	if up < 0 {
		t.Errorf("%s %s not back to 200 within 30s of the link's repair", slow.Name, path)
	}
	if fastBad > 0 {
		t.Errorf("%s (fast link) %s was not 200 in %d samples", fast.Name, path, fastBad)
	}
	return fmt.Sprintf("/replica?lag=%s on %s: 503 %s after the link slowed to 1mbit, 200 %s after its repair; "+
		"largest lag_bytes seen %d, unknown (-1) in %d samples; %s stayed 200",
		lagBound, slow.Name, secs(down), secs(up), maxLag, unknown, fast.Name)
}

// bulkWriter sets 8 kB values on master at ~100/s (800 kB/s) until the
// returned stop is called.
func (cp *clientPaths) bulkWriter(ctx context.Context, master string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	c := cp.redis(master)
	val := strings.Repeat("x", 8<<10)
	go func() {
		defer close(done)
		defer c.Close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ctx.Err() == nil; i++ {
			_ = c.Set(ctx, "e2e:bulk:"+strconv.Itoa(i%500), val, 0).Err()
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}()
	return sync.OnceFunc(func() { cancel(); <-done })
}

// phase is one fault of the client-path run.
type phase struct {
	name     string
	lost     int // acknowledged writes lost, at most (PRODUCT.md)
	inject   func(t *testing.T, ctx context.Context, fg *faultGroup, m *box.Box, others []*box.Box)
	from     time.Time // its window of the writers' logs starts (the previous phase's end)
	at, done time.Time // injected; settled with writes on the new master
}

// run injects p's fault into the settled group and waits until it has
// settled again, HAProxy leads to the new master and the VIP is on it alone.
func (cp *clientPaths) run(t *testing.T, ctx context.Context, p *phase) {
	old, err := cp.settled(ctx, "", settleLimit)
	if err != nil {
		t.Fatalf("before the fault: %v", err)
	}
	m, others := cp.box(t, old)
	time.Sleep(time.Second) // writes on this master before the fault
	p.at = time.Now()
	defer cp.journalsIfFailed(t, p.at)
	p.inject(t, ctx, cp.faultGroup, m, others)
	master, err := cp.settled(ctx, old, settleLimit)
	if err != nil {
		t.Fatalf("the group did not settle: %v", err)
	}
	if err := eventually(ctx, 10*time.Second, func(ctx context.Context) error { return cp.proxyServes(ctx, master) }); err != nil {
		t.Errorf("after %s: %v", p.name, err)
	}
	if err := eventually(ctx, 10*time.Second, func(ctx context.Context) error { return cp.vipOn(ctx, cp.boxNamed(master).Name) }); err != nil {
		t.Errorf("after %s: %v", p.name, err)
	}
	// What the user reads: status on one of the boxes.
	if st, _, err := agentStatus(ctx, others[0]); err != nil || !slices.Equal(st.VIPHolders, []string{master}) {
		t.Errorf("after %s: status on %s names vip holders %q (%v), want %s", p.name, others[0].Name, st.VIPHolders, err, master)
	}
	time.Sleep(coolDown)
	p.done = time.Now()
	t.Logf("%s: master %s → %s, settled %s after the fault", p.name, old, master, p.done.Sub(p.at).Round(100*time.Millisecond))
}

// powerOff pulls the master box's plug, as TestFault does, but first
// unplugs it from the switch: the bench's network namespace outlives the
// box, and its kernel would go on answering for its address and the VIP,
// which a box without power does not. Once the others have a new master
// and the VIP, the box gets a fresh interface (the VIP gone, as after a real
// reboot), its cable back, and boots.
func (cp *clientPaths) powerOff(t *testing.T, ctx context.Context, fg *faultGroup, m *box.Box, others []*box.Box) {
	rest := []string{"client"}
	for _, bx := range others {
		rest = append(rest, bx.Name)
	}
	if err := fg.b.Cut([]string{m.Name}, rest); err != nil {
		t.Fatal(err)
	}
	if err := m.PowerOff(); err != nil {
		t.Fatal(err)
	}
	var master string
	err := eventually(ctx, time.Minute, func(ctx context.Context) error {
		var err error
		if master, err = fg.electedWithout(ctx, m, others); err != nil {
			return err
		}
		return cp.vipOn(ctx, cp.boxNamed(master).Name)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("with %s off: the vip is on %s alone, the new master", m.Name, master)
	time.Sleep(coolDown) // the clients write to the new master while the old box is off
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", fg.b.Net.Namespace(m.Name),
		"ip", "addr", "del", vipAddr+"/24", "dev", "eth0").CombinedOutput()
	if err != nil {
		t.Logf("%s: no vip left on the dead box's interface: %v %s", m.Name, err, out)
	}
	if err := fg.b.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := box.BootAll(ctx, m); err != nil {
		t.Fatal(err)
	}
}

// vipLoop is the plain client: Debian's redis-cli, one SET per process,
// against the VIP only, the password in REDISCLI_AUTH. timeout(1) bounds a
// connect to a VIP whose holder is gone (ARP still names it).
const vipLoop = `i=0
while :; do
	i=$((i+1)); s=$EPOCHREALTIME
	out=$(timeout 1 redis-cli -h ` + vipAddr + ` SET "rha:$RUN:$i" "$i" 2>&1)
	printf '%s %s %s %s\n' "$s" "$EPOCHREALTIME" "$i" "${out//$'\n'/ }"
	sleep 0.01
done`

type vipClient struct {
	stop func() *faultcheck.WriteLog
}

// startVIPLoop runs vipLoop in the client namespace; stop ends it and
// returns what it did as a fault checker's log.
func (cp *clientPaths) startVIPLoop(ctx context.Context) vipClient {
	ctx, cancel := context.WithCancel(ctx)
	l := &faultcheck.WriteLog{RunID: "vip" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36), Started: time.Now()}
	var out string
	done := make(chan struct{})
	go func() {
		defer close(done)
		out, _, _ = cp.b.Client(ctx, []string{"REDISCLI_AUTH=" + password, "RUN=" + l.RunID}, "bash", "-c", vipLoop)
	}()
	return vipClient{stop: sync.OnceValue(func() *faultcheck.WriteLog {
		cancel()
		<-done
		l.Stopped = time.Now()
		l.Records = parseVIPLoop(out)
		if n := len(l.Records); n > 0 {
			l.Rate = int(float64(n) / l.Stopped.Sub(l.Started).Seconds())
		}
		return l
	})}
}

// parseVIPLoop reads vipLoop's lines: start, end, sequence, reply. The
// last line may be cut short by the kill.
func parseVIPLoop(out string) []faultcheck.Record {
	var recs []faultcheck.Record
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(line, " ", 4)
		if len(f) < 3 {
			continue
		}
		start, err1 := strconv.ParseFloat(f[0], 64)
		end, err2 := strconv.ParseFloat(f[1], 64)
		seq, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		reply := ""
		if len(f) == 4 {
			reply = f[3]
		}
		r := faultcheck.Record{Seq: seq, Start: unixFloat(start), End: unixFloat(end), Acked: reply == "OK"}
		if r.Acked {
			r.Server = vipAddr + ":6379"
		} else {
			r.Err = reply
			if r.Err == "" {
				r.Err = "no reply within 1s"
			}
		}
		recs = append(recs, r)
	}
	return recs
}

func unixFloat(s float64) time.Time {
	sec := int64(s)
	return time.Unix(sec, int64((s-float64(sec))*1e9))
}

// clientRow is one client's outage and loss over p's window of its log, with
// the loss held to p's bound.
func (cp *clientPaths) clientRow(t *testing.T, ctx context.Context, p phase, l *faultcheck.WriteLog) string {
	sub := l.Window(p.name, p.at, p.from, p.done)
	rep, err := faultcheck.Check(ctx, cp.target, sub, checkLimit)
	if err != nil {
		t.Errorf("%s: %v", p.name, err)
		return "?"
	}
	if rep.Lost > p.lost {
		t.Errorf("%s: %d acknowledged writes lost (%s), PRODUCT.md allows %d:%s", p.name, rep.Lost, l.RunID, p.lost, lostDetail(sub, rep))
	}
	if rep.Acked == 0 {
		t.Errorf("%s: no write acknowledged in the window (%s)", p.name, l.RunID)
	}
	return fmt.Sprintf("%s, %d/%d", secs(rep.LongestOutage), rep.Lost, rep.Acked)
}

func secs(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// A sample is one look at every running box at one moment.
type sample struct {
	at     time.Time
	double string   // two boxes held the VIP / answered /primary 200: which
	bad    []string // what else was wrong at that moment
	zero   bool     // nothing held the VIP / answered /primary 200
}

// sampler looks at the group every period until stopped.
type sampler struct {
	what    string
	mu      sync.Mutex
	samples []sample
	stop    func() samples
}

type samples struct {
	what string
	all  []sample
}

func (cp *clientPaths) startSampler(ctx context.Context, what string, every time.Duration, look func(ctx context.Context) sample) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{what: what}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			smp := look(ctx)
			if ctx.Err() != nil {
				return
			}
			s.mu.Lock()
			s.samples = append(s.samples, smp)
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	s.stop = sync.OnceValue(func() samples {
		cancel()
		<-done
		s.mu.Lock()
		defer s.mu.Unlock()
		return samples{what: what, all: s.samples}
	})
	return s
}

// eachRunning runs look on every running box at once.
func (cp *clientPaths) eachRunning(look func(bx *box.Box)) {
	var wg sync.WaitGroup
	for _, bx := range cp.boxes {
		if !bx.Running() {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); look(bx) }()
	}
	wg.Wait()
}

// sampleVIP: which boxes have the VIP on eth0, and what their /status says
// of them at the same moment. A box that is off holds nothing.
func (cp *clientPaths) sampleVIP(ctx context.Context) *sampler {
	return cp.startSampler(ctx, "vip", vipEvery, func(ctx context.Context) sample {
		var mu sync.Mutex
		var holders, bad []string
		smp := sample{at: time.Now()}
		cp.eachRunning(func(bx *box.Box) {
			held, err := holdsVIP(ctx, bx)
			if err != nil || !held {
				return
			}
			st, err := cp.status(ctx, bx)
			mu.Lock()
			defer mu.Unlock()
			holders = append(holders, bx.Name)
			switch {
			case err != nil:
				bad = append(bad, fmt.Sprintf("%s holds the vip, its /status: %v", bx.Name, err))
			case st.Role != "master" || st.Fenced:
				bad = append(bad, fmt.Sprintf("%s holds the vip as %s (fenced %v)", bx.Name, st.Role, st.Fenced))
			}
		})
		if len(holders) > 1 {
			slices.Sort(holders)
			smp.double = "vip on " + strings.Join(holders, ", ")
		}
		smp.bad, smp.zero = bad, len(holders) == 0
		return smp
	})
}

// samplePrimary: which boxes answer /primary with 200 at one moment.
func (cp *clientPaths) samplePrimary(ctx context.Context) *sampler {
	return cp.startSampler(ctx, "/primary", primaryEvery, func(ctx context.Context) sample {
		var mu sync.Mutex
		var ok []string
		smp := sample{at: time.Now()}
		cp.eachRunning(func(bx *box.Box) {
			if c, _, err := cp.get(ctx, bx, "/primary"); err == nil && c == 200 {
				mu.Lock()
				ok = append(ok, bx.Name)
				mu.Unlock()
			}
		})
		if len(ok) > 1 {
			slices.Sort(ok)
			smp.double = "200 from " + strings.Join(ok, ", ")
		}
		smp.zero = len(ok) == 0
		return smp
	})
}

// longestZero is the longest stretch in [from, to) with nothing holding
// (from the last sample with a holder to the next one).
func (s samples) longestZero(from, to time.Time) time.Duration {
	var longest time.Duration
	var since time.Time // last sample with a holder
	for _, smp := range s.all {
		if smp.at.Before(from) || !smp.at.Before(to) {
			if !smp.zero {
				since = smp.at
			}
			continue
		}
		if !smp.zero {
			if !since.IsZero() {
				longest = max(longest, smp.at.Sub(since))
			}
			since = smp.at
		}
	}
	return longest
}

// check fails the test on two at once in any sample, and on any other
// problem lasting longer than vipSlack; it returns a summary row.
func (s samples) check(t *testing.T) string {
	var doubles int
	var worst time.Duration
	var worstWhat string
	var runStart time.Time
	for _, smp := range s.all {
		if smp.double != "" {
			doubles++
			t.Errorf("%s at %s: %s", s.what, smp.at.Format("15:04:05.000"), smp.double)
		}
		switch {
		case len(smp.bad) == 0:
			runStart = time.Time{}
		case runStart.IsZero():
			runStart = smp.at
			fallthrough
		default:
			if d := smp.at.Sub(runStart) + time.Millisecond; d > worst {
				worst, worstWhat = d, strings.Join(smp.bad, "; ")
			}
		}
	}
	if worst > vipSlack {
		t.Errorf("%s: for %s: %s", s.what, worst.Round(time.Millisecond), worstWhat)
	}
	row := fmt.Sprintf("%s: %d samples, %d with two at once", s.what, len(s.all), doubles)
	if n := len(s.all); n > 1 {
		// The sampler waits for every box's answer: on a loaded host it
		// looks less often than asked.
		row += fmt.Sprintf(", one every %s", (s.all[n-1].at.Sub(s.all[0].at) / time.Duration(n-1)).Round(time.Millisecond))
	}
	if worst > 0 {
		row += fmt.Sprintf("; longest other problem %s (%s)", worst.Round(time.Millisecond), worstWhat)
	}
	return row
}
