package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeFile: whatever a drop-in holds, the walker and the decoder
// never panic, every problem names the file and a line of it, and a file
// with no problem leaves origins only for keys the schema knows.
func FuzzDecodeFile(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*", "conf.d", "*.conf"))
	base, _ := filepath.Glob(filepath.Join("testdata", "*", "redis-ha.conf"))
	for _, p := range append(seeds, base...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("[redis.settings]\nmaxmemory = \"1gb\"\n[[x]]\na.b.c = 1\n"))
	schema := schemaOf(reflect.TypeOf(Config{}))
	f.Fuzz(func(t *testing.T, data []byte) {
		origins := keyOrigins{}
		probs := decodeFile("f.conf", data, schema, defaults(), origins)
		lines := strings.Count(string(data), "\n") + 1
		for _, p := range probs {
			if p.File != "f.conf" || p.Line < 0 || p.Line > lines {
				t.Fatalf("problem %+v: not at a line of f.conf (%d lines)", p, lines)
			}
		}
		if len(probs) > 0 {
			return
		}
		w := walker{schema: schema}
		for k := range origins {
			if _, ok := w.kindOf(strings.Split(k, ".")); !ok {
				t.Fatalf("origin for %q, which the schema does not know", k)
			}
		}
	})
}
