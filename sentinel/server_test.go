package sentinel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for out, want := range map[string]string{
		"Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=1\n":  "Redis 7.0.15",
		"Redis server v=8.0.2 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=b84\n": "Redis 8.0.2",
		"Valkey server v=8.1.1 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=38\n": "Valkey 8.1.1",
	} {
		s, err := ParseVersion(out)
		if err != nil || s.String() != want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %s", out, s, err, want)
		}
	}
	for _, bad := range []string{"", "redis-cli 7.0.15", "KeyDB server v=6.3.4 sha=0"} {
		if s, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) = %v, want an error", bad, s)
		}
	}
}

func TestParseInfoServer(t *testing.T) {
	for info, want := range map[string]string{
		"# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n":                               "Redis 7.0.15",
		"# Server\r\nredis_version:8.0.2\r\nredis_mode:standalone\r\n":                                  "Redis 8.0.2",
		"# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.1\r\nos:Linux\r\n": "Valkey 8.1.1",
	} {
		s, err := ParseInfoServer(info)
		if err != nil || s.String() != want {
			t.Errorf("ParseInfoServer(%q) = %v, %v; want %s", info, s, err, want)
		}
	}
	for _, bad := range []string{"", "# Server\r\nos:Linux\r\n", "# Server\r\nredis_version:7.0.15\r\nprocess_id:x\r\n"} {
		if s, err := ParseInfoServer(bad); err == nil {
			t.Errorf("ParseInfoServer(%q) = %v, want an error", bad, s)
		}
	}
	// A running server's process: what adoption checks.
	info := "# Server\r\nredis_version:7.0.15\r\nprocess_id:4242\r\nrun_id:abc\r\nexecutable:/usr/bin/redis-server\r\nconfig_file:/var/lib/redis-ha/redis.conf\r\n"
	want := Server{Name: "redis", Version: [3]int{7, 0, 15}, PID: 4242, ConfigFile: "/var/lib/redis-ha/redis.conf", RunID: "abc"}
	if s, err := ParseInfoServer(info); err != nil || s != want {
		t.Errorf("ParseInfoServer = %+v, %v; want %+v", s, err, want)
	}
}

func TestCanLoad(t *testing.T) {
	redis70, redis72 := Server{Name: "redis", Version: [3]int{7, 0, 15}}, Server{Name: "redis", Version: [3]int{7, 2, 5}}
	redis8, valkey8 := Server{Name: "redis", Version: [3]int{8, 0, 2}}, Server{Name: "valkey", Version: [3]int{8, 1, 1}}
	valkey9 := Server{Name: "valkey", Version: [3]int{9, 0, 0}}
	tests := []struct {
		s    Server
		rdb  int
		fail string // substring of the refusal; "" = loads
	}{
		{redis70, 0, ""}, {redis70, 10, ""}, {redis70, 11, "RDB format 11, written by a newer server (Redis 7.0.15 loads up to 10)"},
		{redis72, 11, ""}, {redis8, 12, ""}, {redis8, 13, "loads up to 12"},
		{valkey8, 10, ""}, {valkey8, 11, ""},
		{valkey8, 12, "Valkey 8.1.1 cannot load /d/dump.rdb: RDB format 12, written by Redis 7.4 or later (Valkey 8.1.1 loads up to 11)"},
		{valkey9, 12, ""}, // not known: not refused
	}
	for _, tt := range tests {
		err := CanLoad(tt.s, tt.rdb, "/d/dump.rdb")
		switch {
		case tt.fail == "" && err != nil:
			t.Errorf("CanLoad(%v, %d) = %v, want nil", tt.s, tt.rdb, err)
		case tt.fail != "" && (err == nil || !strings.Contains(err.Error(), tt.fail)):
			t.Errorf("CanLoad(%v, %d) = %v, want %q", tt.s, tt.rdb, err, tt.fail)
		}
	}
}

func TestMixed(t *testing.T) {
	redis70, redis8 := Server{Name: "redis", Version: [3]int{7, 0, 15}}, Server{Name: "redis", Version: [3]int{8, 0, 2}}
	redis74, valkey8 := Server{Name: "redis", Version: [3]int{7, 4, 0}}, Server{Name: "valkey", Version: [3]int{8, 1, 1}}
	tests := []struct {
		servers map[string]Server
		want    string
	}{
		{map[string]Server{"a": redis8, "b": redis8, "c": redis70}, ""},
		{map[string]Server{"a": valkey8, "b": valkey8}, ""},
		// Redis 7.0 writes format 10, which Valkey loads.
		{map[string]Server{"a": valkey8, "b": redis70}, ""},
		{map[string]Server{"a": redis8, "b": valkey8, "c": redis8},
			"the group mixes Redis 8.0.2 (a) and Valkey 8.1.1 (b): Valkey cannot load the RDB format 12"},
		{map[string]Server{"x": valkey8, "y": redis74}, "the group mixes Redis 7.4.0 (y) and Valkey 8.1.1 (x)"},
	}
	for _, tt := range tests {
		got := Mixed(tt.servers)
		if (tt.want == "") != (got == "") || !strings.HasPrefix(got, tt.want) {
			t.Errorf("Mixed(%v) = %q, want %q…", tt.servers, got, tt.want)
		}
	}
}

func TestDataRDB(t *testing.T) {
	write := func(dir, name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("empty", func(t *testing.T) {
		if v, f, err := DataRDB(t.TempDir()); v != 0 || f != "" || err != nil {
			t.Errorf("DataRDB(empty) = %d %q %v", v, f, err)
		}
	})
	t.Run("aof base and dump", func(t *testing.T) {
		dir := t.TempDir()
		write(dir, "dump.rdb", "REDIS0010\xfa")
		write(dir, "appendonlydir/appendonly.aof.1.base.rdb", "REDIS0011") // superseded
		write(dir, "appendonlydir/appendonly.aof.2.base.rdb", "REDIS0012\xfa")
		write(dir, "appendonlydir/appendonly.aof.manifest",
			"file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i startoffset 1 endoffset 1\n")
		v, f, err := DataRDB(dir)
		if v != 12 || f != filepath.Join(dir, "appendonlydir/appendonly.aof.2.base.rdb") || err != nil {
			t.Errorf("DataRDB = %d %q %v, want 12 from the manifest's base", v, f, err)
		}
	})
	t.Run("aof base in aof format", func(t *testing.T) {
		dir := t.TempDir()
		write(dir, "appendonlydir/appendonly.aof.1.base.aof", "*2\r\n$6\r\nSELECT\r\n")
		write(dir, "appendonlydir/appendonly.aof.manifest", "file appendonly.aof.1.base.aof seq 1 type b\n")
		if v, _, err := DataRDB(dir); v != 0 || err != nil {
			t.Errorf("DataRDB = %d %v, want none", v, err)
		}
	})
	t.Run("not an rdb", func(t *testing.T) {
		dir := t.TempDir()
		write(dir, "dump.rdb", "garbage!!")
		if _, _, err := DataRDB(dir); err == nil {
			t.Errorf("DataRDB of a garbage dump.rdb: no error")
		}
	})
}
