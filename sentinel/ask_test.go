package sentinel

import (
	"errors"
	"testing"
)

func TestAgreed(t *testing.T) {
	a := Addr{Host: "10.0.0.5", Port: 6379}
	b := Addr{Host: "10.0.0.6", Port: 6379}
	down := errors.New("connection refused")
	ok := func(m Addr) Answer { return Answer{Master: m} }
	failed := Answer{Err: down}
	tests := []struct {
		name    string
		answers []Answer
		quorum  int
		want    Addr
		agreed  bool
	}{
		{"all agree", []Answer{ok(a), ok(a), ok(a)}, 2, a, true},
		{"quorum exactly", []Answer{ok(a), ok(a), failed}, 2, a, true},
		{"below quorum", []Answer{ok(a), failed, failed}, 2, Addr{}, false},
		{"split below quorum", []Answer{ok(a), ok(b), failed}, 2, Addr{}, false},
		{"majority wins", []Answer{ok(a), ok(a), ok(b)}, 2, a, true},
		{"two reach a low quorum", []Answer{ok(a), ok(b)}, 1, Addr{}, false},
		{"failed answers do not vote for the zero addr", []Answer{failed, failed, failed}, 2, Addr{}, false},
		{"quorum 0 counts as 1", []Answer{ok(b)}, 0, b, true},
		{"none", nil, 1, Addr{}, false},
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

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in      string
		defPort int
		want    Addr
		wantErr bool
	}{
		{"10.0.0.5", 6379, Addr{"10.0.0.5", 6379}, false},
		{"10.0.0.5:6380", 6379, Addr{"10.0.0.5", 6380}, false},
		{"redis-a.example", 26379, Addr{"redis-a.example", 26379}, false},
		{"redis-a.example:1", 26379, Addr{"redis-a.example", 1}, false},
		{"::1", 6379, Addr{"::1", 6379}, false},
		{"[::1]", 6379, Addr{"::1", 6379}, false},
		{"[fe80::1]:6380", 6379, Addr{"fe80::1", 6380}, false},
		{"", 6379, Addr{}, true},
		{":6379", 6379, Addr{}, true},
		{"host:", 6379, Addr{}, true},
		{"host:0", 6379, Addr{}, true},
		{"host:65536", 6379, Addr{}, true},
		{"host:port", 6379, Addr{}, true},
		{"a:b:c", 6379, Addr{}, true},
		{"[nope]", 6379, Addr{}, true},
		{"[::1", 6379, Addr{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAddr(tt.in, tt.defPort)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseAddr(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
	if s := (Addr{Host: "::1", Port: 6379}).String(); s != "[::1]:6379" {
		t.Errorf("String = %q", s)
	}
}

func TestParseSwitch(t *testing.T) {
	tests := []struct {
		payload string
		want    *Switch
	}{
		{"mym 127.0.0.1 17101 127.0.0.1 17102", &Switch{Name: "mym", Old: Addr{"127.0.0.1", 17101}, New: Addr{"127.0.0.1", 17102}}},
		{"mym ::1 6379 fe80::2 6380", &Switch{Name: "mym", Old: Addr{"::1", 6379}, New: Addr{"fe80::2", 6380}}},
		{"mym 127.0.0.1 17101 127.0.0.1", nil},
		{"mym 127.0.0.1 x 127.0.0.1 17102", nil},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.payload, func(t *testing.T) {
			got := parseSwitch(tt.payload)
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Errorf("parseSwitch = %+v, want %+v", got, tt.want)
			}
		})
	}
}
