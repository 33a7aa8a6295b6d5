package sentinel

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/redis-ha-agent/redis-ha-agent/internal/safefile"
	"github.com/redis-ha-agent/redis-ha-agent/sentinel/wire"
)

// SentinelState is what a sentinel recorded in its own config file.
type SentinelState struct {
	MyID   string
	Master *wire.Addr // the master as Sentinel last knew it (moves on failover)
	Name   string     // monitored group name
	// Lines to hand back through SentinelConf.State: current-epoch, and the
	// config-epoch, leader-epoch, known-replica and known-sentinel lines of
	// the monitored group, verbatim and in file order.
	Lines []string
}

// ReadSentinelState parses a sentinel.conf, normally one Sentinel has
// rewritten. A missing file is the zero state. If the file monitors several
// groups, the first monitor line wins.
//
// Lines the redis argument splitter cannot parse are skipped rather than
// fatal: Sentinel 7.0 writes passwords back unquoted, and a file it mangled
// must not stop the agent from starting.
//
// The file lives in a directory the redis user owns, and the agent reads it
// as root: a symlink, hard link or FIFO in its place is refused, and so is
// a file larger than any sentinel writes.
func ReadSentinelState(path string) (SentinelState, error) {
	data, err := safefile.ReadFile(path, maxStateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return SentinelState{}, nil
	}
	if err != nil {
		return SentinelState{}, fmt.Errorf("read sentinel state: %w", err)
	}
	var st SentinelState
	type perGroup struct{ name, line string }
	var group []perGroup
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		args, ok := splitArgs(text)
		if !ok || len(args) < 3 || !strings.EqualFold(args[0], "sentinel") {
			continue
		}
		switch strings.ToLower(args[1]) {
		case "myid":
			if ValidMyID(args[2]) {
				st.MyID = args[2]
			}
		case "monitor":
			if st.Name != "" {
				continue
			}
			if len(args) != 6 {
				return SentinelState{}, fmt.Errorf("read sentinel state %s:%d: monitor: want 4 arguments, got %d", path, n, len(args)-2)
			}
			port, err := strconv.Atoi(args[4])
			if err != nil {
				return SentinelState{}, fmt.Errorf("read sentinel state %s:%d: monitor: bad port %q", path, n, args[4])
			}
			st.Name = args[2]
			st.Master = &wire.Addr{Host: args[3], Port: port}
		case "current-epoch":
			group = append(group, perGroup{"", text})
		case "config-epoch", "leader-epoch", "known-replica", "known-slave", "known-sentinel":
			group = append(group, perGroup{args[2], text})
		}
	}
	if err := sc.Err(); err != nil {
		return SentinelState{}, fmt.Errorf("read sentinel state %s: %w", path, err)
	}
	// Filtered after the scan because nothing obliges the monitor line to
	// come first (Sentinel's rewrite does put it first).
	for _, g := range group {
		if g.name == "" || g.name == st.Name {
			st.Lines = append(st.Lines, g.line)
		}
	}
	return st, nil
}

// maxStateFile bounds a sentinel.conf: a few hundred bytes per known
// replica and sentinel.
const maxStateFile = 4 << 20

// ValidMyID reports whether id is a sentinel id: 40 hex digits, as Sentinel
// itself insists.
func ValidMyID(id string) bool {
	if len(id) != 40 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !isHex(id[i]) {
			return false
		}
	}
	return true
}

// DeriveMyID is the sentinel id of the group's sentinel at addr: 40 hex
// digits that depend on nothing else. A box re-imaged at the same address
// (its state directory empty) thus comes back as the same sentinel. A new
// id there would leave the old one in every other sentinel's memory, with
// its port set to 0 (+sentinel-invalid-addr), a dead voter in their
// majority until SENTINEL RESET.
func DeriveMyID(group string, addr wire.Addr) string {
	sum := sha1.Sum([]byte("redis-ha-agent sentinel myid\x00" + group + "\x00" + addr.String()))
	return hex.EncodeToString(sum[:])
}

// splitArgs splits a config line the way redis's sdssplitargs does: words
// separated by blanks, "double quotes" with \n \r \t \b \a \\ \" \xHH escapes,
// 'single quotes' with only \'. A closing quote must be followed by a blank.
func splitArgs(s string) ([]string, bool) {
	var args []string
	i := 0
	for {
		for i < len(s) && isBlank(s[i]) {
			i++
		}
		if i == len(s) {
			return args, true
		}
		var cur []byte
		inq, insq := false, false
	word:
		for {
			switch {
			case inq:
				if i == len(s) {
					return nil, false
				}
				c := s[i]
				if c == '\\' && i+3 < len(s) && s[i+1] == 'x' && isHex(s[i+2]) && isHex(s[i+3]) {
					v, _ := strconv.ParseUint(s[i+2:i+4], 16, 8)
					cur = append(cur, byte(v))
					i += 4
					continue
				}
				if c == '\\' && i+1 < len(s) {
					cur = append(cur, unescape(s[i+1]))
					i += 2
					continue
				}
				i++
				if c == '"' {
					if i < len(s) && !isBlank(s[i]) {
						return nil, false
					}
					break word
				}
				cur = append(cur, c)
			case insq:
				if i == len(s) {
					return nil, false
				}
				c := s[i]
				if c == '\\' && i+1 < len(s) && s[i+1] == '\'' {
					cur = append(cur, '\'')
					i += 2
					continue
				}
				i++
				if c == '\'' {
					if i < len(s) && !isBlank(s[i]) {
						return nil, false
					}
					break word
				}
				cur = append(cur, c)
			default:
				if i == len(s) || isBlank(s[i]) {
					break word
				}
				switch s[i] {
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					cur = append(cur, s[i])
				}
				i++
			}
		}
		args = append(args, string(cur))
	}
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
