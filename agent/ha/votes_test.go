package ha

import (
	"errors"
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

var (
	a        = wire.Addr{Host: "10.0.0.11", Port: 6379}
	b        = wire.Addr{Host: "10.0.0.12", Port: 6379}
	c        = wire.Addr{Host: "10.0.0.13", Port: 6379}
	errDown  = errors.New("connection refused")
	noMaster = wire.Answer{Err: wire.ErrNoMaster}
	failed   = wire.Answer{Err: errDown}
)

func names(m wire.Addr) wire.Answer { return wire.Answer{Master: m} }

func TestMostNamed(t *testing.T) {
	tests := []struct {
		name    string
		answers []wire.Answer
		want    wire.Addr
		votes   int
		ok      bool
	}{
		{"nobody answers", []wire.Answer{failed, failed}, wire.Addr{}, 0, false},
		{"nobody knows a master", []wire.Answer{noMaster, failed}, wire.Addr{}, 0, false},
		{"one sentinel is enough to know", []wire.Answer{names(b), failed, failed}, b, 1, true},
		{"majority wins", []wire.Answer{names(a), names(b), names(b)}, b, 2, true},
		{"tie broken by address, the same on every box", []wire.Answer{names(b), names(a)}, a, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, votes, ok := MostNamed(Named(tt.answers))
			if got != tt.want || votes != tt.votes || ok != tt.ok {
				t.Errorf("MostNamed = %v, %d, %v; want %v, %d, %v", got, votes, ok, tt.want, tt.votes, tt.ok)
			}
		})
	}
	// status counts what each box's sentinel says as text: the same count.
	if m, v, ok := MostNamed([]string{"10.0.0.12:6379", "", "10.0.0.11:6379"}); m != "10.0.0.11:6379" || v != 1 || !ok {
		t.Errorf("MostNamed of strings = %q, %d, %v", m, v, ok)
	}
}

func TestAgreed(t *testing.T) {
	tests := []struct {
		name    string
		answers []wire.Answer
		quorum  int
		want    wire.Addr
		agreed  bool
	}{
		{"all agree", []wire.Answer{names(a), names(a), names(a)}, 2, a, true},
		{"quorum exactly", []wire.Answer{names(a), names(a), failed}, 2, a, true},
		{"below quorum", []wire.Answer{names(a), failed, failed}, 2, wire.Addr{}, false},
		{"split below quorum", []wire.Answer{names(a), names(b), failed}, 2, wire.Addr{}, false},
		{"majority wins", []wire.Answer{names(a), names(a), names(b)}, 2, a, true},
		{"two reach a low quorum", []wire.Answer{names(a), names(b)}, 1, wire.Addr{}, false},
		{"failed answers do not vote for the zero addr", []wire.Answer{failed, failed, failed}, 2, wire.Addr{}, false},
		{"no master is no vote", []wire.Answer{noMaster, noMaster, names(c)}, 2, wire.Addr{}, false},
		{"quorum 0 counts as 1", []wire.Answer{names(b)}, 0, b, true},
		{"none", nil, 1, wire.Addr{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, agreed := Agreed(tt.answers, tt.quorum)
			if got != tt.want || agreed != tt.agreed {
				t.Errorf("Agreed = %v, %v; want %v, %v", got, agreed, tt.want, tt.agreed)
			}
		})
	}
}

func TestReachable(t *testing.T) {
	if n := Reachable([]wire.Answer{names(a), noMaster, failed}); n != 2 {
		t.Errorf("Reachable = %d, want 2: a sentinel without a master answered", n)
	}
}

func TestUnanimous(t *testing.T) {
	tests := []struct {
		name    string
		answers []wire.Answer
		quorum  int
		want    bool
	}{
		{"all name it", []wire.Answer{names(b), names(b), names(b)}, 2, true},
		{"one still names the old master", []wire.Answer{names(b), names(a), names(b)}, 2, false},
		{"one knows no master", []wire.Answer{names(b), noMaster, names(b)}, 2, false},
		{"one down, the others name it", []wire.Answer{names(b), failed, names(b)}, 2, true},
		{"fewer than quorum answer", []wire.Answer{names(b), failed, failed}, 2, false},
		{"nobody answers", []wire.Answer{failed, failed}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Unanimous(tt.answers, b, tt.quorum); got != tt.want {
				t.Errorf("Unanimous = %v, want %v", got, tt.want)
			}
		})
	}
}
