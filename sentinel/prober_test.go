package sentinel

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

func TestParseReply(t *testing.T) {
	tests := []struct {
		in   string
		want any
		used int // 0: incomplete
	}{
		{"+OK\r\n", "OK", 5},
		{"-ERR No such master with that name\r\n", replyError("ERR No such master with that name"), 36},
		{":42\r\n", int64(42), 5},
		{"$-1\r\n", nil, 5},
		{"*-1\r\n", nil, 5},
		{"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n", []any{"127.0.0.1", "6379"}, 29},
		{"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n+OK\r\n", []any{"127.0.0.1", "6379"}, 29},
		{"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n63", nil, 0},
		{"$5\r\nab", nil, 0},
		{"+O", nil, 0},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.in, "\r\n", " "), func(t *testing.T) {
			v, used, err := parseReply([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if used != tt.used || !equalReply(v, tt.want) {
				t.Errorf("parseReply = %#v, %d; want %#v, %d", v, used, tt.want, tt.used)
			}
		})
	}
	for _, bad := range []string{"?x\r\n", "$9223372036854775807\r\n", "$536870913\r\n", "*x\r\n"} {
		if _, _, err := parseReply([]byte(bad)); err == nil {
			t.Errorf("parseReply(%q): no error", bad)
		}
	}
}

func equalReply(a, b any) bool {
	as, ok1 := a.([]any)
	bs, ok2 := b.([]any)
	if ok1 != ok2 {
		return false
	}
	if !ok1 {
		return a == b
	}
	if len(as) != len(bs) {
		return false
	}
	for i := range as {
		if !equalReply(as[i], bs[i]) {
			return false
		}
	}
	return true
}

// fakeSentinel answers AUTH and GET-MASTER-ADDR-BY-NAME like a sentinel
// that names 10.0.0.1:6379, until frozen: then it reads and never answers.
type fakeSentinel struct {
	addr   wire.Addr
	frozen atomic.Bool
	asked  atomic.Int64
}

func newFakeSentinel(t *testing.T) *fakeSentinel {
	t.Helper()
	f := &fakeSentinel{}
	srv := testutil.ServeRESP(t, func(args []string) string {
		switch {
		case f.frozen.Load():
			return ""
		case args[0] == "AUTH" && args[1] == "pw":
			return "+OK\r\n"
		case args[0] == "AUTH":
			return "-WRONGPASS invalid username-password pair\r\n"
		case len(args) > 2 && args[2] == "main":
			f.asked.Add(1)
			return "*2\r\n$8\r\n10.0.0.1\r\n$4\r\n6379\r\n"
		}
		return "*-1\r\n"
	})
	f.addr = wire.Addr{Host: "127.0.0.1", Port: srv.Port()}
	return f
}

func TestProber(t *testing.T) {
	up, frozen := newFakeSentinel(t), newFakeSentinel(t)
	closedAddr := wire.Addr{Host: "127.0.0.1", Port: testutil.ClosedPort(t)}
	sentinels := []wire.Addr{up.addr, frozen.addr, closedAddr}
	p := NewProber(Group{Name: "main", Creds: Creds{Password: "pw"}, Sentinels: sentinels})
	defer p.Close()
	master := wire.Addr{Host: "10.0.0.1", Port: 6379}

	// A round that waits: the dials are in flight and are asked as they connect.
	frozen.frozen.Store(false)
	p.Send(time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	p.Wait(ctx)
	cancel()
	got, _ := p.Answers()
	if got[0].Err != nil || got[0].Master != master || got[1].Err != nil || got[1].Master != master {
		t.Fatalf("first round: %+v", got)
	}
	if got[2].Err == nil {
		t.Fatalf("a closed port answered: %+v", got[2])
	}

	// Rounds that read the previous round's answers without waiting; the
	// frozen sentinel stops answering.
	frozen.frozen.Store(true)
	asked := time.Now()
	p.Send(asked)
	time.Sleep(100 * time.Millisecond)
	p.Collect()
	got, at := p.Answers()
	if !at.Equal(asked) {
		t.Errorf("answers stamped %v, want %v", at, asked)
	}
	if got[0].Err != nil || got[0].Master != master {
		t.Errorf("the live sentinel: %+v", got[0])
	}
	if got[1].Err == nil || got[2].Err == nil {
		t.Errorf("the frozen and the closed sentinels count as answering: %+v", got[1:])
	}

	// A question not yet answered is not answered by an older answer.
	p.Send(time.Now())
	got, _ = p.Answers()
	if got[0].Err == nil {
		t.Errorf("answer before the question was answered: %+v", got[0])
	}

	// After a second without an answer the connection is dropped and dialed
	// again; once thawed, the sentinel answers on the new one.
	time.Sleep(probeStale + 100*time.Millisecond)
	frozen.frozen.Store(false)
	p.Send(time.Now()) // drops and starts the dial
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	p.Wait(ctx)
	cancel()
	got, _ = p.Answers()
	if got[1].Err != nil || got[1].Master != master {
		t.Errorf("the thawed sentinel: %+v", got[1])
	}
}

func TestProberWrongPassword(t *testing.T) {
	s := newFakeSentinel(t)
	p := NewProber(Group{Name: "main", Creds: Creds{Password: "nope"}, Sentinels: []wire.Addr{s.addr}})
	defer p.Close()
	p.Send(time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p.Wait(ctx)
	got, _ := p.Answers()
	if got[0].Err == nil || !strings.Contains(got[0].Err.Error(), "WRONGPASS") {
		t.Errorf("answer with a wrong password: %+v", got[0])
	}
}
