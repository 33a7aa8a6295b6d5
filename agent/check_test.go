package agent

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckSaysUnreachable: check printed "warn peer redis X reachable" for
// a peer it could not reach (review L7).
func TestCheckSaysUnreachable(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	must(t, os.WriteFile(pw, []byte("s3cret\n"), 0o640))
	conf := filepath.Join(dir, "redis-ha.conf")
	// Nothing listens on 127.0.0.1:6992 and :6993 (nor on their sentinel ports).
	must(t, os.WriteFile(conf, []byte(`[cluster]
peers = ["127.0.0.1:6991", "127.0.0.1:6992", "127.0.0.1:6993"]
bootstrap_primary = "127.0.0.1:6991"
[node]
announce = "127.0.0.1:6991"
[redis]
port = 6991
binary = "/bin/true"
[tuning]
enabled = false
[auth]
password_file = "`+pw+`"
`), 0o644))
	var out bytes.Buffer
	_ = check(context.Background(), conf, &out)
	for _, want := range []string{"warn  peer redis 127.0.0.1:6992 unreachable", "warn  peer sentinel 127.0.0.1:26993 unreachable"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
}
