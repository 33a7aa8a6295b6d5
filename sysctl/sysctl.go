// Package sysctl owns the kernel knobs redis cares about: net.core.somaxconn,
// vm.overcommit_memory and transparent hugepages. It works plan → apply → verify over
// injected /proc and /sys roots so tests run against fixture trees.
//
// It must not exec anything (no sysctl(8)), read the environment, or log: it returns
// items and errors and the caller decides what to say. Knobs are read and written
// directly as files; nothing is cached between calls.
package sysctl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Roots are the mount points of procfs and sysfs, normally "/proc" and "/sys".
type Roots struct{ Proc, Sys string }

// Desired is the kernel state the agent wants. Each field has a "leave alone" value
// so a caller can manage only some knobs. Note that the zero Desired is NOT "leave
// everything alone": OvercommitMemory 0 is a real setting, so pass -1 to skip it.
type Desired struct {
	// Somaxconn is a floor for net.core.somaxconn: a lower value is raised, a higher one
	// is kept (another service may need it). 0 = leave alone.
	Somaxconn int
	// OvercommitMemory is set exactly (0, 1 or 2). -1 = leave alone.
	OvercommitMemory int
	// TransparentHugepages ("never", "madvise", "always") is written to both
	// transparent_hugepage/enabled and defrag. "" = leave alone.
	TransparentHugepages string
}

// Item is one knob: where it lives, what it holds, what we want, and whether Apply would write.
type Item struct {
	Name    string // "net.core.somaxconn", "vm.overcommit_memory", "kernel/mm/transparent_hugepage/enabled", ".../defrag"
	Path    string // absolute path under the roots
	Current string // value read (THP: the bracketed active word)
	Want    string
	Change  bool // Apply would write it
}

const (
	somaxconn  = "net.core.somaxconn"
	overcommit = "vm.overcommit_memory"
	thpEnabled = "kernel/mm/transparent_hugepage/enabled"
	thpDefrag  = "kernel/mm/transparent_hugepage/defrag"
)

// Plan reads the knobs d asks about and reports, for each, whether Apply would change it.
// Knobs are read with os.ReadFile rather than procfs.FS.SysctlStrings: procfs has no THP
// or write support, so one plain file path for every knob is simpler than two readers.
//
// A missing THP file skips that item without error (kernels built without THP exist);
// any other missing or unparsable knob is an error naming it. Items that could be read
// are returned even when err reports others (errors.Join), so a caller may still act on them.
func Plan(r Roots, d Desired) ([]Item, error) {
	if err := validate(r, d); err != nil {
		return nil, err
	}
	var items []Item
	var errs []error
	add := func(it Item, ok bool, err error) {
		if err != nil {
			errs = append(errs, err)
		} else if ok {
			items = append(items, it)
		}
	}
	if d.Somaxconn != 0 {
		add(planInt(procPath(r, somaxconn), somaxconn, d.Somaxconn, func(cur, want int) bool { return cur < want }))
	}
	if d.OvercommitMemory != -1 {
		add(planInt(procPath(r, overcommit), overcommit, d.OvercommitMemory, func(cur, want int) bool { return cur != want }))
	}
	if d.TransparentHugepages != "" {
		for _, name := range []string{thpEnabled, thpDefrag} {
			add(planTHP(filepath.Join(r.Sys, name), name, d.TransparentHugepages))
		}
	}
	return items, errors.Join(errs...)
}

// Apply writes Want to every item with Change set and returns the items it wrote (as
// planned: Current is still the old value, for logging "old -> new"). A failed item does
// not stop the others; all failures come back joined. Items whose Path is outside r are
// refused, so a plan made for a fixture tree can never land on the real /proc.
func Apply(r Roots, plan []Item) (changed []Item, err error) {
	var errs []error
	for _, it := range plan {
		if !it.Change {
			continue
		}
		if !within(r.Proc, it.Path) && !within(r.Sys, it.Path) {
			errs = append(errs, fmt.Errorf("sysctl %s: write: path %s is outside roots %s and %s", it.Name, it.Path, r.Proc, r.Sys))
			continue
		}
		if err := writeKnob(it.Path, it.Want); err != nil {
			errs = append(errs, fmt.Errorf("sysctl %s: write %q: %w", it.Name, it.Want, err))
			continue
		}
		changed = append(changed, it)
	}
	return changed, errors.Join(errs...)
}

// Verify re-reads the knobs and returns those not satisfied now (a somaxconn above the
// floor is satisfied). It is Plan keeping only the items Apply would write, so the two
// can never disagree about what "satisfied" means.
func Verify(r Roots, d Desired) (drift []Item, err error) {
	items, err := Plan(r, d)
	for _, it := range items {
		if it.Change {
			drift = append(drift, it)
		}
	}
	return drift, err
}

func validate(r Roots, d Desired) error {
	var errs []error
	for _, root := range []string{r.Proc, r.Sys} {
		// Absolute so every Item.Path is, and so Apply's containment check is meaningful.
		if !filepath.IsAbs(root) {
			errs = append(errs, fmt.Errorf("sysctl: root %q is not an absolute path", root))
			continue
		}
		fi, err := os.Stat(root)
		if err != nil {
			errs = append(errs, fmt.Errorf("sysctl: root: %w", err))
		} else if !fi.IsDir() {
			errs = append(errs, fmt.Errorf("sysctl: root %s is not a directory", root))
		}
	}
	if d.Somaxconn < 0 {
		errs = append(errs, fmt.Errorf("sysctl %s: want %d: must be > 0, or 0 to leave alone", somaxconn, d.Somaxconn))
	}
	if d.OvercommitMemory < -1 || d.OvercommitMemory > 2 {
		errs = append(errs, fmt.Errorf("sysctl %s: want %d: must be 0, 1, 2, or -1 to leave alone", overcommit, d.OvercommitMemory))
	}
	switch d.TransparentHugepages {
	case "", "always", "madvise", "never":
	default:
		errs = append(errs, fmt.Errorf("sysctl transparent_hugepage: want %q: must be always, madvise, never, or empty to leave alone",
			d.TransparentHugepages))
	}
	return errors.Join(errs...)
}

// procPath maps a dotted sysctl name to its file under <Proc>/sys, as sysctl(8) does.
func procPath(r Roots, name string) string {
	return filepath.Join(r.Proc, "sys", strings.ReplaceAll(name, ".", "/"))
}

func planInt(path, name string, want int, change func(cur, want int) bool) (Item, bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Item{}, false, fmt.Errorf("sysctl %s: read: %w", name, err)
	}
	s := strings.TrimSpace(string(b))
	cur, err := strconv.Atoi(s)
	if err != nil {
		return Item{}, false, fmt.Errorf("sysctl %s: parse %q from %s: not an integer", name, s, path)
	}
	return Item{Name: name, Path: path, Current: s, Want: strconv.Itoa(want), Change: change(cur, want)}, true, nil
}

// planTHP reads a sysfs "choice" file such as "always [madvise] never": the kernel lists
// every mode it accepts and brackets the active one. Writing takes the bare word.
func planTHP(path, name, want string) (Item, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Item{}, false, nil
	}
	if err != nil {
		return Item{}, false, fmt.Errorf("sysctl %s: read: %w", name, err)
	}
	var cur string
	var offered []string
	for _, w := range strings.Fields(string(b)) {
		if len(w) > 2 && w[0] == '[' && w[len(w)-1] == ']' {
			if cur != "" {
				return Item{}, false, fmt.Errorf("sysctl %s: parse %q from %s: more than one [active] word", name, b, path)
			}
			w = w[1 : len(w)-1]
			cur = w
		}
		offered = append(offered, w)
	}
	if cur == "" {
		return Item{}, false, fmt.Errorf("sysctl %s: parse %q from %s: no [active] word", name, b, path)
	}
	// Checked here, not left to the kernel's EINVAL, so Plan reports it before anything is written.
	if !slices.Contains(offered, want) {
		return Item{}, false, fmt.Errorf("sysctl %s: want %q: kernel offers only %s", name, want, strings.Join(offered, ", "))
	}
	return Item{Name: name, Path: path, Current: cur, Want: want, Change: cur != want}, true, nil
}

// writeKnob writes value in a single write(2), as the kernel's handlers expect one whole
// value per write. O_TRUNC is harmless on procfs/sysfs (the shell's ">" uses it too) and
// makes fixture files end up holding exactly the value; no O_CREATE, so a missing knob is
// an error rather than a new file.
func writeKnob(path, value string) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	defer func() {
		// sysfs and procfs can report a rejected value only at write, but a fixture on a
		// real filesystem can fail at close; keep whichever came first.
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	buf := []byte(value + "\n")
	n, err := f.Write(buf)
	if err != nil {
		return err
	}
	if n != len(buf) {
		return fmt.Errorf("short write: %d of %d bytes", n, len(buf))
	}
	return nil
}

// within reports whether path is root or below it, lexically.
func within(root, path string) bool {
	if !filepath.IsAbs(root) || !filepath.IsAbs(path) {
		return false
	}
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
