package sysctl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fixture copies testdata/<name> into a fresh temp dir, so tests may mutate it, and
// returns the root and the Roots pointing into it.
func fixture(t *testing.T, name string) (string, Roots) {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join("testdata", name))); err != nil {
		t.Fatal(err)
	}
	return root, Roots{Proc: filepath.Join(root, "proc"), Sys: filepath.Join(root, "sys")}
}

// Fixture-relative knob paths, to keep the tables short.
const (
	relSomaxconn  = "proc/sys/net/core/somaxconn"
	relOvercommit = "proc/sys/vm/overcommit_memory"
	relEnabled    = "sys/kernel/mm/transparent_hugepage/enabled"
	relDefrag     = "sys/kernel/mm/transparent_hugepage/defrag"
)

// it builds an expected Item with a fixture-relative path, rebased by rebase.
func it(name, rel, cur, want string, change bool) Item {
	return Item{Name: name, Path: rel, Current: cur, Want: want, Change: change}
}

func rebase(root string, items []Item) []Item {
	var out []Item
	for _, i := range items {
		i.Path = filepath.Join(root, i.Path)
		out = append(out, i)
	}
	return out
}

func format(items []Item) string {
	var b strings.Builder
	for _, i := range items {
		fmt.Fprintf(&b, "\n\t%s %q -> %q change=%v (%s)", i.Name, i.Current, i.Want, i.Change, i.Path)
	}
	if b.Len() == 0 {
		return " (none)"
	}
	return b.String()
}

func checkItems(t *testing.T, root string, got, want []Item) {
	t.Helper()
	if want := rebase(root, want); !reflect.DeepEqual(got, want) {
		t.Errorf("items:%s\nwant:%s", format(got), format(want))
	}
}

// checkErr wants every substring in wantErr to appear in err, or err == nil when wantErr is empty.
func checkErr(t *testing.T, err error, wantErr []string) {
	t.Helper()
	if len(wantErr) == 0 {
		if err != nil {
			t.Errorf("err = %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Errorf("err = nil, want one mentioning %q", wantErr)
		return
	}
	for _, s := range wantErr {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("err = %q\nwant it to contain %q", err, s)
		}
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// toDir swaps a knob file for a directory: unreadable even for root, unlike chmod 000.
func toDir(rel string) func(t *testing.T, root string) {
	return func(t *testing.T, root string) {
		p := filepath.Join(root, rel)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func remove(rel string) func(t *testing.T, root string) {
	return func(t *testing.T, root string) {
		if err := os.Remove(filepath.Join(root, rel)); err != nil {
			t.Fatal(err)
		}
	}
}

var redisWants = Desired{Somaxconn: 1024, OvercommitMemory: 1, TransparentHugepages: "never"}

func TestPlan(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		setup   func(t *testing.T, root string)
		desired Desired
		want    []Item
		wantErr []string
	}{
		{
			name: "stock kernel: everything changes", fixture: "stock", desired: redisWants,
			want: []Item{
				it(somaxconn, relSomaxconn, "128", "1024", true),
				it(overcommit, relOvercommit, "0", "1", true),
				it(thpEnabled, relEnabled, "madvise", "never", true),
				it(thpDefrag, relDefrag, "madvise", "never", true),
			},
		},
		{
			name: "tuned kernel: nothing changes, higher somaxconn kept", fixture: "tuned", desired: redisWants,
			want: []Item{
				it(somaxconn, relSomaxconn, "65535", "1024", false),
				it(overcommit, relOvercommit, "1", "1", false),
				it(thpEnabled, relEnabled, "never", "never", false),
				it(thpDefrag, relDefrag, "never", "never", false),
			},
		},
		{
			name: "somaxconn equal to the floor is kept", fixture: "nothp",
			desired: Desired{Somaxconn: 4096, OvercommitMemory: -1},
			want:    []Item{it(somaxconn, relSomaxconn, "4096", "4096", false)},
		},
		{
			name: "somaxconn one below the floor is raised", fixture: "nothp",
			desired: Desired{Somaxconn: 4097, OvercommitMemory: -1},
			want:    []Item{it(somaxconn, relSomaxconn, "4096", "4097", true)},
		},
		{
			name: "overcommit is exact: lowered too", fixture: "tuned",
			desired: Desired{OvercommitMemory: 0},
			want:    []Item{it(overcommit, relOvercommit, "1", "0", true)},
		},
		{
			name: "leave everything alone", fixture: "stock",
			desired: Desired{Somaxconn: 0, OvercommitMemory: -1, TransparentHugepages: ""},
		},
		{
			name: "kernel without THP: THP items skipped", fixture: "nothp", desired: redisWants,
			want: []Item{
				it(somaxconn, relSomaxconn, "4096", "1024", false),
				it(overcommit, relOvercommit, "0", "1", true),
			},
		},
		{
			name: "only defrag present", fixture: "stock", setup: remove(relEnabled),
			desired: Desired{OvercommitMemory: -1, TransparentHugepages: "always"},
			want:    []Item{it(thpDefrag, relDefrag, "madvise", "always", true)},
		},
		{
			name: "older THP choice list", fixture: "oldkernel",
			desired: Desired{OvercommitMemory: -1, TransparentHugepages: "never"},
			want: []Item{
				it(thpEnabled, relEnabled, "always", "never", true),
				it(thpDefrag, relDefrag, "always", "never", true),
			},
		},
		{
			name: "THP mode the kernel does not offer", fixture: "oldkernel", desired: Desired{Somaxconn: 1024, OvercommitMemory: 1, TransparentHugepages: "madvise"},
			// The knobs that could be planned still come back.
			want: []Item{
				it(somaxconn, relSomaxconn, "128", "1024", true),
				it(overcommit, relOvercommit, "0", "1", true),
			},
			wantErr: []string{
				`sysctl kernel/mm/transparent_hugepage/enabled: want "madvise": kernel offers only always, never`,
				`sysctl kernel/mm/transparent_hugepage/defrag: want "madvise"`,
			},
		},
		{
			name: "garbage everywhere", fixture: "garbage", desired: redisWants,
			wantErr: []string{
				`sysctl net.core.somaxconn: parse "lots"`,
				`sysctl vm.overcommit_memory: parse ""`,
				`sysctl kernel/mm/transparent_hugepage/enabled: parse "always madvise never\n"`, "no [active] word",
				`sysctl kernel/mm/transparent_hugepage/defrag: parse`, "more than one [active] word",
			},
		},
		{
			name: "somaxconn unreadable", fixture: "stock", setup: toDir(relSomaxconn),
			desired: Desired{Somaxconn: 1024, OvercommitMemory: 1},
			want:    []Item{it(overcommit, relOvercommit, "0", "1", true)},
			wantErr: []string{"sysctl net.core.somaxconn: read: ", "is a directory"},
		},
		{
			name: "somaxconn missing is an error, not a skip", fixture: "stock", setup: remove(relSomaxconn),
			desired: Desired{Somaxconn: 1024, OvercommitMemory: -1},
			wantErr: []string{"sysctl net.core.somaxconn: read: ", "no such file"},
		},
		{
			name: "THP unreadable is an error, not a skip", fixture: "stock", setup: toDir(relDefrag),
			desired: Desired{OvercommitMemory: -1, TransparentHugepages: "never"},
			want:    []Item{it(thpEnabled, relEnabled, "madvise", "never", true)},
			wantErr: []string{"sysctl kernel/mm/transparent_hugepage/defrag: read: "},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, r := fixture(t, tc.fixture)
			if tc.setup != nil {
				tc.setup(t, root)
			}
			got, err := Plan(r, tc.desired)
			checkErr(t, err, tc.wantErr)
			checkItems(t, root, got, tc.want)
		})
	}
}

func TestPlanInvalid(t *testing.T) {
	root, r := fixture(t, "stock")
	notDir := filepath.Join(root, relSomaxconn)
	tests := []struct {
		name    string
		roots   Roots
		desired Desired
		wantErr []string
	}{
		{"missing proc root", Roots{Proc: filepath.Join(root, "nope"), Sys: r.Sys}, redisWants, []string{"sysctl: root: ", "nope", "no such file"}},
		{"sys root is a file", Roots{Proc: r.Proc, Sys: notDir}, redisWants, []string{"sysctl: root " + notDir + " is not a directory"}},
		{"relative root", Roots{Proc: "proc", Sys: r.Sys}, redisWants, []string{`sysctl: root "proc" is not an absolute path`}},
		{"empty roots", Roots{}, redisWants, []string{`sysctl: root "" is not an absolute path`}},
		{"negative somaxconn", r, Desired{Somaxconn: -1, OvercommitMemory: -1}, []string{"sysctl net.core.somaxconn: want -1"}},
		{"overcommit 3", r, Desired{OvercommitMemory: 3}, []string{"sysctl vm.overcommit_memory: want 3"}},
		{"overcommit -2", r, Desired{OvercommitMemory: -2}, []string{"sysctl vm.overcommit_memory: want -2"}},
		{"THP typo", r, Desired{OvercommitMemory: -1, TransparentHugepages: "Never"}, []string{`sysctl transparent_hugepage: want "Never"`}},
		{"THP defrag-only word", r, Desired{OvercommitMemory: -1, TransparentHugepages: "defer"}, []string{`want "defer"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Plan(tc.roots, tc.desired)
			checkErr(t, err, tc.wantErr)
			if got != nil {
				t.Errorf("items:%s\nwant none on invalid input", format(got))
			}
		})
	}
}

func readRel(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestApply(t *testing.T) {
	root, r := fixture(t, "stock")
	plan, err := Plan(r, redisWants)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := Apply(r, plan)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	// Changed items are reported as planned, old Current included, for "old -> new" logs.
	if !reflect.DeepEqual(changed, plan) {
		t.Errorf("changed:%s\nwant the whole plan:%s", format(changed), format(plan))
	}
	for rel, want := range map[string]string{
		relSomaxconn: "1024\n", relOvercommit: "1\n", relEnabled: "never\n", relDefrag: "never\n",
	} {
		if got := readRel(t, root, rel); got != want {
			t.Errorf("%s = %q, want %q", rel, got, want)
		}
	}
	// A fake THP file cannot re-render "[never]" like the kernel does, so the round trip
	// through Verify covers the integer knobs; THP parsing is covered by TestPlan.
	ints := Desired{Somaxconn: redisWants.Somaxconn, OvercommitMemory: redisWants.OvercommitMemory}
	drift, err := Verify(r, ints)
	if err != nil || drift != nil {
		t.Errorf("Verify after Apply: drift%s, err %v; want none", format(drift), err)
	}
}

func TestApplyWritesOnlyChanges(t *testing.T) {
	root, r := fixture(t, "tuned")
	before := map[string]string{}
	for _, rel := range []string{relSomaxconn, relOvercommit, relEnabled, relDefrag} {
		before[rel] = readRel(t, root, rel)
	}
	plan, err := Plan(r, redisWants)
	if err != nil {
		t.Fatal(err)
	}
	// A hand-made item with Change false must not be written whatever its Want.
	plan = append(plan, Item{Name: somaxconn, Path: filepath.Join(root, relSomaxconn), Current: "65535", Want: "1", Change: false})
	changed, err := Apply(r, plan)
	if err != nil || changed != nil {
		t.Fatalf("Apply: changed%s, err %v; want nothing", format(changed), err)
	}
	for rel, want := range before {
		if got := readRel(t, root, rel); got != want {
			t.Errorf("%s = %q, want untouched %q", rel, got, want)
		}
	}
}

func TestApplyPartialFailure(t *testing.T) {
	root, r := fixture(t, "stock")
	plan, err := Plan(r, redisWants)
	if err != nil {
		t.Fatal(err)
	}
	toDir(relOvercommit)(t, root) // the knob breaks between Plan and Apply
	outside := filepath.Join(t.TempDir(), "somaxconn")
	writeFile(t, outside, "128\n")
	plan = append(plan, Item{Name: "escaped", Path: outside, Current: "128", Want: "1024", Change: true})

	changed, err := Apply(r, plan)
	checkErr(t, err, []string{
		`sysctl vm.overcommit_memory: write "1": `, "is a directory",
		"sysctl escaped: write: path " + outside + " is outside roots",
	})
	var names []string
	for _, c := range changed {
		names = append(names, c.Name)
	}
	if want := []string{somaxconn, thpEnabled, thpDefrag}; !reflect.DeepEqual(names, want) {
		t.Errorf("changed = %q, want %q: one failure must not stop the others", names, want)
	}
	if got := readRel(t, root, relSomaxconn); got != "1024\n" {
		t.Errorf("somaxconn = %q, want it written despite the overcommit failure", got)
	}
	if got, _ := os.ReadFile(outside); string(got) != "128\n" {
		t.Errorf("file outside the roots = %q, want untouched", got)
	}
}

func TestApplyMissingKnobNotCreated(t *testing.T) {
	root, r := fixture(t, "nothp")
	path := filepath.Join(root, relEnabled)
	_, err := Apply(r, []Item{{Name: thpEnabled, Path: path, Want: "never", Change: true}})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Apply created %s (stat err %v); a knob the kernel lacks must stay absent", path, err)
	}
}

func TestVerifyDrift(t *testing.T) {
	root, r := fixture(t, "tuned")
	drift, err := Verify(r, redisWants)
	if err != nil || drift != nil {
		t.Fatalf("Verify on a tuned kernel: drift%s, err %v; want none", format(drift), err)
	}
	// Someone else changes the kernel behind the agent's back.
	writeFile(t, filepath.Join(root, relSomaxconn), "128\n")
	writeFile(t, filepath.Join(root, relEnabled), "[always] madvise never\n")
	drift, err = Verify(r, redisWants)
	checkErr(t, err, nil)
	checkItems(t, root, drift, []Item{
		it(somaxconn, relSomaxconn, "128", "1024", true),
		it(thpEnabled, relEnabled, "always", "never", true),
	})
	// A raise by someone else is not drift: somaxconn is a floor.
	writeFile(t, filepath.Join(root, relSomaxconn), "100000\n")
	drift, err = Verify(r, Desired{Somaxconn: 1024, OvercommitMemory: -1})
	if err != nil || drift != nil {
		t.Errorf("Verify after a raise: drift%s, err %v; want none", format(drift), err)
	}
}

func TestVerifyReportsErrors(t *testing.T) {
	_, r := fixture(t, "garbage")
	_, err := Verify(r, Desired{Somaxconn: 1024, OvercommitMemory: -1})
	checkErr(t, err, []string{`sysctl net.core.somaxconn: parse "lots"`})
}
