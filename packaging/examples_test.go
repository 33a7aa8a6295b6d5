package packaging

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"gopkg.in/yaml.v3"
)

// The examples shipped in /usr/share/doc/redis-ha-agent/examples, each checked
// by the tool that reads it.
const examplesDir = repo + "/rootfs/usr/share/doc/redis-ha-agent/examples"

// agentMetrics are the metric names agent/http.go serves on /metrics.
func agentMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "agent/http.go"))
	must(t, err)
	var names []string
	for _, m := range regexp.MustCompile(`metric\("(redis_ha_[a-z_]+)"`).FindAllStringSubmatch(string(b), -1) {
		names = append(names, m[1])
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metrics in agent/http.go: has writeMetrics changed shape?", len(names))
	}
	return names
}

// usesOnlyAgentMetrics fails on a redis_ha_ name the agent does not serve: an
// alert or a panel on a renamed metric would never fire or draw anything.
func usesOnlyAgentMetrics(t *testing.T, what, text string) {
	t.Helper()
	served := agentMetrics(t)
	used := regexp.MustCompile(`\bredis_ha_[a-z_]+\b`).FindAllString(text, -1)
	if len(used) == 0 {
		t.Errorf("%s uses no redis_ha_ metric", what)
	}
	for _, name := range used {
		if !slices.Contains(served, name) {
			t.Errorf("%s uses %s, which agent/http.go does not serve", what, name)
		}
	}
}

func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("%v: make deps installs it (Debian's prometheus)", err)
	}
	rules := filepath.Join(examplesDir, "prometheus-alerts.yml")
	out := run(t, "", nil, promtool, "check", "rules", rules)
	t.Logf("promtool check rules:\n%s", out)
	// The test file names the rules relative to itself.
	out = run(t, "testdata", nil, promtool, "test", "rules", "prometheus-alerts.test.yml")
	t.Logf("promtool test rules:\n%s", out)

	b, err := os.ReadFile(rules)
	must(t, err)
	usesOnlyAgentMetrics(t, "prometheus-alerts.yml", string(b))

	// Every alert is tested, firing at least once.
	var doc struct {
		Groups []struct{ Rules []struct{ Alert string } }
	}
	must(t, yaml.Unmarshal(b, &doc))
	tests, err := os.ReadFile("testdata/prometheus-alerts.test.yml")
	must(t, err)
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			fires := regexp.MustCompile(`alertname: ` + r.Alert + `\n\s+exp_alerts:\n\s+- exp_labels`)
			if !fires.Match(tests) {
				t.Errorf("alert %s is never tested firing in testdata/prometheus-alerts.test.yml", r.Alert)
			}
		}
	}
}

// TestGrafanaDashboard validates the dashboard against Grafana's own dashboard
// schema, as Grafana's foundation SDK carries it in Go types (generated from the
// schema Grafana itself loads): strict decoding fails on a missing required
// field, a wrong type or an unknown field, in the dashboard, in each panel's
// options for its panel type, and in each Prometheus query. Debian packages no
// Grafana to load it into. Its queries are then parsed by promtool.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(examplesDir, "grafana-dashboard.json"))
	must(t, err)
	plugins.RegisterDefaultPlugins()
	// The classic JSON model, which every Grafana version imports; the SDK
	// prefers its v2 resource, which only Grafana 12 with a feature flag reads.
	//lint:ignore SA1019 the example is for Grafana's dashboard import, which takes this model
	var d dashboard.Dashboard
	// It returns its (empty) list of problems even when there are none.
	var problems cog.BuildErrors
	if err := d.UnmarshalJSONStrict(b); err != nil && (!errors.As(err, &problems) || len(problems) > 0) {
		t.Fatalf("grafana-dashboard.json against Grafana's dashboard schema:\n%v", err)
	}
	if d.Title == nil || *d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard without a title or panels")
	}
	usesOnlyAgentMetrics(t, "grafana-dashboard.json", string(b))

	// Each panel's queries, as Prometheus sees them once Grafana has filled in
	// the variables, in a rule file for promtool to parse.
	var raw struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	must(t, json.Unmarshal(b, &raw))
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	vars := strings.NewReplacer("$job", "redis-ha", "$__rate_interval", "1m")
	n := 0
	for _, p := range raw.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			n++
			e, _ := json.Marshal(vars.Replace(q.Expr))
			rules.WriteString("      - record: dashboard:query" + strconv.Itoa(n) + "\n        expr: " + string(e) + "\n")
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("%v: make deps installs it (Debian's prometheus)", err)
	}
	f := filepath.Join(t.TempDir(), "queries.yml")
	must(t, os.WriteFile(f, []byte(rules.String()), 0o644))
	run(t, "", nil, promtool, "check", "rules", f)
	t.Logf("%d panels, %d queries: valid", len(raw.Panels), n)
}

// TestHAProxyExample: haproxy accepts the example, and its primary backend checks
// /primary exactly as the backend the e2e test runs through failovers.
func TestHAProxyExample(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("%v: make deps installs it", err)
	}
	conf := filepath.Join(examplesDir, "haproxy.cfg")
	run(t, "", nil, haproxy, "-c", "-q", "-f", conf)

	b, err := os.ReadFile(conf)
	must(t, err)
	e2e, err := os.ReadFile(filepath.Join(repo, "test/e2e/clientpaths_test.go"))
	must(t, err)
	checks := func(s string) []string {
		var lines []string
		in := false
		for _, l := range strings.Split(s, "\n") {
			l = strings.TrimSpace(l)
			switch {
			case l == "backend primary":
				in = true
			case in && (strings.HasPrefix(l, "backend ") || strings.HasPrefix(l, "frontend ") || l == "" || l == "`"):
				in = false
			case in && !strings.HasPrefix(l, "server "):
				lines = append(lines, strings.ReplaceAll(l, "` + httpPort + `", "8008"))
			}
		}
		return lines
	}
	got, want := checks(string(b)), checks(string(e2e))
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("haproxy.cfg's primary backend checks\n  %s\nbut test/e2e/clientpaths_test.go tests\n  %s",
			strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestClientSnippets: the go-redis example sets ReadTimeout below DialTimeout
// (go-redis#3652; `go vet ./...` compiles it), and the redis-py one compiles
// and bounds its sockets.
func TestClientSnippets(t *testing.T) {
	t.Run("go-redis", func(t *testing.T) {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, filepath.Join(examplesDir, "go-redis.go"), nil, 0)
		must(t, err)
		opts := map[string]time.Duration{}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			if sel, ok := lit.Type.(*ast.SelectorExpr); !ok || sel.Sel.Name != "FailoverOptions" {
				return true
			}
			for _, e := range lit.Elts {
				kv := e.(*ast.KeyValueExpr)
				if d, ok := duration(kv.Value); ok {
					opts[kv.Key.(*ast.Ident).Name] = d
				}
			}
			return false
		})
		read, dial := opts["ReadTimeout"], opts["DialTimeout"]
		if read == 0 || dial == 0 || read >= dial {
			t.Errorf("go-redis.go: ReadTimeout %v, DialTimeout %v: want both set, ReadTimeout below DialTimeout (go-redis#3652)", read, dial)
		}
	})
	t.Run("redis-py", func(t *testing.T) {
		py := filepath.Join(examplesDir, "redis-py.py")
		out, err := exec.Command("python3", "-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())", py).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-py.py: %v\n%s", err, out)
		}
		b, err := os.ReadFile(py)
		must(t, err)
		for _, w := range []string{"socket_timeout=1.0", "sentinel_kwargs=", `master_for("main"`} {
			if !strings.Contains(string(b), w) {
				t.Errorf("redis-py.py lacks %s", w)
			}
		}
	})
}

// duration evaluates `time.Second` and `N * time.Second` (and Millisecond).
func duration(e ast.Expr) (time.Duration, bool) {
	unit := func(e ast.Expr) (time.Duration, bool) {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return 0, false
		}
		switch sel.Sel.Name {
		case "Second":
			return time.Second, true
		case "Millisecond":
			return time.Millisecond, true
		}
		return 0, false
	}
	if d, ok := unit(e); ok {
		return d, true
	}
	b, ok := e.(*ast.BinaryExpr)
	if !ok || b.Op != token.MUL {
		return 0, false
	}
	n, ok := b.X.(*ast.BasicLit)
	if !ok {
		return 0, false
	}
	k, err := strconv.Atoi(n.Value)
	d, ok := unit(b.Y)
	return time.Duration(k) * d, err == nil && ok
}
