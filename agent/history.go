package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
)

// Change is one role change of the local redis, as `history` prints it.
type Change struct {
	Time         time.Time `json:"time"`
	From         string    `json:"from"` // master, replica, down, "" (first start)
	To           string    `json:"to"`
	Master       string    `json:"master,omitempty"` // the master after the change
	Cause        string    `json:"cause"`
	OffsetBefore int64     `json:"offset_before"` // replication offset last seen in the old role
	OffsetAfter  int64     `json:"offset_after"`  // first offset seen in the new role
}

func historyPath(cfg *config.Config) string { return filepath.Join(cfg.Node.DataDir, "history.jsonl") }

// appendHistory adds one line to the history file. It is an append-only log
// (one JSON object per line, fsynced): a torn last line after a power loss
// is skipped by readHistory, never fatal.
func appendHistory(path string, c Change) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if _, err = f.Write(append(b, '\n')); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("history: append %s: %w", path, err)
	}
	return nil
}

func readHistory(path string) ([]Change, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	var out []Change
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c Change
		if json.Unmarshal(sc.Bytes(), &c) == nil {
			out = append(out, c)
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("history: read %s: %w", path, err)
	}
	return out, nil
}

func history(path string, asJSON bool, out io.Writer) error {
	cfg, err := config.Load(path, config.DefaultEnv())
	if err != nil {
		return err
	}
	changes, err := readHistory(historyPath(cfg))
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if changes == nil {
			changes = []Change{}
		}
		return enc.Encode(changes)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tFROM\tTO\tMASTER\tOFFSET BEFORE\tOFFSET AFTER\tCAUSE")
	for _, c := range changes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", c.Time.Local().Format("2006-01-02 15:04:05.000"),
			orDash(c.From), c.To, orDash(c.Master), c.OffsetBefore, c.OffsetAfter, c.Cause)
	}
	return tw.Flush()
}
