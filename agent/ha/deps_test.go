package ha

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis-ha-agent/redis-ha-agent/internal/testutil"
)

// TestBoundaries keeps ha pure: no network, files, processes or clients,
// and no clock of its own (time's types are fine; reading the time or
// sleeping is not: now is passed in).
func TestBoundaries(t *testing.T) {
	testutil.OnlyDeps(t, testutil.Module+"/sentinel/wire")
	testutil.ForbidDeps(t, map[string]string{
		"net": "ha does no I/O", "os/exec": "ha does no I/O", "github.com/redis/go-redis/": "ha does no I/O",
	})
	testutil.ForbidImports(t, "os", "io/fs", "syscall", "log", "log/slog")
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" {
					switch sel.Sel.Name {
					case "Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker":
						t.Errorf("%s: time.%s: ha takes the time as an argument", fset.Position(n.Pos()), sel.Sel.Name)
					}
				}
			}
			return true
		})
	}
}
