package sentinel

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

func TestParseRole(t *testing.T) {
	tests := []struct {
		name    string
		reply   []any
		want    Role
		wantErr bool
	}{
		{"master", []any{"master", int64(3129659), []any{
			[]any{"127.0.0.1", "9001", "3129242"},
			[]any{"10.0.0.7", "9002", "3129543"},
		}}, Role{Kind: "master", Offset: 3129659, Replicas: []Replica{
			{Addr{"127.0.0.1", 9001}, 3129242}, {Addr{"10.0.0.7", 9002}, 3129543},
		}}, false},
		{"lonely master", []any{"master", int64(0), []any{}}, Role{Kind: "master"}, false},
		{"replica", []any{"slave", "127.0.0.1", int64(9000), "connected", int64(3167038)},
			Role{Kind: "slave", Master: Addr{"127.0.0.1", 9000}, Link: "connected", Offset: 3167038}, false},
		{"replica before sync", []any{"slave", "10.0.0.5", int64(6379), "connect", int64(-1)},
			Role{Kind: "slave", Master: Addr{"10.0.0.5", 6379}, Link: "connect", Offset: -1}, false},
		{"sentinel", []any{"sentinel", []any{"mym"}}, Role{Kind: "sentinel"}, false},
		{"empty", []any{}, Role{}, true},
		{"short master", []any{"master", int64(1)}, Role{}, true},
		{"bad replica entry", []any{"master", int64(1), []any{[]any{"h", "x", "1"}}}, Role{}, true},
		{"short slave", []any{"slave", "h", int64(1)}, Role{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRole(tt.reply)
			if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseRole = %+v, %v; want %+v, err=%v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// fakeRedis serves RESP2 on loopback and answers every command with
// reply(args).
func fakeRedis(t *testing.T, reply func(args []string) string) Addr {
	t.Helper()
	return Addr{Host: "127.0.0.1", Port: testutil.ServeRESP(t, reply).Port()}
}

func TestLoading(t *testing.T) {
	tests := []struct {
		name    string
		info    string // reply to INFO, raw RESP
		want    bool
		wantErr bool
	}{
		{"loaded", testutil.Bulk("# Persistence\r\nloading:0\r\nasync_loading:0\r\n"), false, false},
		{"loading", testutil.Bulk("# Persistence\r\nloading:1\r\nasync_loading:0\r\n"), true, false},
		{"LOADING error", "-LOADING Redis is loading the dataset in memory\r\n", true, false},
		{"other error", "-ERR something else\r\n", false, true},
		{"no field", testutil.Bulk("# Persistence\r\n"), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := fakeRedis(t, func(args []string) string {
				if strings.EqualFold(args[0], "info") {
					return tt.info
				}
				return "-ERR unknown command\r\n" // HELLO: go-redis falls back to RESP2
			})
			c := NewRedisClient(addr, "")
			defer c.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			got, err := Loading(ctx, c)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("Loading = %v, %v; want %v, err=%v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestClientFailsFast(t *testing.T) {
	// A port nothing listens on: with go-redis's defaults this takes seconds.
	addr := Addr{Host: "127.0.0.1", Port: testutil.ClosedPort(t)}
	c := NewRedisClient(addr, "pw")
	defer c.Close()
	start := time.Now()
	if _, err := ProbeRole(t.Context(), c); err == nil {
		t.Fatal("ProbeRole on a closed port succeeded")
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("ProbeRole on a closed port took %v", d)
	}
}
