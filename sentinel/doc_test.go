package sentinel

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// TestBoundaries keeps the package doc comment true: no processes, no /proc,
// no environment, no imports of the packages the agent wires this one to,
// directly or through another package.
func TestBoundaries(t *testing.T) {
	testutil.OnlyDeps(t, testutil.Module+"/internal/nbio", testutil.Module+"/sentinel/wire")
	testutil.ForbidDeps(t, map[string]string{
		"os/exec": "sentinel starts no process", testutil.Module + "/supervisor": "only agent wires the two",
	})

	const module = "github.com/redis-ha-agent/redis-ha-agent/"
	forbidden := map[string]bool{
		"os/exec": true, "syscall": true, "golang.org/x/sys/unix": true,
		module + "supervisor": true, module + "sysctl": true, module + "agent": true,
	}
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
		for _, imp := range file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if forbidden[path] {
				t.Errorf("%s imports %s", f, path)
			}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && id.Name == "os" {
					switch n.Sel.Name {
					case "Getenv", "LookupEnv", "Environ", "StartProcess", "WriteFile", "Create", "OpenFile":
						t.Errorf("%s: os.%s", fset.Position(n.Pos()), n.Sel.Name)
					}
				}
			case *ast.BasicLit:
				if n.Kind == token.STRING && strings.Contains(n.Value, "/proc") {
					t.Errorf("%s: mentions /proc", fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no package files checked")
	}
}
