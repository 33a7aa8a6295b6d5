// Package journallog writes slog records the way the systemd journal reads a
// service's stderr: one line per record, its syslog priority first ("<4>" for
// a warning, which journald turns into the entry's PRIORITY=), and no
// timestamp of its own, since journald stamps every line. It knows nothing of
// the agent; whether stderr is the journal is the caller's to tell.
package journallog

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
)

// Handler is a slog.Handler for a journal stream.
type Handler struct {
	text slog.Handler // writes into out.buf
	out  *output
}

// output is shared by a Handler and those its WithAttrs and WithGroup make:
// one line is formatted and written at a time.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
	w   io.Writer
}

// New returns a Handler writing to w. opts are slog's, as for a TextHandler;
// the time attribute is always left out.
func New(w io.Writer, opts *slog.HandlerOptions) *Handler {
	var o slog.HandlerOptions
	if opts != nil {
		o = *opts
	}
	replace := o.ReplaceAttr
	o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		if replace != nil {
			return replace(groups, a)
		}
		return a
	}
	out := &output{w: w}
	return &Handler{text: slog.NewTextHandler(&out.buf, &o), out: out}
}

// Priority is the syslog priority of a slog level: err, warning, info, debug.
func Priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.text.Enabled(ctx, l) }

func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	h.out.buf.Reset()
	h.out.buf.WriteByte('<')
	h.out.buf.WriteByte(byte('0' + Priority(r.Level)))
	h.out.buf.WriteByte('>')
	// The text handler appends its line (values quoted, newlines escaped:
	// one record, one journal entry) after the prefix.
	if err := h.text.Handle(ctx, r); err != nil {
		return err
	}
	_, err := h.out.w.Write(h.out.buf.Bytes())
	return err
}

func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{text: h.text.WithAttrs(as), out: h.out}
}

func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{text: h.text.WithGroup(name), out: h.out}
}

// Errors returns a writer that hands w every line written to it at priority
// err: for what a program prints on its way out, not through a logger.
func Errors(w io.Writer) io.Writer { return &prefixed{w: w, prefix: []byte("<3>")} }

type prefixed struct {
	w      io.Writer
	prefix []byte
	mid    bool // within a line: no prefix before the next bytes
}

func (p *prefixed) Write(b []byte) (int, error) {
	n := len(b)
	var out []byte
	for len(b) > 0 {
		if !p.mid {
			out = append(out, p.prefix...)
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out, p.mid = append(out, b...), true
			break
		}
		out, b, p.mid = append(out, b[:i+1]...), b[i+1:], false
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return n, nil
}
