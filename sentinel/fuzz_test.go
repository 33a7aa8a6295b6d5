package sentinel

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
)

// FuzzParseReply: whatever a server sends, parseReply neither panics nor
// claims more bytes than it got, a whole reply parses the same without what
// follows it, and a command it encodes itself reads back as its arguments.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "-ERR x\r\n", ":42\r\n", "$-1\r\n", "*-1\r\n",
		"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n", "$5\r\nab", "*3\r\n:1\r\n", "*999999999999\r\n", "$9223372036854775807\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, used, err := parseReply(b)
		if used < 0 || used > len(b) {
			t.Fatalf("parseReply(%q) used %d of %d bytes", b, used, len(b))
		}
		if err == nil && used > 0 {
			v2, used2, err2 := parseReply(b[:used])
			if err2 != nil || used2 != used || !equalReply(v, v2) {
				t.Fatalf("parseReply(%q) = %#v, %d; its first %d bytes alone = %#v, %d, %v", b, v, used, used, v2, used2, err2)
			}
		}
		args := strings.Split(string(b), "\x00")
		v, used, err = parseReply(command(args...))
		got, ok := v.([]any)
		if err != nil || used == 0 || !ok || len(got) != len(args) {
			t.Fatalf("command(%q) parses as %#v, %d, %v", args, v, used, err)
		}
		for i := range args {
			if got[i] != args[i] {
				t.Fatalf("command(%q) parses as %#v", args, got)
			}
		}
	})
}

// FuzzSplitArgs: splitArgs never panics, and what it splits, quoted again
// the way the renderer quotes, splits back into the same words.
func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{"a b  c", `dir "/tmp/x y"`, `logfile ""`, `x 'it\'s' "\x41\n"`, `a\b c`, `ab"cd"`,
		`sentinel auth-pass mym p w"q\z`, `"abc"def`, `'abc`, "", `"\x4`, `'\'`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, ok := splitArgs(s)
		if !ok {
			return
		}
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = quote(a)
		}
		again, ok := splitArgs(strings.Join(quoted, " "))
		if !ok || !slices.Equal(again, args) {
			t.Fatalf("splitArgs(%q) = %q; quoted back and split: %q, %v", s, args, again, ok)
		}
	})
}

// FuzzReadSentinelState: a sentinel.conf mangled in any way never stops the
// agent with a panic.
func FuzzReadSentinelState(f *testing.F) {
	f.Add([]byte("sentinel myid 0123456789012345678901234567890123456789\nsentinel monitor main 10.0.0.1 6379 2\nsentinel current-epoch 3\nsentinel known-replica main 10.0.0.2 6379\n"))
	f.Add([]byte("sentinel monitor main host notaport 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := t.TempDir() + "/sentinel.conf"
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := ReadSentinelState(path)
		if err == nil && st.Master != nil && !bytes.Contains(bytes.ToLower(data), []byte("monitor")) {
			t.Fatalf("a master without a monitor line: %+v", st)
		}
	})
}
