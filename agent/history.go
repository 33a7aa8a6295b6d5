package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
	"github.com/redis-ha-agent/redis-ha-agent/agent/ha"
	"github.com/redis-ha-agent/redis-ha-agent/internal/safefile"
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
	// Instance is the redis instance that changed role, in cluster mode
	// (several per box); "" in sentinel mode (the box's one redis).
	Instance string `json:"instance,omitempty"`
}

// roleLog follows this box's role for the history: the last role recorded
// (master, replica, down, "" before the first), the offset last seen in it,
// and why the next change happens when the agent causes it. The loop notes
// what it observes, the redis child's exit notes "down", and the gate,
// switchover and fence give causes, from their own goroutines: it keeps its
// own lock.
type roleLog struct {
	mu      sync.Mutex
	role    string
	offset  int64
	cause   string
	changes int       // recorded since the agent started, for /metrics
	last    time.Time // of the last change, the history file's included
	// other is the cause of a change the agent did not make; "" is
	// Sentinel's (sentinel mode).
	other string
}

// restore picks up where the history file ends.
func (h *roleLog) restore(past []Change) {
	if len(past) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	last := past[len(past)-1]
	h.role, h.offset, h.last = last.To, last.OffsetAfter, last.Time
}

// setCause says why the next role change happens.
func (h *roleLog) setCause(cause string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cause = cause
}

func (h *roleLog) isMaster() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.role == "master"
}

func (h *roleLog) count() (int, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changes, h.last
}

// note compares an observed role with the last recorded one and returns
// the change to record, if any.
func (h *roleLog) note(now time.Time, s ha.Snapshot) *Change {
	if !s.RedisUp {
		return nil
	}
	kind, master := "replica", s.Role.Master
	if s.Role.Kind == "master" {
		kind, master = "master", s.Self
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	defer func() { h.offset = s.Role.Offset }()
	if kind == h.role {
		return nil
	}
	cause := h.cause
	if cause == "" {
		cause = "reconfigured by Sentinel"
		if h.other != "" {
			cause = h.other
		}
	}
	c := &Change{Time: now, From: h.role, To: kind, Master: master.String(), Cause: cause,
		OffsetBefore: h.offset, OffsetAfter: s.Role.Offset}
	h.role, h.cause, h.last = kind, "", now
	h.changes++
	return c
}

// down notes that redis exited on its own; nil when it was down already
// (one record for the whole outage). wasMaster says it died as master.
func (h *roleLog) down(now time.Time, err error) (c *Change, wasMaster bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wasMaster = h.role == "master"
	if h.role == "down" {
		return nil, wasMaster
	}
	c = &Change{Time: now, From: h.role, To: "down", Cause: fmt.Sprintf("redis exited: %v", err),
		OffsetBefore: h.offset, OffsetAfter: h.offset}
	h.role, h.last = "down", now
	h.changes++
	return c, wasMaster
}

// recordChange logs a role change, appends it to the history file and hands
// it to the hook runner.
func (n *node) recordChange(cfg *config.Config, c Change) {
	n.log.Info("role change", "from", orDash(c.From), "to", c.To, "master", c.Master, "cause", c.Cause,
		"offset_before", c.OffsetBefore, "offset_after", c.OffsetAfter)
	if err := appendHistory(historyPath(cfg), c); err != nil {
		n.log.Warn("record role change", "err", err)
	}
	select {
	case n.hooks <- c:
	default:
		n.log.Warn("hooks.on_role_change is falling behind; dropping a role change", "to", c.To)
	}
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
	// The state directory belongs to the redis user: whatever it left at
	// this name (a symlink, a hard link, a FIFO) must not make root write
	// elsewhere or wait.
	f, err := safefile.Append(path, 0o644)
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
	f, err := safefile.Open(path)
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
	if cfg.ClusterMode() {
		fmt.Fprint(tw, "INSTANCE\t")
	}
	fmt.Fprintln(tw, "TIME\tFROM\tTO\tMASTER\tOFFSET BEFORE\tOFFSET AFTER\tCAUSE")
	for _, c := range changes {
		if cfg.ClusterMode() {
			fmt.Fprintf(tw, "%s\t", orDash(c.Instance))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", c.Time.Local().Format("2006-01-02 15:04:05.000"),
			orDash(c.From), c.To, orDash(c.Master), c.OffsetBefore, c.OffsetAfter, c.Cause)
	}
	return tw.Flush()
}
