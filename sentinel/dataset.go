package sentinel

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/redis-ha-agent/redis-ha-agent/internal/safefile"
)

// DataHeld names the first data file in dir that holds data: dump.rdb or
// the AOF's base with a key in it, or an AOF increment that is not empty.
// "" when dir holds none, or only the files an empty redis writes (an RDB
// of nothing but its header and auxiliary fields, empty increments).
func DataHeld(dir string) (string, error) {
	rdbs := []string{filepath.Join(dir, "dump.rdb")}
	if base, err := aofBase(filepath.Join(dir, "appendonlydir")); err != nil {
		return "", err
	} else if base != "" {
		rdbs = append(rdbs, base)
	}
	for _, f := range rdbs {
		empty, err := rdbEmpty(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if !empty {
			return f, nil
		}
	}
	incrs, err := filepath.Glob(filepath.Join(dir, "appendonlydir", "*.incr.aof"))
	if err != nil {
		return "", err
	}
	for _, f := range incrs {
		if fi, err := os.Lstat(f); err == nil && fi.Size() > 0 {
			return f, nil
		}
	}
	return "", nil
}

// RDB opcodes (rdb.h) read by rdbEmpty.
const (
	rdbOpAux      = 0xfa
	rdbOpSelectDB = 0xfe
	rdbOpEOF      = 0xff
)

// rdbEmpty reports whether the RDB file at path holds no key: after its
// header, nothing but auxiliary fields up to the end marker. Anything else
// (a database selector, functions, module data) counts as data.
func rdbEmpty(path string) (bool, error) {
	f, err := safefile.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var h [9]byte
	if _, err := io.ReadFull(r, h[:]); err != nil || string(h[:5]) != "REDIS" {
		return false, fmt.Errorf("rdb %s: not an RDB file", path)
	}
	for {
		op, err := r.ReadByte()
		if err != nil {
			return false, fmt.Errorf("rdb %s: %w", path, err)
		}
		switch op {
		case rdbOpEOF:
			return true, nil
		case rdbOpAux:
			for range 2 { // key, value
				if err := skipRDBString(r); err != nil {
					return false, fmt.Errorf("rdb %s: aux field: %w", path, err)
				}
			}
		default: // rdbOpSelectDB and everything else
			return false, nil
		}
	}
}

// skipRDBString reads past one RDB string: length-prefixed, an integer, or
// LZF-compressed.
func skipRDBString(r *bufio.Reader) error {
	n, special, err := rdbLength(r)
	if err != nil {
		return err
	}
	if special {
		switch n {
		case 0, 1, 2: // 8-, 16-, 32-bit integers
			_, err = r.Discard(1 << n)
			return err
		case 3: // LZF: compressed length, plain length, the compressed bytes
			clen, _, err := rdbLength(r)
			if err != nil {
				return err
			}
			if _, _, err := rdbLength(r); err != nil {
				return err
			}
			_, err = r.Discard(int(clen))
			return err
		}
		return fmt.Errorf("unknown string encoding %d", n)
	}
	_, err = r.Discard(int(n))
	return err
}

// rdbLength reads an RDB length; special is true for the encodings of
// integers and compressed strings (the two top bits set), n then their kind.
func rdbLength(r *bufio.Reader) (n uint64, special bool, err error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, false, err
	}
	switch b >> 6 {
	case 0:
		return uint64(b & 0x3f), false, nil
	case 1:
		c, err := r.ReadByte()
		return uint64(b&0x3f)<<8 | uint64(c), false, err
	case 3:
		return uint64(b & 0x3f), true, nil
	}
	switch b {
	case 0x80:
		var v [4]byte
		_, err := io.ReadFull(r, v[:])
		return uint64(binary.BigEndian.Uint32(v[:])), false, err
	case 0x81:
		var v [8]byte
		_, err := io.ReadFull(r, v[:])
		return binary.BigEndian.Uint64(v[:]), false, err
	}
	return 0, false, fmt.Errorf("unknown length encoding %#x", b)
}
