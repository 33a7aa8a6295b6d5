package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// threePeers is a healthy group of three with 10.0.0.11 the master; each
// test case changes what it needs.
func threePeers(vipHeld ...*bool) []PeerStatus {
	m := "10.0.0.11:6379"
	peers := []PeerStatus{
		{Member: m, Role: "master", Reachable: true, Offset: 100},
		{Member: "10.0.0.12:6379", Role: "replica", Reachable: true, Offset: 100, ReplicaOf: m, Link: "connected"},
		{Member: "10.0.0.13:6379", Role: "replica", Reachable: true, Offset: 90, ReplicaOf: m, Link: "connected"},
	}
	for i := range peers {
		peers[i].SentinelUp, peers[i].SentinelMaster, peers[i].SentinelSees = true, m, 3
		if i < len(vipHeld) {
			peers[i].VIPHeld = vipHeld[i]
		}
	}
	return peers
}

func ptr(b bool) *bool { return &b }

// TestSummarizeFenceAndVIP: status holds the fence and the VIP to what the
// agent promises, and names the holders.
func TestSummarizeFenceAndVIP(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	fencedMaster := func(ps []PeerStatus) []PeerStatus { ps[0].Fenced = true; return ps }
	tests := []struct {
		name     string
		vip      string
		peers    []PeerStatus
		healthy  bool
		holders  []string
		problems []string // each must appear in some problem
	}{
		{name: "no vip configured", peers: threePeers(), healthy: true},
		{name: "vip on the master", vip: "10.0.0.100/24", peers: threePeers(yes, no, no), healthy: true,
			holders: []string{"10.0.0.11:6379"}},
		{name: "vip holders unknown on replicas", vip: "10.0.0.100/24", peers: threePeers(yes), healthy: true,
			holders: []string{"10.0.0.11:6379"}},
		{name: "vip on a replica", vip: "10.0.0.100/24", peers: threePeers(no, yes, no),
			holders:  []string{"10.0.0.12:6379"},
			problems: []string{"held by 10.0.0.12:6379, which is not the master", "not on the master 10.0.0.11:6379"}},
		{name: "two holders", vip: "10.0.0.100/24", peers: threePeers(yes, yes, no),
			holders: []string{"10.0.0.11:6379", "10.0.0.12:6379"}, problems: []string{"held by 2 boxes"}},
		{name: "fenced master", peers: fencedMaster(threePeers()), problems: []string{"10.0.0.11:6379 is fenced"}},
		{name: "fenced master keeps the vip", vip: "10.0.0.100/24", peers: fencedMaster(threePeers(yes, no, no)),
			holders: []string{"10.0.0.11:6379"}, problems: []string{"which is fenced"}},
		{name: "fenced master without the vip", vip: "10.0.0.100/24", peers: fencedMaster(threePeers(no, no, no)),
			problems: []string{"is fenced"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.Config{Peers: make([]wire.Addr, 3), VIP: config.VIP{Address: tt.vip}}
			cfg.Cluster.Name = "main"
			gs := summarize(cfg, tt.peers)
			if gs.Healthy != tt.healthy {
				t.Errorf("healthy = %v, want %v (problems %q)", gs.Healthy, tt.healthy, gs.Problems)
			}
			if !slices.Equal(gs.VIPHolders, tt.holders) {
				t.Errorf("vip holders %q, want %q", gs.VIPHolders, tt.holders)
			}
			all := strings.Join(gs.Problems, "\n")
			for _, p := range tt.problems {
				if !strings.Contains(all, p) {
					t.Errorf("problems lack %q:\n%s", p, all)
				}
			}
		})
	}
}

// TestPrintStatusColumns: the table shows FENCED always and VIP only when
// one is configured.
func TestPrintStatusColumns(t *testing.T) {
	tests := []struct {
		name  string
		vip   string
		peers []PeerStatus
		want  []string
		not   []string
	}{
		{name: "no vip", peers: threePeers(), want: []string{"FENCED", "healthy"}, not: []string{"VIP", "vip"}},
		{name: "vip held", vip: "10.0.0.100/24", peers: threePeers(ptr(true), ptr(false)),
			want: []string{"vip 10.0.0.100/24 on 10.0.0.11:6379", "\tVIP", "held", "?"}},
		{name: "fenced", peers: func() []PeerStatus { p := threePeers(); p[0].Fenced = true; return p }(),
			want: []string{"FENCED", "problem: 10.0.0.11:6379 is fenced"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.Config{Peers: make([]wire.Addr, 3), VIP: config.VIP{Address: tt.vip}}
			cfg.Cluster.Name = "main"
			var out bytes.Buffer
			printStatus(&out, summarize(cfg, tt.peers))
			// tabwriter pads with spaces; compare with tabs for the header.
			text := out.String()
			raw := strings.Join(strings.Fields(text), "\t")
			for _, w := range tt.want {
				if !strings.Contains(text, w) && !strings.Contains(raw, strings.TrimPrefix(w, "\t")) {
					t.Errorf("output lacks %q:\n%s", w, text)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(text, n) {
					t.Errorf("output has %q:\n%s", n, text)
				}
			}
		})
	}
}

// TestStatusFieldsAgree: /status carries every field of a `status --json`
// peer under the same names (PRODUCT.md), fenced and vip_held included.
func TestStatusFieldsAgree(t *testing.T) {
	self := wire.Addr{Host: "10.0.0.11", Port: 6379}
	s := ha.Snapshot{Self: self, Peers: 3, RedisUp: true, Role: wire.Role{Kind: "master"}, Named: self, Usable: 3, Fenced: true}
	n := &node{}
	n.pub.Store(&published{cfg: &config.Config{}, view: ha.View{S: s, At: time.Now()}})
	rec := httptest.NewRecorder()
	n.httpHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	var box map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &box); err != nil {
		t.Fatal(err)
	}
	peer, err := json.Marshal(PeerStatus{Fenced: true, VIPHeld: ptr(true), Error: "x", ReplicaOf: "x", Link: "x", SentinelMaster: "x"})
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(peer, &want); err != nil {
		t.Fatal(err)
	}
	for k := range want {
		switch k {
		case "vip_held", "error", "replica_of", "link": // omitted when empty: no VIP, no error, a master
			continue
		}
		if _, ok := box[k]; !ok {
			t.Errorf("/status lacks %q, which status --json has: %s", k, rec.Body)
		}
	}
	if box["fenced"] != true {
		t.Errorf("/status fenced = %v, want true", box["fenced"])
	}
}

// TestProbePeerSentinelWithoutGroup: a live sentinel that does not monitor
// the group is up, not down (MasterAddr wraps ErrNoMaster).
func TestProbePeerSentinelWithoutGroup(t *testing.T) {
	role := testutil.ServeRESP(t, func(args []string) string {
		if strings.EqualFold(args[0], "ROLE") {
			return "*5\r\n$5\r\nslave\r\n$8\r\n10.0.0.1\r\n:6379\r\n$9\r\nconnected\r\n:0\r\n"
		}
		return "-ERR unknown command\r\n"
	})
	sent := testutil.ServeRESP(t, func(args []string) string {
		if strings.EqualFold(args[0], "SENTINEL") {
			return "*-1\r\n" // GET-MASTER-ADDR-BY-NAME of a group it does not know
		}
		return "-ERR unknown command\r\n"
	})
	cfg := &config.Config{Peers: []wire.Addr{{Host: "127.0.0.1", Port: role.Port()}}, SentinelPort: sent.Port()}
	cfg.Redis.Port, cfg.Cluster.Name = role.Port(), "main"
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	ps := probePeer(ctx, cfg, wire.Addr{Host: "127.0.0.1", Port: role.Port()})
	if !ps.SentinelUp || ps.SentinelMaster != "" {
		t.Errorf("probePeer: sentinel_up %v, sentinel_master %q; want up, no master", ps.SentinelUp, ps.SentinelMaster)
	}
	if !ps.Reachable || ps.Role != "replica" {
		t.Errorf("probePeer: reachable %v, role %q; want a reachable replica", ps.Reachable, ps.Role)
	}
}
