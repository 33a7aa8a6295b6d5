package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

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

// decodeFile checks one file against the schema and decodes what is good in
// it over c. go-toml's decoder would stop at the first wrong type and word it
// in Go terms, and its check for keys defined twice is quadratic in the
// number of keys of a table (40,000 redis.settings took 15 s, a million never
// ended); walking the AST once reports every unknown key, wrong type and
// duplicate of the file, each at its own line, and yields the values.
//
// A file with problems still gives what decoded cleanly (every key before a
// syntax error, less the keys with problems), so that validation can report
// what is wrong with those values alongside: one run of check-config shows
// every problem.
func decodeFile(file string, data []byte, schema map[string]valueKind, c *Config, origins keyOrigins) []Problem {
	w := walker{file: file, schema: schema, seen: keyOrigins{}, defs: map[string]defKind{}, bad: map[string]bool{}}
	w.p.Reset(data)
	w.index(data)
	w.walk()
	for _, a := range w.values {
		if !w.bad[a.key] {
			a.set(c)
			origins[a.key] = w.seen[a.key]
		}
	}
	return w.probs
}

type walker struct {
	file     string
	schema   map[string]valueKind
	p        unstable.Parser
	probs    []Problem
	seen     keyOrigins         // leaf keys set by this file
	values   []assignment       // their values, in file order
	defs     map[string]defKind // tables and keys defined by this file, and how
	bad      map[string]bool    // keys (and tables) with a problem
	newlines []int              // offsets of the file's newlines, for lineOf
	syntaxAt int                // offset of the line with a syntax error; -1 = none
}

// defKind is how a file defined a key or table, for TOML's rule that
// nothing is defined twice.
type defKind int

const (
	defImplicit defKind = iota + 1 // a table above a [header]: may get a header of its own once
	defHeader                      // [table]
	defDotted                      // a table made by a dotted key (a.b = 1)
	defInline                      // a = { ... }: closed
	defLeaf                        // a = 1
)

// assignment is one good value of the file, decoded.
type assignment struct {
	key  string
	path []string
	val  any // string, int, bool, []string or Duration
}

// set stores a's value in c, at the field whose toml tags spell a's path
// (or the entry of a string map).
func (a assignment) set(c *Config) {
	v := reflect.ValueOf(c).Elem()
	for i, name := range a.path {
		if v.Kind() == reflect.Map {
			if v.IsNil() {
				v.Set(reflect.MakeMap(v.Type()))
			}
			v.SetMapIndex(reflect.ValueOf(strings.Join(a.path[i:], ".")), reflect.ValueOf(a.val))
			return
		}
		v = fieldByTag(v, name)
		if !v.IsValid() {
			return // cannot happen: the walker checked the path against the schema
		}
	}
	v.Set(reflect.ValueOf(a.val).Convert(v.Type()))
}

func fieldByTag(v reflect.Value, name string) reflect.Value {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ","); tag == name {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

// define records that key (a table or a leaf) is defined as how; false,
// with the problem reported, when TOML forbids it.
func (w *walker) define(line int, path []string, how defKind) bool {
	key := strings.Join(path, ".")
	prev := w.defs[key]
	switch {
	case prev == 0, prev == defImplicit && how == defHeader, prev == defDotted && how == defDotted:
		w.defs[key] = how
		return true
	case prev == defImplicit && how == defImplicit, prev == defHeader && how == defImplicit:
		return true
	}
	w.problem(line, key, "is already defined")
	return false
}

// index records where the lines start. go-toml's Parser.Shape would find a
// node's line by scanning from the first byte each time: quadratic in the
// number of keys (40,000 redis.settings took 15 s, a million never ended).
func (w *walker) index(data []byte) {
	w.syntaxAt = -1
	w.newlines = w.newlines[:0]
	for off := 0; ; {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return
		}
		off += i
		w.newlines = append(w.newlines, off)
		off++
	}
}

// lineOf is the 1-based line of a byte offset.
func (w *walker) lineOf(off int) int {
	n, _ := slices.BinarySearch(w.newlines, off)
	return n + 1
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
				for i := 1; i < len(path); i++ {
					w.define(line, path[:i], defImplicit)
				}
				skip = !w.define(line, path, defHeader)
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
			line = w.lineOf(int(n.Raw.Offset))
		}
		parts = append(parts, string(n.Data))
	}
	return parts, line
}

func (w *walker) keyValue(table []string, kv *unstable.Node) {
	rel, line := w.key(kv.Key())
	path := append(slices.Clone(table), rel...)
	key := strings.Join(path, ".")
	kind, ok := w.kindOf(path)
	if !ok {
		w.problem(line, key, "unknown key"+w.suggest(path))
		return
	}
	for i := len(table) + 1; i < len(path); i++ {
		if !w.define(line, path[:i], defDotted) {
			return
		}
	}
	v := kv.Value()
	got := describeNode(v)
	wrongType := func() { w.problem(line, key, "wrong type: want "+kind.String()+", got "+got) }
	var val any
	switch kind {
	case kindTable, kindStringMap:
		if v.Kind != unstable.InlineTable {
			wrongType()
			return
		}
		if !w.define(line, path, defInline) {
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
			wrongType()
			return
		}
		list := []string{}
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
			list = append(list, string(n.Data))
			i++
		}
		val = list
	case kindDuration:
		if v.Kind != unstable.String {
			wrongType()
			return
		}
		d, err := parseDuration(string(v.Data))
		if err != nil {
			w.problem(line, key, err.Error())
			return
		}
		val = Duration(d)
	default:
		if kindOfNode(v.Kind) != kind {
			msg := "wrong type: want " + kind.String() + ", got " + got
			if kind == kindString && len(path) == 3 && path[1] == "settings" {
				// Without the value: redis.settings can hold secrets
				// (masterauth = 424242).
				msg += " (redis.settings values are strings: put the value in double quotes)"
			}
			w.problem(line, key, msg)
			return
		}
		switch kind {
		case kindInt:
			// Base 0 reads TOML's 0x, 0o, 0b and underscores; the parser
			// has already refused what TOML does not allow.
			n, err := strconv.ParseInt(string(v.Data), 0, 64)
			if err != nil {
				w.problem(line, key, "integer out of range (at most 9223372036854775807)")
				return
			}
			val = int(n)
		case kindBool:
			val = string(v.Data) == "true"
		default:
			val = string(v.Data)
		}
	}
	if !w.define(line, path, defLeaf) {
		return
	}
	w.seen[key] = origin{File: w.file, Line: line}
	w.values = append(w.values, assignment{key: key, path: path, val: val})
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
	w.probs = append(w.probs, Problem{File: w.file, Line: line, Key: key, Msg: msg, bad: true})
	w.bad[key] = true
}

func (w *walker) syntaxProblem(err error) {
	pr := Problem{File: w.file, Msg: "syntax error: " + err.Error()}
	var pe *unstable.ParserError
	if errors.As(err, &pe) {
		data := w.p.Data()
		// Highlight is a subslice of data; its capacity tells where it starts.
		if off := cap(data) - cap(pe.Highlight); off >= 0 && off <= len(data) {
			pr.Line = w.lineOf(off)
			w.syntaxAt = bytes.LastIndexByte(data[:off], '\n') + 1
			pr.Col = off - w.syntaxAt + 1
		}
		pr.Key = strings.Join(pe.Key, ".")
	}
	if w.syntaxAt < 0 {
		w.syntaxAt = 0 // nowhere to cut: nothing of the file decodes
	}
	pr.bad = true
	if pr.Key != "" {
		w.bad[pr.Key] = true
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
