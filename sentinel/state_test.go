package sentinel

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

func TestReadSentinelState(t *testing.T) {
	dir := t.TempDir()
	twoGroups := filepath.Join(dir, "two.conf")
	if err := os.WriteFile(twoGroups, []byte(`sentinel known-replica mym 10.0.0.9 6379
sentinel monitor mym 10.0.0.5 6379 2
sentinel monitor other 10.0.0.8 6379 2
sentinel config-epoch other 7
sentinel known-sentinel other 10.0.0.8 26379 2123456789abcdef0123456789abcdef01234567
sentinel config-epoch mym 4
sentinel current-epoch 7
`), 0o644); err != nil {
		t.Fatal(err)
	}
	badPort := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(badPort, []byte("sentinel monitor mym 10.0.0.5 x 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		want    SentinelState
		wantErr bool
	}{
		{
			// Written by redis 7.0.15 after a SENTINEL FAILOVER from 17101 to
			// 17102 (integration test): note the known-sentinel lines after
			// current-epoch, and auth-pass written back unquoted.
			name: "rewritten by sentinel", path: "testdata/sentinel-rewritten.conf",
			want: SentinelState{
				MyID: "b5c68aa78e7af45c7a0d9d29912b5f3d67d06030", Name: "mym",
				Master: &wire.Addr{Host: "127.0.0.1", Port: 17102},
				Lines: []string{
					"sentinel config-epoch mym 1",
					"sentinel leader-epoch mym 0",
					"sentinel known-replica mym 127.0.0.1 17101",
					"sentinel current-epoch 1",
					"sentinel known-sentinel mym 127.0.0.1 17112 d1773a133e836c0f08d87f1c8fa339ef29f0d1d0",
					"sentinel known-sentinel mym 127.0.0.1 17111 29037de65c7048c150a3bc8054a58038c71970e3",
				},
			},
		},
		{
			// Written by redis 7.0.15 with the password `p w"q\z`: sentinel
			// wrote it back unquoted and every later rewrite added "# ???"
			// lines. The state is still readable.
			name: "mangled by an unquotable password", path: "testdata/sentinel-mangled.conf",
			want: SentinelState{
				MyID: "0123456789abcdef0123456789abcdef01234567", Name: "mym",
				Master: &wire.Addr{Host: "127.0.0.1", Port: 17192},
				Lines: []string{
					"sentinel config-epoch mym 1",
					"sentinel leader-epoch mym 1",
					"sentinel known-sentinel mym 127.0.0.1 17193 1123456789abcdef0123456789abcdef01234567",
					"sentinel current-epoch 1",
					"sentinel known-replica mym 127.0.0.1 17190",
				},
			},
		},
		{
			name: "first group wins, others' lines dropped", path: twoGroups,
			want: SentinelState{
				Name: "mym", Master: &wire.Addr{Host: "10.0.0.5", Port: 6379},
				Lines: []string{
					"sentinel known-replica mym 10.0.0.9 6379",
					"sentinel config-epoch mym 4",
					"sentinel current-epoch 7",
				},
			},
		},
		{name: "missing file", path: filepath.Join(dir, "nope.conf"), want: SentinelState{}},
		{name: "bad monitor port", path: badPort, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadSentinelState(tt.path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want err=%v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v (master %v)\nwant %+v (master %v)", got, got.Master, tt.want, tt.want.Master)
			}
		})
	}
}

func TestDeriveMyID(t *testing.T) {
	a := DeriveMyID("main", wire.Addr{Host: "10.0.0.5", Port: 26379})
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(a) || !ValidMyID(a) {
		t.Errorf("DeriveMyID = %q: not a sentinel id", a)
	}
	if again := DeriveMyID("main", wire.Addr{Host: "10.0.0.5", Port: 26379}); again != a {
		t.Errorf("the same sentinel got two ids: %q, %q", a, again)
	}
	for _, o := range []string{
		DeriveMyID("main", wire.Addr{Host: "10.0.0.6", Port: 26379}),
		DeriveMyID("main", wire.Addr{Host: "10.0.0.5", Port: 26380}),
		DeriveMyID("other", wire.Addr{Host: "10.0.0.5", Port: 26379}),
	} {
		if o == a {
			t.Errorf("two sentinels share the id %q", a)
		}
	}
}

// The state directory belongs to the redis user, who could plant a link to a
// root-only file at sentinel.conf's name (security review M1), or write a
// myid that is not one: its bytes would be copied into the next sentinel.conf.
func TestReadSentinelStateRefusesPlants(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "root-only")
	if err := os.WriteFile(secret, []byte("sentinel myid ROOT-ONLY-SECRET-0123456789abcdef0123456\nsentinel current-epoch 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "sentinel.conf")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	if st, err := ReadSentinelState(link); err == nil || st.Lines != nil {
		t.Errorf("symlink read: %+v, %v", st, err)
	}
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(link, []byte("sentinel myid ../../etc/shadow0123456789abcdef0123456789a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := ReadSentinelState(link); err != nil || st.MyID != "" {
		t.Errorf("myid that is not 40 hex digits: %q, %v", st.MyID, err)
	}
}
