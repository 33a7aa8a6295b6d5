package sentinel

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/internal/nbio"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// Prober asks a fixed set of sentinels, round after round, which master
// they name for one group: the agent's fence asks every sentinel four times
// a second for as long as its box is master. Through go-redis each round
// cost a goroutine, a pool checkout and a blocking read per sentinel, and
// on an idle box those wake-ups were most of the agent's CPU.
//
// A Prober keeps one connection per sentinel (plain, or TLS when the
// group's Creds say so) and is driven from one goroutine. Collect reads, without blocking, the answers that arrived since
// the previous round (a sentinel answers within a millisecond, so they are
// there), and Send asks the next question: a round costs the caller one
// wake-up. Wait blocks for the answers when the caller needs them now.
// Answers are stamped with when their question was sent, which is the
// moment they prove the sentinel was reachable.
//
// Not safe for concurrent use; Close ends the dials it started.
type Prober struct {
	name     string
	creds    Creds
	question []byte
	conns    []*probeConn
	asked    time.Time // when the latest question went out

	ctx    context.Context // ends the dials on Close
	cancel context.CancelFunc
	dials  sync.WaitGroup
}

type probeConn struct {
	addr    wire.Addr
	conn    net.Conn // nil while disconnected
	raw     transport
	buf     []byte      // bytes read but not yet parsed
	pending []time.Time // when each unanswered question was sent, oldest first
	dialing bool
	dialed  chan dialResult // capacity 1: the dialer never blocks
	last    probeAnswer
}

type dialResult struct {
	conn net.Conn
	err  error
}

type probeAnswer struct {
	master wire.Addr
	err    error
	asked  time.Time // when the question this answers was sent
}

// Bounds of one connection. A question unanswered for probeStale drops the
// connection and dials again: a sentinel that comes back from a partition
// or a freeze is then heard at once, not after TCP's retransmission backoff
// or behind a queue of stale questions. The dial bounds match options().
const (
	probeStale       = time.Second
	probeDialTimeout = 500 * time.Millisecond
	probeAuthTimeout = time.Second
)

// NewProber returns a Prober of the group's sentinels. It dials on the
// first Send.
func NewProber(g Group) *Prober {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Prober{name: g.Name, creds: g.Creds, ctx: ctx, cancel: cancel,
		question: command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", g.Name)}
	for _, a := range g.Sentinels {
		p.conns = append(p.conns, &probeConn{addr: a, dialed: make(chan dialResult, 1)})
	}
	return p
}

// Close closes every connection and waits for dials in flight.
func (p *Prober) Close() {
	p.cancel()
	p.dials.Wait()
	for _, c := range p.conns {
		c.drop()
		select {
		case d := <-c.dialed:
			if d.conn != nil {
				d.conn.Close()
			}
		default:
		}
	}
}

// Collect reads the answers that have arrived, without blocking.
func (p *Prober) Collect() {
	for _, c := range p.conns {
		c.adopt()
		c.receive(false)
	}
}

// Send asks every connected sentinel the question once more, stamped now,
// and starts a dial to any that is not connected.
func (p *Prober) Send(now time.Time) {
	p.asked = now
	for _, c := range p.conns {
		c.adopt()
		if c.conn != nil && len(c.pending) > 0 && now.Sub(c.pending[0]) > probeStale {
			c.drop()
		}
		if c.conn == nil {
			p.dial(c)
			continue
		}
		c.ask(p.question, now)
	}
}

// Wait blocks until every question sent so far is answered, or ctx ends.
// A sentinel whose dial is in flight is asked as soon as it connects.
func (p *Prober) Wait(ctx context.Context) {
	deadline, _ := ctx.Deadline()
	for _, c := range p.conns {
		if c.conn == nil && c.dialing {
			select {
			case <-ctx.Done():
			case d := <-c.dialed:
				c.dialing = false
				c.take(d)
				if c.conn != nil {
					c.ask(p.question, p.asked)
				}
			}
		}
		// Read what is there first: a sentinel that timed out before this
		// one must not cost this one its answer.
		c.receive(false)
		for c.conn != nil && len(c.pending) > 0 && ctx.Err() == nil {
			_ = c.conn.SetReadDeadline(deadline)
			c.receive(true)
			if c.conn != nil {
				_ = c.conn.SetReadDeadline(time.Time{})
			}
		}
	}
}

// Asked is when the latest question went out; zero before the first Send.
func (p *Prober) Asked() time.Time { return p.asked }

// Answers returns one answer per sentinel, in the order given to NewProber,
// to the latest question, and when that question was sent. A sentinel that
// has not answered it yet has an error.
func (p *Prober) Answers() ([]wire.Answer, time.Time) {
	out := make([]wire.Answer, len(p.conns))
	for i, c := range p.conns {
		out[i] = wire.Answer{Sentinel: c.addr, Master: c.last.master, Err: c.last.err}
		if p.asked.IsZero() || c.last.asked.Before(p.asked) {
			out[i].Master = wire.Addr{}
			if c.last.err == nil || !c.last.asked.IsZero() {
				out[i].Err = fmt.Errorf("sentinel %s: no answer to the question sent at %s", c.addr, p.asked.Format(time.StampMilli))
			} // else the connection failed, and its error says why
		}
	}
	return out, p.asked
}

// dial connects and authenticates in the background; Send or Wait adopts
// the connection.
func (p *Prober) dial(c *probeConn) {
	if c.dialing {
		return
	}
	c.dialing = true
	p.dials.Go(func() {
		conn, err := dialSentinel(p.ctx, c.addr, p.creds)
		c.dialed <- dialResult{conn: conn, err: err}
	})
}

func dialSentinel(ctx context.Context, a wire.Addr, cr Creds) (net.Conn, error) {
	d := net.Dialer{Timeout: probeDialTimeout}
	conn, err := d.DialContext(ctx, "tcp", a.String())
	if err != nil {
		return nil, fmt.Errorf("sentinel %s: dial: %w", a, err)
	}
	if cr.TLS != nil {
		tc := cr.TLS.Clone()
		tc.ServerName = a.Host
		tconn := tls.Client(conn, tc)
		hctx, cancel := context.WithTimeout(ctx, probeAuthTimeout)
		err := tconn.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("sentinel %s: tls: %w", a, err)
		}
		conn = tconn
	}
	if cr.Password == "" {
		return conn, nil
	}
	auth := command("AUTH", cr.Password)
	if cr.User != "" {
		auth = command("AUTH", cr.User, cr.Password)
	}
	_ = conn.SetDeadline(time.Now().Add(probeAuthTimeout))
	if _, err := conn.Write(auth); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sentinel %s: auth: %w", a, err)
	}
	var buf []byte
	scratch := make([]byte, 256)
	for {
		n, err := conn.Read(scratch)
		buf = append(buf, scratch[:n]...)
		if v, used, perr := parseReply(buf); perr != nil || used > 0 {
			if perr == nil {
				if e, ok := v.(replyError); ok {
					perr = e
				}
			}
			if perr != nil {
				conn.Close()
				return nil, fmt.Errorf("sentinel %s: auth: %w", a, perr)
			}
			break
		}
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("sentinel %s: auth: %w", a, err)
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// adopt takes over a finished dial.
func (c *probeConn) adopt() {
	if !c.dialing {
		return
	}
	select {
	case d := <-c.dialed:
		c.dialing = false
		c.take(d)
	default:
	}
}

func (c *probeConn) take(d dialResult) {
	if d.err != nil {
		c.last = probeAnswer{err: d.err}
		return
	}
	sock := d.conn
	tconn, isTLS := d.conn.(*tls.Conn)
	if isTLS {
		sock = tconn.NetConn()
	}
	raw, err := nbio.New(sock)
	if err != nil {
		d.conn.Close()
		c.last = probeAnswer{err: fmt.Errorf("sentinel %s: %w", c.addr, err)}
		return
	}
	c.conn, c.raw = d.conn, plainTransport{raw}
	if isTLS {
		c.raw = &tlsTransport{conn: tconn, sock: raw}
	}
}

// transport is how a probeConn reads and writes: straight on the socket,
// or through TLS.
type transport interface {
	Read(b []byte, wait bool) (int, error)
	Write(b []byte) (int, error)
	// Drained says whether a read shorter than its buffer means nothing
	// more is there: true of a socket, not of TLS, which hands out one
	// record a read and may hold more it has already taken in.
	Drained() bool
}

type plainTransport struct{ *nbio.Conn }

func (plainTransport) Drained() bool { return true }

type tlsTransport struct {
	conn *tls.Conn
	sock *nbio.Conn // the socket under conn, to ask whether bytes wait
}

// tlsRecordWait bounds a read that found bytes on the socket: the rest of
// their record follows within the same round trip.
const tlsRecordWait = 50 * time.Millisecond

// Read without wait returns ErrWouldBlock at once when neither the socket
// nor TLS's own buffer holds a record: a read deadline in the past fails the
// socket read, not one TLS can answer from what it has, and TLS keeps a
// partial record across a timeout.
func (t *tlsTransport) Read(b []byte, wait bool) (int, error) {
	if wait {
		return t.conn.Read(b) // up to the caller's deadline
	}
	deadline := time.Unix(1, 0)
	if more, err := t.sock.Pending(); err != nil {
		return 0, err
	} else if more {
		deadline = time.Now().Add(tlsRecordWait)
	}
	_ = t.conn.SetReadDeadline(deadline)
	n, err := t.conn.Read(b)
	_ = t.conn.SetReadDeadline(time.Time{})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, nbio.ErrWouldBlock
	}
	return n, err
}

func (t *tlsTransport) Write(b []byte) (int, error) {
	_ = t.conn.SetWriteDeadline(time.Now().Add(probeStale))
	n, err := t.conn.Write(b)
	_ = t.conn.SetWriteDeadline(time.Time{})
	return n, err
}

func (t *tlsTransport) Drained() bool { return false }

func (c *probeConn) drop() {
	if c.conn != nil {
		c.conn.Close()
	}
	c.conn, c.raw, c.buf, c.pending = nil, nil, c.buf[:0], c.pending[:0]
}

func (c *probeConn) fail(op string, err error) {
	c.last = probeAnswer{err: fmt.Errorf("sentinel %s: %s: %w", c.addr, op, err)}
	c.drop()
}

// ask writes the question. The socket is non-blocking and the question a
// few dozen bytes: a write that would block means a peer that has not read
// for a long time, and that connection is dropped.
func (c *probeConn) ask(q []byte, now time.Time) {
	n, err := c.raw.Write(q)
	switch {
	case err != nil:
		c.fail("write", err)
	case n != len(q):
		c.fail("write", fmt.Errorf("short write: %d of %d bytes", n, len(q)))
	default:
		c.pending = append(c.pending, now)
	}
}

// receive reads what the socket holds and records every complete answer.
// With wait it first waits (up to the read deadline) for something to read.
func (c *probeConn) receive(wait bool) {
	if c.conn == nil {
		return
	}
	var scratch [512]byte
	for {
		n, err := c.raw.Read(scratch[:], wait)
		wait = false
		if errors.Is(err, nbio.ErrWouldBlock) {
			return
		}
		if err != nil {
			c.fail("read", err)
			return
		}
		c.buf = append(c.buf, scratch[:n]...)
		if !c.parse() || (n < len(scratch) && c.raw.Drained()) {
			return
		}
	}
}

// parse records every complete answer in buf; false when the connection
// had to be dropped.
func (c *probeConn) parse() bool {
	for len(c.buf) > 0 {
		v, used, err := parseReply(c.buf)
		if err != nil {
			c.fail("read", err)
			return false
		}
		if used == 0 {
			return true
		}
		c.buf = c.buf[:copy(c.buf, c.buf[used:])]
		if len(c.pending) == 0 {
			c.fail("read", errors.New("an answer to no question"))
			return false
		}
		asked := c.pending[0]
		c.pending = c.pending[:copy(c.pending, c.pending[1:])]
		m, err := masterReply(v)
		if err != nil {
			err = fmt.Errorf("sentinel %s: get-master-addr-by-name: %w", c.addr, err)
		}
		c.last = probeAnswer{master: m, err: err, asked: asked}
	}
	return true
}

// masterReply reads GET-MASTER-ADDR-BY-NAME's answer: [host, port], or nil
// for a group the sentinel does not monitor.
func masterReply(v any) (wire.Addr, error) {
	switch v := v.(type) {
	case nil:
		return wire.Addr{}, wire.ErrNoMaster
	case replyError:
		if strings.Contains(string(v), "No such master") {
			return wire.Addr{}, wire.ErrNoMaster
		}
		return wire.Addr{}, v
	case []any:
		if len(v) == 2 {
			host, ok1 := v[0].(string)
			port, ok2 := v[1].(string)
			if p, err := strconv.Atoi(port); ok1 && ok2 && err == nil {
				return wire.Addr{Host: host, Port: p}, nil
			}
		}
	}
	return wire.Addr{}, fmt.Errorf("reply %v", v)
}

// command encodes a command as a RESP array of bulk strings.
func command(args ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"+a+"\r\n"...)
	}
	return b
}

// replyError is a RESP error reply ("-ERR ...").
type replyError string

func (e replyError) Error() string { return string(e) }

// maxBulk is Redis's own limit on a bulk string (proto-max-bulk-len).
const maxBulk = 512 << 20

// parseReply parses one RESP2 reply from the front of b: a string, an
// int64, a replyError, nil, or []any of those. used is 0 when b does not
// hold a whole reply yet.
func parseReply(b []byte) (v any, used int, err error) {
	i := bytes.Index(b, []byte("\r\n"))
	if i < 0 {
		return nil, 0, nil
	}
	if i == 0 {
		return nil, 0, errors.New("resp: empty line")
	}
	line, used := string(b[1:i]), i+2
	switch b[0] {
	case '+':
		return line, used, nil
	case '-':
		return replyError(line), used, nil
	case ':':
		n, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("resp: integer %q", line)
		}
		return n, used, nil
	case '$':
		n, err := strconv.Atoi(line)
		if err != nil || n < -1 || n > maxBulk {
			return nil, 0, fmt.Errorf("resp: bulk length %q", line)
		}
		if n == -1 {
			return nil, used, nil
		}
		if len(b)-used-2 < n {
			return nil, 0, nil
		}
		return string(b[used : used+n]), used + n + 2, nil
	case '*':
		n, err := strconv.Atoi(line)
		if err != nil || n < -1 {
			return nil, 0, fmt.Errorf("resp: array length %q", line)
		}
		if n == -1 {
			return nil, used, nil
		}
		out := make([]any, 0, min(n, 16)) // n is the peer's word: allocate as elements arrive
		for range n {
			e, u, err := parseReply(b[used:])
			if err != nil || u == 0 {
				return nil, 0, err
			}
			out = append(out, e)
			used += u
		}
		return out, used, nil
	}
	return nil, 0, fmt.Errorf("resp: unexpected type byte %q", b[0])
}
