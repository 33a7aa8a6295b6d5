// Package faultcheck measures what a Sentinel-aware client sees while a Redis
// group goes through a fault: a Writer sets unique keys at a steady rate and
// logs every attempt, and Check waits for the group to settle, reads the
// acknowledged keys back and reports loss, outage, double masters and
// convergence. It observes only: injecting and healing faults is the bench's
// job, and nothing here starts, stops or reconfigures a server.
//
// go-redis logs reconnect noise to stderr during faults; callers that mind
// silence it with logging.Disable (this package keeps no global state).
package faultcheck

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// The tuned client's timeouts: tight enough that one attempt is one record
// and a dead master costs at most writeDeadline per attempt.
const (
	dialTimeout = 300 * time.Millisecond
	ioTimeout   = 500 * time.Millisecond
	// writeDeadline is what the application gives each write, with either
	// client: a request's budget.
	writeDeadline = time.Second
	// The tuned writer holds one connection at a time. go-redis stops
	// dialling after PoolSize consecutive failed dials and then probes once a
	// second, which adds up to a second to the measured outage. A refused
	// dial fails at once, so a writer facing a powered-off master fails 200
	// a second: at 1000 the breaker opened after 5 s and every power-off
	// outage came out at 6.0 or 7.0 s. 100 000 is eight minutes of refusals
	// (the pool reserves 8 bytes per slot).
	poolSize = 100_000
	// A refused dial is retried (asking the sentinels again) after this
	// backoff within one attempt, so it bounds how late the writer notices
	// a new master; go-redis's default is 100ms.
	dialBackoff = 50 * time.Millisecond
)

// Target is the group under test, as a client reaches it.
type Target struct {
	MasterName string
	Sentinels  []string // host:port
	// Redis is every box's redis host:port, as the sentinels announce them;
	// Check needs them all for convergence.
	Redis    []string
	Password string // for redis and the sentinels alike
	// Dialer reaches the group (the box bench dials through a network
	// namespace); nil is a plain net.Dialer.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLS, when set, is spoken on every connection to the group, its
	// server name set per address. go-redis leaves TLSConfig alone once a
	// Dialer is given, so the dialer makes the handshake.
	TLS *tls.Config
	// Via, when set, is where the Writer sends its writes instead of asking
	// the sentinels: a proxy (HAProxy checking /primary) or a virtual IP.
	// Check still asks the sentinels where to read back.
	Via string
}

// WithoutSentinelOn returns t told only the sentinels not on host (the
// master's box, for a writer). go-redis's FailoverClient keeps asking the
// sentinel that answered it first and, with the writer's timeouts, never
// drops one that stops answering: it gives up on the dial's context before
// it gets to (sentinel.go, MasterAddr). A writer that picked the master's
// own sentinel would hear of the new master only once a cut heals or a
// powered-off box boots, and the outage would measure that luck instead of
// the group (seen: 7.9 s for a cut whose sentinels named the new master at
// 6.7 s). The client still learns of that sentinel (SENTINEL SENTINELS).
func (t Target) WithoutSentinelOn(host string) Target {
	out := t
	out.Sentinels = nil
	for _, s := range t.Sentinels {
		if h, _, err := net.SplitHostPort(s); err != nil || h != host {
			out.Sentinels = append(out.Sentinels, s)
		}
	}
	return out
}

// dialerOr is the target's dialer, or d's, over TLS when the target says so.
func (t Target) dialerOr(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := d.DialContext
	if t.Dialer != nil {
		dial = t.Dialer
	}
	if t.TLS == nil {
		return dial
	}
	return TLSDial(dial, t.TLS)
}

// TLSDial is dial with a TLS handshake on top, the server name set to the
// host dialled.
func TLSDial(dial func(ctx context.Context, network, addr string) (net.Conn, error), cfg *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := cfg.Clone()
		tc.ServerName, _, _ = net.SplitHostPort(addr)
		conn := tls.Client(c, tc)
		if err := conn.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return conn, nil
	}
}

// Record is one write attempt.
type Record struct {
	Seq   int64     `json:"seq"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Acked bool      `json:"acked"`
	Err   string    `json:"err,omitempty"`
	// Server is the address the acknowledging connection was dialled to.
	Server string `json:"server,omitempty"`
}

// WriteLog is everything a Writer did, in order.
type WriteLog struct {
	RunID   string    `json:"run_id"`
	Client  string    `json:"client"` // ClientDefault or ClientTuned
	Rate    int       `json:"rate"`
	Started time.Time `json:"started"`
	Stopped time.Time `json:"stopped"`
	Fault   string    `json:"fault,omitempty"`
	FaultAt time.Time `json:"fault_at,omitzero"`
	Records []Record  `json:"records"`
}

// Key is the key written by attempt seq.
func (l *WriteLog) Key(seq int64) string {
	return "rha:" + l.RunID + ":" + strconv.FormatInt(seq, 10)
}

// AckedKeys lists the keys the group acknowledged, in write order.
func (l *WriteLog) AckedKeys() []string {
	var keys []string
	for _, r := range l.Records {
		if r.Acked {
			keys = append(keys, l.Key(r.Seq))
		}
	}
	return keys
}

// Window is the part of l whose attempts started in [from, to), as a log
// of its own with fault name at faultAt: one fault of a run with many.
func (l *WriteLog) Window(name string, faultAt, from, to time.Time) *WriteLog {
	w := &WriteLog{RunID: l.RunID, Client: l.Client, Rate: l.Rate, Started: from, Stopped: to, Fault: name, FaultAt: faultAt}
	for _, r := range l.Records {
		if !r.Start.Before(from) && r.Start.Before(to) {
			w.Records = append(w.Records, r)
		}
	}
	return w
}

// AckSpan is a run of consecutive acknowledged writes by one server.
type AckSpan struct {
	Server   string
	Acks     int
	From, To time.Time // when the run's first and last acks came
}

// AckSpans splits the log's acknowledged writes into runs by server, in
// order: which server acknowledged what, and when, for a log.
func (l *WriteLog) AckSpans() []AckSpan {
	var out []AckSpan
	for _, r := range l.Records {
		if !r.Acked {
			continue
		}
		if len(out) == 0 || out[len(out)-1].Server != r.Server {
			out = append(out, AckSpan{Server: r.Server, From: r.End})
		}
		s := &out[len(out)-1]
		s.Acks++
		s.To = r.End
	}
	return out
}

// Writer sets rha:<run-id>:<seq> through a go-redis FailoverClient, one
// attempt at a time: a write that blocks longer than the period delays the
// next rather than piling up behind it.
type Writer struct {
	rdb  *redis.Client
	stop chan struct{}
	done chan struct{}
	once sync.Once

	// inflight is the key being written; sentTo is the address of the
	// connection its bytes went out on. The FailoverClient exposes no
	// address, so the connection wrapper watches for the key instead.
	inflight atomic.Pointer[[]byte]
	sentTo   atomic.Pointer[string]

	mu  sync.Mutex // guards log.Fault and log.FaultAt; run owns the rest until done
	log WriteLog
}

// Start begins writing at rate per second (200 if rate ≤ 0) until Stop or
// until ctx ends, through a client configured as users configure one: a
// go-redis FailoverClient told every sentinel of t and nothing else (pool,
// timeouts, retries and dialling at go-redis's defaults), each write with a
// deadline of one second, as an application gives a request. What it sees
// is the outage users see.
//
// Through a proxy or a virtual IP (Via) there is no sentinel to configure:
// Start is StartTuned.
func Start(ctx context.Context, t Target, rate int) *Writer {
	if t.Via != "" {
		return StartTuned(ctx, t, rate)
	}
	w := newWriter(rate, ClientDefault)
	w.rdb = redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:       t.MasterName,
		SentinelAddrs:    t.Sentinels,
		Password:         t.Password,
		SentinelPassword: t.Password,
		// The bench's dialer only picks the network namespace; go-redis
		// bounds each dial with its own DialTimeout through the context.
		Dialer: w.tagDialer(t.dialerOr(&net.Dialer{})),
	})
	go w.run(ctx, w.period())
	return w
}

// StartTuned is Start through a client tuned to see the servers rather than
// itself: short dial and I/O timeouts, one dial per attempt with a short
// backoff, no retries (one attempt is one record), a pool too large for
// go-redis's dial breaker to open. Its outage is the server's: when the new
// master took its first write. The caller gives it the sentinels it should
// ask (Target.WithoutSentinelOn), or Via.
func StartTuned(ctx context.Context, t Target, rate int) *Writer {
	w := newWriter(rate, ClientTuned)
	dial := w.tagDialer(t.dialerOr(&net.Dialer{Timeout: dialTimeout}))
	if t.Via != "" {
		w.rdb = redis.NewClient(&redis.Options{
			Addr:               t.Via,
			Password:           t.Password,
			Dialer:             dial,
			MaxRetries:         -1,
			DialTimeout:        dialTimeout,
			DialerRetries:      1,
			DialerRetryTimeout: dialBackoff,
			ReadTimeout:        ioTimeout,
			WriteTimeout:       ioTimeout,
			PoolSize:           poolSize,
		})
		go w.run(ctx, w.period())
		return w
	}
	w.rdb = redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:       t.MasterName,
		SentinelAddrs:    t.Sentinels,
		Password:         t.Password,
		SentinelPassword: t.Password,
		Dialer:           dial,
		MaxRetries:       -1,
		DialTimeout:      dialTimeout,
		// One dial per attempt: with the default five, a lookup through an
		// unreachable sentinel outlasts the write deadline and go-redis never
		// moves on to the next sentinel.
		DialerRetries:      1,
		DialerRetryTimeout: dialBackoff,
		ReadTimeout:        ioTimeout,
		WriteTimeout:       ioTimeout,
		PoolSize:           poolSize,
	})
	go w.run(ctx, w.period())
	return w
}

// The two clients, as a WriteLog names them.
const (
	ClientDefault = "default"
	ClientTuned   = "tuned"
)

func newWriter(rate int, client string) *Writer {
	if rate <= 0 {
		rate = 200
	}
	return &Writer{
		stop: make(chan struct{}),
		done: make(chan struct{}),
		log:  WriteLog{RunID: newRunID(), Client: client, Rate: rate, Started: time.Now()},
	}
}

func (w *Writer) period() time.Duration { return time.Second / time.Duration(w.log.Rate) }

// MarkFault records that fault name is being injected now. A later call
// replaces an earlier one: a log has one fault.
func (w *Writer) MarkFault(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log.Fault, w.log.FaultAt = name, time.Now()
}

// Stop lets the attempt in flight finish, stops writing and returns the log.
// Calling it again returns the same log.
func (w *Writer) Stop() *WriteLog {
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		_ = w.rdb.Close()
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.log
	return &l
}

func (w *Writer) run(ctx context.Context, period time.Duration) {
	defer close(w.done)
	// A Ticker drops ticks nobody received, so a slow write is followed by
	// at most one immediate write and then the steady rate again.
	tick := time.NewTicker(period)
	defer tick.Stop()
	for seq := int64(1); ; seq++ {
		w.write(ctx, seq)
		select {
		case <-ctx.Done():
		case <-w.stop:
		case <-tick.C:
			continue
		}
		w.log.Stopped = time.Now()
		return
	}
}

func (w *Writer) write(ctx context.Context, seq int64) {
	key := w.log.Key(seq)
	kb := []byte(key + "\r\n") // as RESP frames it: "rha:x:1" must not match "rha:x:12"
	w.sentTo.Store(nil)
	w.inflight.Store(&kb)
	wctx, cancel := context.WithTimeout(ctx, writeDeadline)
	r := Record{Seq: seq, Start: time.Now()}
	err := w.rdb.Set(wctx, key, seq, 0).Err()
	r.End = time.Now()
	cancel()
	w.inflight.Store(nil)
	if err != nil {
		r.Err = err.Error()
	} else {
		r.Acked = true
		if a := w.sentTo.Load(); a != nil {
			r.Server = *a
		}
	}
	w.log.Records = append(w.log.Records, r)
}

// tagDialer wraps every connection so that the writer learns which address
// a key was sent to. Sentinel connections share the dialer but never carry
// a key.
func (w *Writer) tagDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := &tagConn{Conn: c, addr: addr, w: w}
		// go-redis health-checks idle connections through syscall.Conn and
		// skips the check for anything else: keep it, or a connection the
		// old master closed would cost a failed write instead of a redial.
		if sc, ok := c.(syscall.Conn); ok {
			return tagSysConn{tc, sc}, nil
		}
		return tc, nil
	}
}

type tagConn struct {
	net.Conn
	addr string
	w    *Writer
}

func (c *tagConn) Write(b []byte) (int, error) {
	if k := c.w.inflight.Load(); k != nil && bytes.Contains(b, *k) {
		c.w.sentTo.Store(&c.addr)
	}
	return c.Conn.Write(b)
}

type tagSysConn struct {
	*tagConn
	sc syscall.Conn
}

func (c tagSysConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }

func newRunID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
