package agent

import (
	"errors"
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
)

func TestMostNamed(t *testing.T) {
	a := sentinel.Addr{Host: "10.0.0.11", Port: 6379}
	b := sentinel.Addr{Host: "10.0.0.12", Port: 6379}
	down := errors.New("connection refused")
	tests := []struct {
		name    string
		answers []sentinel.Answer
		want    sentinel.Addr
		votes   int
		ok      bool
	}{
		{"nobody answers", []sentinel.Answer{{Err: down}, {Err: down}}, sentinel.Addr{}, 0, false},
		{"nobody knows a master", []sentinel.Answer{{Err: sentinel.ErrNoMaster}, {Err: down}}, sentinel.Addr{}, 0, false},
		{"one sentinel is enough to know", []sentinel.Answer{{Master: b}, {Err: down}, {Err: down}}, b, 1, true},
		{"majority wins", []sentinel.Answer{{Master: a}, {Master: b}, {Master: b}}, b, 2, true},
		{"tie broken by address, the same on every box", []sentinel.Answer{{Master: b}, {Master: a}}, a, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, votes, ok := mostNamed(tt.answers)
			if got != tt.want || votes != tt.votes || ok != tt.ok {
				t.Errorf("mostNamed = %v, %d, %v; want %v, %d, %v", got, votes, ok, tt.want, tt.votes, tt.ok)
			}
		})
	}
}
