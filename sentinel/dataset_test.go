package sentinel

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestDataHeld runs a real redis-server in a directory, empty and then with
// a key, AOF and RDB, and reads what it left behind.
func TestDataHeld(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("no redis-server")
	}
	for _, tc := range []struct {
		name  string
		args  []string
		write func(ctx context.Context, c *redis.Client) error
		held  string // the file DataHeld names, "" for none
	}{
		{"aof, empty", []string{"--appendonly", "yes", "--save", ""}, nil, ""},
		{"aof, a key written", []string{"--appendonly", "yes", "--save", ""},
			func(ctx context.Context, c *redis.Client) error { return c.Set(ctx, "k", "v", 0).Err() }, ".incr.aof"},
		{"aof, rewritten over a key", []string{"--appendonly", "yes", "--save", ""},
			func(ctx context.Context, c *redis.Client) error {
				if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
					return err
				}
				if err := c.BgRewriteAOF(ctx).Err(); err != nil {
					return err
				}
				time.Sleep(time.Second)
				return nil
			}, ".base.rdb"},
		{"rdb, empty", []string{"--appendonly", "no", "--save", "3600 1"}, nil, ""},
		{"rdb, a key", []string{"--appendonly", "no", "--save", "3600 1"},
			func(ctx context.Context, c *redis.Client) error {
				// A long value: RDB stores it LZF-compressed.
				return c.Set(ctx, "k", strings.Repeat("abc", 1000), 0).Err()
			}, "dump.rdb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := l.Addr().(*net.TCPAddr).Port
			l.Close()
			args := append([]string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", dir}, tc.args...)
			srv := exec.Command("redis-server", args...)
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
			defer c.Close()
			deadline := time.Now().Add(10 * time.Second)
			for c.Ping(ctx).Err() != nil {
				if time.Now().After(deadline) {
					t.Fatal("redis-server did not start")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if tc.write != nil {
				if err := tc.write(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			_ = c.Shutdown(ctx).Err() // saves, as a stop does
			_ = srv.Wait()
			held, err := DataHeld(dir)
			if err != nil {
				t.Fatal(err)
			}
			if (tc.held == "") != (held == "") || !strings.HasSuffix(held, tc.held) {
				files, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
				t.Errorf("DataHeld = %q, want a file ending %q (files %q)", held, tc.held, files)
			}
		})
	}
}
