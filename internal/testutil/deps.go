package testutil

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Module is this repository's module path.
const Module = "github.com/redis-ha-agent/redis-ha-agent"

// Deps lists every package the package in the current directory depends
// on, directly or not (go list -deps), test files left out.
func Deps(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	return strings.Fields(string(out))
}

// ForbidImports fails the test for each package in forbidden that the
// package in the current directory imports itself. Some packages cannot be
// ruled out transitively: fmt imports os.
func ForbidImports(t testing.TB, forbidden ...string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if slices.Contains(forbidden, imp) {
			t.Errorf("imports %s", imp)
		}
	}
}

// ForbidDeps fails the test for each dependency of the package in the
// current directory that is one of forbidden's keys, or below one (a key
// ending in "/" forbids a whole tree); the value says why.
func ForbidDeps(t testing.TB, forbidden map[string]string) {
	t.Helper()
	deps := Deps(t)
	if len(deps) == 0 {
		t.Fatal("go list -deps listed nothing")
	}
	for _, d := range deps {
		for bad, why := range forbidden {
			if d == bad || (strings.HasSuffix(bad, "/") && strings.HasPrefix(d, bad)) {
				t.Errorf("depends on %s: %s", d, why)
			}
		}
	}
}

// OnlyDeps fails the test for each dependency of the package in the
// current directory from this module that allowed does not list: a leaf
// stays a leaf.
func OnlyDeps(t testing.TB, allowed ...string) {
	t.Helper()
	self, err := exec.Command("go", "list", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, d := range Deps(t) {
		if strings.HasPrefix(d, Module+"/") && d != strings.TrimSpace(string(self)) && !slices.Contains(allowed, d) {
			t.Errorf("depends on %s", d)
		}
	}
}

// ForbidCalls fails the test for each pkg.Name selector (os.Getenv,
// time.Now) in the non-test files of the package in the current directory
// whose pkg is a key of forbidden and whose Name is listed under it, and
// for each string literal that contains one of strs.
func ForbidCalls(t testing.TB, forbidden map[string][]string, strs ...string) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && slices.Contains(forbidden[id.Name], n.Sel.Name) {
					t.Errorf("%s: %s.%s", fset.Position(n.Pos()), id.Name, n.Sel.Name)
				}
			case *ast.BasicLit:
				for _, s := range strs {
					if n.Kind == token.STRING && strings.Contains(n.Value, s) {
						t.Errorf("%s: mentions %s", fset.Position(n.Pos()), s)
					}
				}
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no package files checked")
	}
}
