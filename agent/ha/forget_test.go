package ha

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// A three-box group, 10.0.0.1 its master, whose box 10.0.0.3 was replaced
// by 10.0.0.4 (peers edited), and a fourth, removed, 10.0.0.5.
var (
	fr1, fr2, fr3, fr4, fr5 = wire.Addr{Host: "10.0.0.1", Port: 6379}, wire.Addr{Host: "10.0.0.2", Port: 6379},
		wire.Addr{Host: "10.0.0.3", Port: 6379}, wire.Addr{Host: "10.0.0.4", Port: 6379}, wire.Addr{Host: "10.0.0.5", Port: 6379}
)

// The group after n3 was replaced by n4: its peers, and the replicas
// linked to n1.
var frPeers, frConn = []wire.Addr{fr1, fr2, fr4}, []wire.Addr{fr2, fr4}

// has3 is the sentinel at box, naming n1, that still remembers n3 (down);
// no3 one that does not.
func has3(box wire.Addr, others ...wire.Addr) knows {
	return knows{box: box, master: fr1, replicas: append([]wire.Addr{fr3}, frConn...), sentinel: append(others, fr3), down: []wire.Addr{fr3}}
}

func no3(box wire.Addr, others ...wire.Addr) knows {
	return knows{box: box, master: fr1, replicas: frConn, sentinel: others}
}

func sentinelAt(a wire.Addr) wire.Addr { return wire.Addr{Host: a.Host, Port: a.Port + 20000} }

// knows is a sentinel at box that names master and remembers the replicas
// and sentinels of the boxes given.
type knows struct {
	box, master        wire.Addr
	replicas, sentinel []wire.Addr
	down               []wire.Addr // of those, the ones flagged down
	ghosts             []wire.Addr // sentinels listed at port 0
	inProgress, err    bool
}

func (k knows) known() Known {
	st := wire.SentinelState{Master: k.master, InProgress: k.inProgress}
	isDown := func(a wire.Addr) bool {
		for _, d := range k.down {
			if d == a {
				return true
			}
		}
		return false
	}
	for _, r := range k.replicas {
		st.Replicas = append(st.Replicas, wire.PeerState{Addr: r, Down: isDown(r)})
	}
	for _, s := range k.sentinel {
		st.Peers = append(st.Peers, wire.PeerState{Addr: sentinelAt(s), Down: isDown(s)})
	}
	for _, g := range k.ghosts {
		st.Peers = append(st.Peers, wire.PeerState{Addr: wire.Addr{Host: g.Host}})
	}
	out := Known{Sentinel: sentinelAt(k.box), State: st}
	if k.err {
		out = Known{Sentinel: sentinelAt(k.box), Err: errors.New("i/o timeout")}
	}
	return out
}

func view(master bool, peers, connected []wire.Addr, ks ...knows) MembersView {
	v := MembersView{Self: fr1, Master: master, Peers: peers, Quorum: len(peers)/2 + 1}
	for _, c := range connected {
		v.Links = append(v.Links, wire.Link{Addr: c, Lag: 1})
	}
	for _, p := range peers {
		v.Sentinels = append(v.Sentinels, sentinelAt(p))
	}
	for _, k := range ks {
		v.Known = append(v.Known, k.known())
	}
	return v
}

// withLink adds a replica the master lists, silent for lag.
func (v MembersView) withLink(a wire.Addr, lag time.Duration) MembersView {
	v.Links = append(slices.Clone(v.Links), wire.Link{Addr: a, Lag: int(lag / time.Second)})
	return v
}

func TestForget(t *testing.T) {
	peers, conn := frPeers, frConn
	tests := []struct {
		name  string
		v     MembersView
		reset wire.Addr // the sentinel reset; zero: none
		wait  string    // in Wait; "" = no wait
		stale int
		alive string // in Alive
		drop  []wire.Addr
	}{
		{"nothing to forget", view(true, peers, conn, no3(fr1, fr2, fr4), no3(fr2, fr1, fr4), no3(fr4, fr1, fr2)),
			wire.Addr{}, "", 0, "", nil},
		{"a replaced box: the first sentinel that remembers it", view(true, peers, conn, has3(fr1, fr2, fr4), has3(fr2, fr1, fr4), no3(fr4, fr1, fr2)),
			sentinelAt(fr1), "", 4, "", nil},
		{"only a sentinel further down remembers it", view(true, peers, conn, no3(fr1, fr2, fr4), has3(fr2, fr1, fr4), no3(fr4, fr1, fr2)),
			sentinelAt(fr2), "", 2, "", nil},
		{"not the master: nothing is reset", view(false, peers, conn, has3(fr1, fr2, fr4), has3(fr2, fr1, fr4), no3(fr4, fr1, fr2)),
			wire.Addr{}, "not the master", 4, "", nil},
		{"a sentinel names another master", view(true, peers, conn, has3(fr1, fr2, fr4),
			knows{box: fr2, master: fr2, sentinel: []wire.Addr{fr1, fr4}}, no3(fr4, fr1, fr2)),
			wire.Addr{}, "names 10.0.0.2:6379 as master", 2, "", nil},
		{"a failover runs", view(true, peers, conn, has3(fr1, fr2, fr4),
			knows{box: fr2, master: fr1, replicas: conn, sentinel: []wire.Addr{fr1, fr4}, inProgress: true}, no3(fr4, fr1, fr2)),
			wire.Addr{}, "failing the master over", 2, "", nil},
		{"no majority answers", view(true, peers, conn, has3(fr1, fr2, fr4), knows{box: fr2, err: true}, knows{box: fr4, err: true}),
			wire.Addr{}, "1 sentinels answer", 2, "", nil},
		{"a quorum and a majority answer: enough", view(true, peers, conn, has3(fr1, fr2, fr4), knows{box: fr2, err: true},
			no3(fr4, fr1, fr2)), sentinelAt(fr1), "", 2, "", nil},
		{"a sentinel has not learnt the new box yet", view(true, peers, conn, has3(fr1, fr2), has3(fr2, fr1, fr4), no3(fr4, fr1, fr2)),
			wire.Addr{}, "10.0.0.1:26379 does not know sentinel 10.0.0.4:26379 yet", 4, "", nil},
		{"a sentinel has not learnt a replica yet", view(true, peers, conn, has3(fr1, fr2, fr4),
			knows{box: fr2, master: fr1, replicas: []wire.Addr{fr4}, sentinel: []wire.Addr{fr1, fr4}}, no3(fr4, fr1, fr2)),
			wire.Addr{}, "10.0.0.2:26379 does not know replica 10.0.0.2:6379 yet", 2, "", nil},
		{"a removed box still runs: it would be learnt again at once", view(true, peers, append(conn, fr3),
			knows{box: fr1, master: fr1, replicas: append(conn, fr3), sentinel: []wire.Addr{fr2, fr4, fr3}},
			knows{box: fr2, master: fr1, replicas: append(conn, fr3), sentinel: []wire.Addr{fr1, fr4, fr3}},
			knows{box: fr4, master: fr1, replicas: append(conn, fr3), sentinel: []wire.Addr{fr1, fr2, fr3}}),
			wire.Addr{}, "", 0, "replica 10.0.0.3:6379", nil},
		{"a box added that this box's peers lack yet", view(true, []wire.Addr{fr1, fr2, fr3}, []wire.Addr{fr2, fr3, fr4},
			knows{box: fr1, master: fr1, replicas: []wire.Addr{fr2, fr3, fr4}, sentinel: []wire.Addr{fr2, fr3, fr4}},
			knows{box: fr2, master: fr1, replicas: []wire.Addr{fr2, fr3, fr4}, sentinel: []wire.Addr{fr1, fr3, fr4}},
			knows{box: fr3, master: fr1, replicas: []wire.Addr{fr2, fr3, fr4}, sentinel: []wire.Addr{fr1, fr2, fr4}}),
			wire.Addr{}, "", 0, "sentinel 10.0.0.4:26379", nil},
		{"a box powered off moments ago: its link is not known dead yet", view(true, peers, conn,
			knows{box: fr1, master: fr1, replicas: append(conn, fr3), sentinel: []wire.Addr{fr2, fr4, fr3}, down: []wire.Addr{fr3}},
			no3(fr2, fr1, fr4), no3(fr4, fr1, fr2)).withLink(fr3, 4*time.Second),
			wire.Addr{}, "10.0.0.3:6379, not in cluster.peers, is still linked", 1, "replica 10.0.0.3:6379", nil},
		{"a box powered off for good: its dead link dropped, and forgotten", view(true, peers, conn,
			knows{box: fr1, master: fr1, replicas: append(conn, fr3), sentinel: []wire.Addr{fr2, fr4, fr3}, down: []wire.Addr{fr3}},
			no3(fr2, fr1, fr4), no3(fr4, fr1, fr2)).withLink(fr3, 12*time.Second),
			sentinelAt(fr1), "", 2, "", []wire.Addr{fr3}},
		{"a dead link of a removed box sharing a member's host is not dropped", view(true, peers, conn,
			no3(fr1, fr2, fr4), no3(fr2, fr1, fr4), no3(fr4, fr1, fr2)).withLink(wire.Addr{Host: fr2.Host, Port: 6380}, time.Minute),
			wire.Addr{}, "", 0, "", nil},
		{"a member's dead link is the group's to handle, not membership's", view(true, peers, nil,
			no3(fr1, fr2, fr4), no3(fr2, fr1, fr4), no3(fr4, fr1, fr2)).withLink(fr2, time.Minute).withLink(fr4, time.Second),
			wire.Addr{}, "", 0, "", nil},
		{"a box re-imaged at its address with a new id: its old self at port 0", view(true, peers, conn,
			knows{box: fr1, master: fr1, replicas: conn, sentinel: []wire.Addr{fr2, fr4}, ghosts: []wire.Addr{fr4}},
			no3(fr2, fr1, fr4), no3(fr4, fr1, fr2)),
			sentinelAt(fr1), "", 1, "", nil},
		{"a removed sentinel not yet seen down is not forgotten: it may still run", view(true, peers, conn,
			knows{box: fr1, master: fr1, replicas: conn, sentinel: []wire.Addr{fr2, fr4, fr5}}, no3(fr2, fr1, fr4), no3(fr4, fr1, fr2)),
			wire.Addr{}, "", 0, "sentinel 10.0.0.5:26379", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Forget{Gap: 5 * time.Second, Settle: 30 * time.Second, DeadAfter: 10 * time.Second}
			got := f.Step(time.Unix(1000, 0), tt.v)
			if got.Reset != tt.reset {
				t.Errorf("reset %v, want %v (wait %q)", got.Reset, tt.reset, got.Wait)
			}
			if (tt.wait == "") != (got.Wait == "") || !strings.Contains(got.Wait, tt.wait) {
				t.Errorf("wait %q, want %q", got.Wait, tt.wait)
			}
			if len(got.Stale) != tt.stale {
				t.Errorf("stale %q, want %d", got.Stale, tt.stale)
			}
			if !strings.Contains(strings.Join(got.Alive, ", "), tt.alive) || (tt.alive == "") != (len(got.Alive) == 0) {
				t.Errorf("alive %q, want %q", got.Alive, tt.alive)
			}
			if !slices.Equal(got.Drop, tt.drop) {
				t.Errorf("drop %v, want %v", got.Drop, tt.drop)
			}
		})
	}
}

// TestForgetStaged walks a replacement through its resets: one sentinel at
// a time, each learning the group again before the next, Gap apart.
func TestForgetStaged(t *testing.T) {
	peers, conn := frPeers, frConn
	blank := func(box wire.Addr) knows { return knows{box: box, master: fr1} }
	f := Forget{Gap: 5 * time.Second, Settle: 30 * time.Second, DeadAfter: 10 * time.Second}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at    time.Duration
		v     MembersView
		reset wire.Addr
		wait  string
	}{
		{0, view(true, peers, conn, has3(fr1, fr2, fr4), has3(fr2, fr1, fr4), has3(fr4, fr1, fr2)), sentinelAt(fr1), ""},
		// Just reset: it knows nobody yet.
		{time.Second, view(true, peers, conn, blank(fr1), has3(fr2, fr1, fr4), has3(fr4, fr1, fr2)), wire.Addr{}, "does not know"},
		// It has learnt the group again, but within Gap.
		{3 * time.Second, view(true, peers, conn, no3(fr1, fr2, fr4), has3(fr2, fr1, fr4), has3(fr4, fr1, fr2)), wire.Addr{}, "resets are 5s apart"},
		{5 * time.Second, view(true, peers, conn, no3(fr1, fr2, fr4), has3(fr2, fr1, fr4), has3(fr4, fr1, fr2)), sentinelAt(fr2), ""},
		// The second never learns the fourth's sentinel (a cut between
		// them): the third waits Settle for it, then goes on.
		{11 * time.Second, view(true, peers, conn, no3(fr1, fr2, fr4), no3(fr2, fr1), has3(fr4, fr1, fr2)), wire.Addr{}, "does not know"},
		{40 * time.Second, view(true, peers, conn, no3(fr1, fr2, fr4), no3(fr2, fr1), has3(fr4, fr1, fr2)), wire.Addr{}, "does not know"},
		{41 * time.Second, view(true, peers, conn, no3(fr1, fr2, fr4), no3(fr2, fr1), has3(fr4, fr1, fr2)), sentinelAt(fr4), ""},
		{50 * time.Second, view(true, peers, conn, no3(fr1, fr2, fr4), no3(fr2, fr1, fr4), no3(fr4, fr1, fr2)), wire.Addr{}, ""},
	}
	for _, s := range steps {
		got := f.Step(t0.Add(s.at), s.v)
		if got.Reset != s.reset || (s.wait == "") != (got.Wait == "") || !strings.Contains(got.Wait, s.wait) {
			t.Errorf("at %s: reset %v wait %q; want reset %v wait %q", s.at, got.Reset, got.Wait, s.reset, s.wait)
		}
	}
}
