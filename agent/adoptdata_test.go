package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel"
)

// Ports of TestAdoptData: the redis whose data is adopted, and the agent's
// own (nothing listens there: the agent is not running).
const adoptSrcPort, adoptPort = 6761, 6762

const adoptKeys = 10000

// debianData fills dir the way a Debian redis-server leaves it: n keys in
// dump.rdb (appendonly no, the Debian default) or in appendonlydir/.
func debianData(t *testing.T, dir string, aof bool, n int) {
	t.Helper()
	ao := "no"
	if aof {
		ao = "yes"
	}
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(adoptSrcPort), "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", ao, "--save", "", "--daemonize", "no", "--logfile", "")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", adoptSrcPort)})
	defer c.Close()
	ctx := t.Context()
	testutil.WaitFor(t, 10*time.Second, "the source redis answers", func() error { return c.Ping(ctx).Err() })
	p := c.Pipeline()
	for i := range n {
		p.Set(ctx, fmt.Sprintf("debian:%05d", i), i, 0)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// Stopped as systemd stops it; with AOF on, that file alone holds the
	// data (no snapshot beside it).
	how := "SAVE"
	if aof {
		how = "NOSAVE"
	}
	_ = c.Do(ctx, "SHUTDOWN", how).Err() // no reply: it is gone
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the source redis did not stop:\n%s", out.String())
	}
}

// adoptConf writes a configuration for a box whose agent is not running,
// and returns its path. node and redis are extra lines of those tables;
// more is added at the end.
func adoptConf(t *testing.T, root, node, redis, more string) string {
	t.Helper()
	pw := filepath.Join(root, "password")
	if err := os.WriteFile(pw, []byte("adopt-Secret.1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(root, "redis-ha.conf")
	body := fmt.Sprintf(`[node]
data_dir = "%[1]s/data"
run_dir = "%[1]s/run"
%[4]s
[redis]
port = %[2]d
%[5]s
[auth]
password_file = %[3]q

[tuning]
enabled = false

[http]
listen = ""
%[6]s`, root, adoptPort, pw, node, redis, more)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// keysIn counts the keys a redis loading dir finds, as the agent's would.
func keysIn(t *testing.T, cfg *config.Config, dir string, aof bool) int64 {
	t.Helper()
	cred, err := loaderCredential(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := &adopter{cfg: cfg, cred: cred}
	stage, err := os.MkdirTemp(cfg.Node.DataDir, ".check-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(stage)
	if err := os.Chown(stage, int(cred.Uid), int(cred.Gid)); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := a.load(t.Context(), stage, dir, aof, func(ctx context.Context, r *sentinel.Redis) (err error) {
		n, err = r.Keys(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func adoptRoot(t *testing.T) string {
	t.Helper()
	// The redis user must reach the state directory.
	root, err := os.MkdirTemp("", "rha-adopt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestAdoptData: a Debian redis dataset (RDB, or AOF) becomes the state
// directory's dataset in the form redis.persistence asks, and adopt-data
// refuses what it must.
func TestAdoptData(t *testing.T) {
	testutil.RequireRedis(t)
	testutil.RequireRoot(t, "the dataset is loaded as the redis user")
	sentinel.QuietClientLogs()
	for _, tc := range []struct {
		name        string
		aof         bool   // the source is an append-only file
		persistence string // the agent's
	}{
		{"RDB made an append-only file", false, "aof"},
		{"append-only file kept", true, "aof"},
		{"append-only file made an RDB", true, "rdb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := adoptRoot(t)
			src := filepath.Join(root, "debian")
			if err := os.Mkdir(src, 0o750); err != nil {
				t.Fatal(err)
			}
			debianData(t, src, tc.aof, adoptKeys)
			path := adoptConf(t, root, "", fmt.Sprintf("persistence = %q", tc.persistence), "")
			var out bytes.Buffer
			start := time.Now()
			if err := adoptDataCmd(t.Context(), path, src, &out); err != nil {
				t.Fatalf("adopt-data: %v", err)
			}
			t.Logf("%s in %s", strings.TrimSpace(out.String()), time.Since(start).Round(time.Millisecond))
			from := "the RDB snapshot"
			if tc.aof {
				from = "the append-only file"
			}
			if !strings.Contains(out.String(), fmt.Sprintf("%d keys from %s", adoptKeys, from)) {
				t.Errorf("output: %q", out.String())
			}
			cfg, err := config.Load(path, config.Env{})
			if err != nil {
				t.Fatal(err)
			}
			if n := keysIn(t, cfg, cfg.Node.DataDir, tc.persistence == "aof"); n != adoptKeys {
				t.Errorf("the agent's redis would load %d keys, want %d", n, adoptKeys)
			}
			_, aofErr := os.Stat(filepath.Join(cfg.Node.DataDir, "appendonlydir"))
			if (aofErr == nil) != (tc.persistence == "aof") {
				t.Errorf("appendonlydir: %v; persistence %s", aofErr, tc.persistence)
			}
			if left, _ := filepath.Glob(filepath.Join(cfg.Node.DataDir, ".adopt-data-*")); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			// The source is untouched: adopt-data copies.
			if d, err := os.ReadDir(src); err != nil || len(d) == 0 {
				t.Errorf("source: %v, %v", d, err)
			}
			err = adoptDataCmd(t.Context(), path, src, &out)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("holds %d keys already", adoptKeys)) {
				t.Errorf("a second adopt-data: %v; want a refusal: data is never replaced", err)
			}
		})
	}
}

func TestAdoptDataRefuses(t *testing.T) {
	testutil.RequireRedis(t)
	testutil.RequireRoot(t, "the dataset is loaded as the redis user")
	root := adoptRoot(t)
	src := filepath.Join(root, "debian")
	if err := os.Mkdir(src, 0o750); err != nil {
		t.Fatal(err)
	}
	single := adoptConf(t, root, "", "", "")
	notBootstrap := adoptConf(t, adoptRoot(t), fmt.Sprintf("announce = \"127.0.0.1:%d\"", adoptPort), "", fmt.Sprintf(`
[cluster]
peers = ["127.0.0.1:%[1]d", "127.0.0.2:%[1]d", "127.0.0.3:%[1]d"]
bootstrap_primary = "127.0.0.2:%[1]d"
`, adoptPort))
	refused := func(path, dir, want string) {
		t.Helper()
		err := adoptDataCmd(t.Context(), path, dir, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("adopt-data %s: %v; want a refusal saying %q", dir, err, want)
		}
	}
	refused(single, src, "holds no redis data")
	refused(single, filepath.Join(root, "data"), "node.data_dir itself")
	refused(notBootstrap, src, "not the bootstrap primary (127.0.0.2:6762)")

	// A redis still serving the directory: its last writes are not on disk.
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(adoptSrcPort), "--bind", "127.0.0.1", "--dir", src,
		"--save", "", "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	testutil.WaitFor(t, 10*time.Second, "the source redis runs in its directory", func() error {
		if len(runningIn(src)) == 0 {
			return fmt.Errorf("no process in %s", src)
		}
		return nil
	})
	refused(single, src, "runs on "+src+": stop it first")
}
