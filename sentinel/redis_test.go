package sentinel

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

func TestParseRole(t *testing.T) {
	tests := []struct {
		name    string
		reply   []any
		want    wire.Role
		wantErr bool
	}{
		{"master", []any{"master", int64(3129659), []any{
			[]any{"127.0.0.1", "9001", "3129242"},
			[]any{"10.0.0.7", "9002", "3129543"},
		}}, wire.Role{Kind: "master", Offset: 3129659, Replicas: []wire.Replica{
			{Addr: wire.Addr{Host: "127.0.0.1", Port: 9001}, Offset: 3129242}, {Addr: wire.Addr{Host: "10.0.0.7", Port: 9002}, Offset: 3129543},
		}}, false},
		{"lonely master", []any{"master", int64(0), []any{}}, wire.Role{Kind: "master"}, false},
		{"replica", []any{"slave", "127.0.0.1", int64(9000), "connected", int64(3167038)},
			wire.Role{Kind: "slave", Master: wire.Addr{Host: "127.0.0.1", Port: 9000}, Link: "connected", Offset: 3167038}, false},
		{"replica before sync", []any{"slave", "10.0.0.5", int64(6379), "connect", int64(-1)},
			wire.Role{Kind: "slave", Master: wire.Addr{Host: "10.0.0.5", Port: 6379}, Link: "connect", Offset: -1}, false},
		{"sentinel", []any{"sentinel", []any{"mym"}}, wire.Role{Kind: "sentinel"}, false},
		{"empty", []any{}, wire.Role{}, true},
		{"short master", []any{"master", int64(1)}, wire.Role{}, true},
		{"bad replica entry", []any{"master", int64(1), []any{[]any{"h", "x", "1"}}}, wire.Role{}, true},
		{"short slave", []any{"slave", "h", int64(1)}, wire.Role{}, true},
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
func fakeRedis(t *testing.T, reply func(args []string) string) wire.Addr {
	t.Helper()
	return wire.Addr{Host: "127.0.0.1", Port: testutil.ServeRESP(t, reply).Port()}
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
			c := NewRedis(addr, Creds{})
			defer c.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			got, err := c.Loading(ctx)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("Loading = %v, %v; want %v, err=%v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestClientFailsFast(t *testing.T) {
	// A port nothing listens on: with go-redis's defaults this takes seconds.
	addr := wire.Addr{Host: "127.0.0.1", Port: testutil.ClosedPort(t)}
	c := NewRedis(addr, Creds{Password: "pw"})
	defer c.Close()
	start := time.Now()
	if _, err := c.Role(t.Context()); err == nil {
		t.Fatal("Role on a closed port succeeded")
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Role on a closed port took %v", d)
	}
}
