package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
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
	_ = check(context.Background(), conf, false, &out)
	for _, want := range []string{"warn  peer redis 127.0.0.1:6992 unreachable", "warn  peer sentinel 127.0.0.1:26993 unreachable"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}

	// --json: the same findings, one object; /bin/true is no redis, so
	// the check fails and says so.
	out.Reset()
	err := check(context.Background(), conf, true, &out)
	var rep struct {
		OK       bool           `json:"ok"`
		Findings []checkFinding `json:"findings"`
	}
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		t.Fatalf("check --json: %v\n%s", jerr, out.String())
	}
	if rep.OK || !errors.Is(err, errUnhealthy) {
		t.Errorf("check --json: ok %v, err %v; want a failed check", rep.OK, err)
	}
	if !slices.Contains(rep.Findings, checkFinding{Status: "warn", Text: "peer redis 127.0.0.1:6992 unreachable"}) {
		t.Errorf("check --json lacks the unreachable peer:\n%s", out.String())
	}
}
