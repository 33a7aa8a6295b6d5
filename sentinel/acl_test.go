package sentinel

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

func TestDeriveACL(t *testing.T) {
	a := DeriveACL("pw", "main")
	if !reflect.DeepEqual(a, DeriveACL("pw", "main")) {
		t.Error("the same password and group give other secrets: the boxes would not agree")
	}
	seen := map[string]bool{}
	for _, s := range []string{a.Replica.Use, a.Sentinel.Use, a.Agent.Use, DeriveACL("pw2", "main").Agent.Use, DeriveACL("pw", "other").Agent.Use} {
		if len(s) != 64 || seen[s] || strings.Contains(s, "pw") {
			t.Errorf("secret %q: not 64 hex digits of its own", s)
		}
		seen[s] = true
	}
}

// TestRenderACL: the users' lines hold hashes, never a secret; replication
// and the sentinels authenticate as their users, not with the password.
func TestRenderACL(t *testing.T) {
	a := DeriveACL("pw", "main")
	rc := string(RenderRedis(RedisConf{Port: 6379, Dir: "/d", Password: "pw", Persistence: "aof", ACL: a}))
	sum := sha256.Sum256([]byte(a.Replica.Use))
	for _, want := range []string{"user replica reset on #" + hex.EncodeToString(sum[:]) + " -@all +psync", "masteruser replica\n",
		"masterauth \"" + a.Replica.Use + "\"\n", "requirepass \"pw\"\n"} {
		if !strings.Contains(rc, want) {
			t.Errorf("redis.conf lacks %q:\n%s", want, rc)
		}
	}
	if strings.Contains(rc, "masterauth \"pw\"") || strings.Contains(rc, ">") {
		t.Errorf("redis.conf authenticates replication with the password, or holds a plain secret in a user line:\n%s", rc)
	}
	sc := string(RenderSentinel(SentinelConf{Name: "main", Port: 26379, Dir: "/d", Master: wire.Addr{Host: "10.0.0.1", Port: 6379},
		Quorum: 2, Password: "pw", ACL: a}))
	for _, want := range []string{"sentinel sentinel-user sentinel\n", "sentinel sentinel-pass \"" + a.Sentinel.Use + "\"\n",
		"sentinel auth-user main sentinel\n", "sentinel auth-pass main \"" + a.Sentinel.Use + "\"\n", "user agent reset on #"} {
		if !strings.Contains(sc, want) {
			t.Errorf("sentinel.conf lacks %q:\n%s", want, sc)
		}
	}
	if strings.Contains(sc, "sentinel-pass \"pw\"") || strings.Contains(sc, "auth-pass main \"pw\"") {
		t.Errorf("sentinel.conf authenticates with the password:\n%s", sc)
	}
}
