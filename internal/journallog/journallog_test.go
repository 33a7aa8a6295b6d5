package journallog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	var b bytes.Buffer
	level := new(slog.LevelVar)
	log := slog.New(New(&b, &slog.HandlerOptions{Level: level})).With("component", "redis")
	log.Error("redis exited", "err", "exit status 1")
	log.Warn("fenced", "detail", "two\nlines")
	log.Info("started", "pid", 42)
	log.Debug("not shown at info")
	level.Set(slog.LevelDebug)
	log.WithGroup("g").Debug("shown now", "k", "v")

	want := []string{
		`<3>level=ERROR msg="redis exited" component=redis err="exit status 1"`,
		`<4>level=WARN msg=fenced component=redis detail="two\nlines"`,
		`<6>level=INFO msg=started component=redis pid=42`,
		`<7>level=DEBUG msg="shown now" component=redis g.k=v`,
	}
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPriority(t *testing.T) {
	for l, want := range map[slog.Level]int{
		slog.LevelError + 4: 3, slog.LevelError: 3, slog.LevelWarn: 4, slog.LevelInfo + 2: 6,
		slog.LevelInfo: 6, slog.LevelDebug: 7, slog.LevelDebug - 4: 7,
	} {
		if got := Priority(l); got != want {
			t.Errorf("Priority(%v) = %d, want %d", l, got, want)
		}
	}
}

func TestErrors(t *testing.T) {
	var b bytes.Buffer
	w := Errors(&b)
	for _, s := range []string{"invalid configuration:\na.conf:2: x: bad\nb.conf", ":3: y: bad\n", "", "last"} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	want := "<3>invalid configuration:\n<3>a.conf:2: x: bad\n<3>b.conf:3: y: bad\n<3>last"
	if b.String() != want {
		t.Errorf("wrote %q, want %q", b.String(), want)
	}
}
