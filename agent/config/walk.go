package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// origin is where a key was last set.
type origin struct {
	File string
	Line int
}

// keyOrigins maps a dotted key ("redis.port", "redis.settings.maxmemory")
// to the line that set it last.
type keyOrigins map[string]origin

// valueKind is what a key's value must be.
type valueKind int

const (
	kindTable valueKind = iota
	kindString
	kindInt
	kindBool
	kindStrings
	kindDuration
	kindStringMap
)

func (k valueKind) String() string {
	return [...]string{"a table", "a string", "an integer", "true or false",
		"an array of strings", `a duration string such as "5s"`, "a table of strings"}[k]
}

// schemaOf maps every dotted key of the toml tags of t to its kind.
// Deriving it from the struct keeps the file format and the model one thing.
func schemaOf(t reflect.Type) map[string]valueKind {
	s := map[string]valueKind{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			key := prefix + name
			switch {
			case f.Type == reflect.TypeOf(Duration(0)):
				s[key] = kindDuration
			case f.Type.Kind() == reflect.Struct:
				s[key] = kindTable
				walk(f.Type, key+".")
			case f.Type.Kind() == reflect.Map:
				s[key] = kindStringMap
			case f.Type.Kind() == reflect.Slice:
				s[key] = kindStrings
			case f.Type.Kind() == reflect.String:
				s[key] = kindString
			case f.Type.Kind() == reflect.Int:
				s[key] = kindInt
			case f.Type.Kind() == reflect.Bool:
				s[key] = kindBool
			default:
				panic("config schema: unsupported field type " + f.Type.String())
			}
		}
	}
	walk(t, "")
	return s
}

// decodeFile checks one file against the schema and, when it is clean,
// decodes it over c. go-toml would stop at the first wrong type and word it
// in Go terms; walking the AST first reports every unknown key and wrong type
// of the file, each at its own line.
func decodeFile(file string, data []byte, schema map[string]valueKind, c *Config, origins keyOrigins) []Problem {
	w := walker{file: file, schema: schema, seen: keyOrigins{}, lines: map[int]string{}}
	w.p.Reset(data)
	w.walk()
	if len(w.probs) > 0 {
		return w.probs
	}
	err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(c)
	if err != nil {
		// What only the decoder checks (a key defined twice, an integer
		// overflowing int): report it as go-toml words it.
		return []Problem{decodeProblem(file, err, w.lines)}
	}
	for k, o := range w.seen {
		origins[k] = o
	}
	return nil
}

func decodeProblem(file string, err error, lines map[int]string) Problem {
	var de *toml.DecodeError
	var se *toml.StrictMissingError
	if errors.As(err, &se) && len(se.Errors) > 0 {
		de = &se.Errors[0]
	}
	if de == nil && !errors.As(err, &de) {
		return Problem{File: file, Msg: err.Error()}
	}
	line, col := de.Position()
	key := lines[line]
	if key == "" {
		key = strings.Join(de.Key(), ".")
	}
	return Problem{File: file, Line: line, Col: col, Key: key, Msg: strings.TrimPrefix(de.Error(), "toml: ")}
}

type walker struct {
	file   string
	schema map[string]valueKind
	p      unstable.Parser
	probs  []Problem
	seen   keyOrigins     // leaf keys set by this file
	lines  map[int]string // line → key, to name the key of a go-toml error
}

func (w *walker) walk() {
	var table []string
	skip := false // inside a table already reported as unknown
	for w.p.NextExpression() {
		e := w.p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			path, line := w.key(e.Key())
			table, skip = path, true
			key := strings.Join(path, ".")
			kind, ok := w.kindOf(path)
			switch {
			case e.Kind == unstable.ArrayTable:
				w.problem(line, key, "arrays of tables ([[...]]) are not supported")
			case !ok:
				w.problem(line, key, "unknown table"+w.suggest(path))
			case kind != kindTable && kind != kindStringMap:
				w.problem(line, key, "is "+kind.String()+", not a table")
			default:
				skip = false
			}
		case unstable.KeyValue:
			if !skip {
				w.keyValue(table, e)
			}
		}
	}
	if err := w.p.Error(); err != nil {
		w.syntaxProblem(err)
	}
}

// key returns the parts of a (dotted) key and the line it starts on.
func (w *walker) key(it unstable.Iterator) ([]string, int) {
	var parts []string
	line := 0
	for it.Next() {
		n := it.Node()
		if line == 0 {
			line = w.p.Shape(n.Raw).Start.Line
		}
		parts = append(parts, string(n.Data))
	}
	return parts, line
}

func (w *walker) keyValue(table []string, kv *unstable.Node) {
	rel, line := w.key(kv.Key())
	path := append(slices.Clone(table), rel...)
	key := strings.Join(path, ".")
	w.lines[line] = key
	kind, ok := w.kindOf(path)
	if !ok {
		w.problem(line, key, "unknown key"+w.suggest(path))
		return
	}
	v := kv.Value()
	got := describeNode(v)
	switch kind {
	case kindTable, kindStringMap:
		if v.Kind != unstable.InlineTable {
			w.problem(line, key, "wrong type: want "+kind.String()+", got "+got)
			return
		}
		it := v.Children()
		for it.Next() {
			if it.Node().Kind == unstable.KeyValue {
				w.keyValue(path, it.Node())
			}
		}
		return
	case kindStrings:
		if v.Kind != unstable.Array {
			w.problem(line, key, "wrong type: want "+kind.String()+", got "+got)
			return
		}
		it := v.Children()
		for i := 1; it.Next(); {
			n := it.Node()
			if n.Kind == unstable.Comment {
				continue
			}
			if n.Kind != unstable.String {
				w.problem(line, key, fmt.Sprintf("wrong type: want %s, element %d is %s", kind, i, describeNode(n)))
				return
			}
			i++
		}
	case kindDuration:
		if v.Kind != unstable.String {
			w.problem(line, key, "wrong type: want "+kind.String()+", got "+got)
			return
		}
		if _, err := parseDuration(string(v.Data)); err != nil {
			w.problem(line, key, err.Error())
			return
		}
	default:
		if kindOfNode(v.Kind) != kind {
			msg := "wrong type: want " + kind.String() + ", got " + got
			if kind == kindString && len(path) == 3 && path[1] == "settings" {
				msg += fmt.Sprintf(" (redis.settings values are strings: write %q)", string(v.Data))
			}
			w.problem(line, key, msg)
			return
		}
	}
	w.seen[key] = origin{File: w.file, Line: line}
}

// kindOf looks a key path up in the schema; entries of a string map are
// strings whatever their name.
func (w *walker) kindOf(path []string) (valueKind, bool) {
	if k, ok := w.schema[strings.Join(path, ".")]; ok {
		return k, true
	}
	if len(path) > 1 && w.schema[strings.Join(path[:len(path)-1], ".")] == kindStringMap {
		return kindString, true
	}
	return 0, false
}

// suggest names the known keys that end like an unknown one: "peers" at the
// top level most likely meant cluster.peers.
func (w *walker) suggest(path []string) string {
	last := path[len(path)-1]
	var hits []string
	for k := range w.schema {
		if k == last || strings.HasSuffix(k, "."+last) {
			hits = append(hits, k)
		}
	}
	if len(hits) == 0 {
		return ""
	}
	sort.Strings(hits)
	return " (did you mean " + strings.Join(hits, " or ") + "?)"
}

func (w *walker) problem(line int, key, msg string) {
	w.probs = append(w.probs, Problem{File: w.file, Line: line, Key: key, Msg: msg})
}

func (w *walker) syntaxProblem(err error) {
	pr := Problem{File: w.file, Msg: "syntax error: " + err.Error()}
	var pe *unstable.ParserError
	if errors.As(err, &pe) {
		data := w.p.Data()
		// Highlight is a subslice of data; its capacity tells where it starts.
		if off := cap(data) - cap(pe.Highlight); off >= 0 && off <= len(data) {
			pr.Line = 1 + bytes.Count(data[:off], []byte("\n"))
			pr.Col = off - (bytes.LastIndexByte(data[:off], '\n') + 1) + 1
		}
		pr.Key = strings.Join(pe.Key, ".")
	}
	w.probs = append(w.probs, pr)
}

func kindOfNode(k unstable.Kind) valueKind {
	switch k {
	case unstable.String:
		return kindString
	case unstable.Integer:
		return kindInt
	case unstable.Bool:
		return kindBool
	case unstable.Array:
		return kindStrings
	case unstable.InlineTable:
		return kindTable
	}
	return -1
}

func describeNode(n *unstable.Node) string {
	switch n.Kind {
	case unstable.String:
		return "a string"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a float"
	case unstable.Bool:
		return "a boolean"
	case unstable.Array:
		return "an array"
	case unstable.InlineTable:
		return "a table"
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return "a date/time"
	}
	return n.Kind.String()
}
