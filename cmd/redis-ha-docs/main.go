// Command redis-ha-docs writes what the package installs beside the binary,
// generated from the same sources as its --help and its shipped
// configuration: the man pages (gzipped, as Debian wants them) and the bash
// and zsh completions. Usage: redis-ha-docs OUTDIR CONFFILE DATE.
package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"

	"github.com/redis-ha-agent/redis-ha-agent/agent"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "redis-ha-docs:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: redis-ha-docs OUTDIR CONFFILE DATE")
	}
	out, confPath, date := args[0], args[1], args[2]
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	conf, err := os.Open(confPath)
	if err != nil {
		return err
	}
	defer conf.Close()
	var m8, m5, bash, zsh bytes.Buffer
	if err := agent.WriteManual8(&m8, date); err != nil {
		return err
	}
	if err := agent.WriteManual5(&m5, conf, date); err != nil {
		return err
	}
	if err := agent.WriteCompletion("bash", &bash); err != nil {
		return err
	}
	if err := agent.WriteCompletion("zsh", &zsh); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"redis-ha-agent.8.gz": gz(m8.Bytes()), "redis-ha.conf.5.gz": gz(m5.Bytes()),
		"redis-ha-agent.bash": bash.Bytes(), "_redis-ha-agent": zsh.Bytes()} {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// gz compresses at the best level with no name and no time in the header,
// so that the package is reproducible (lintian: gzip -9n).
func gz(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}
