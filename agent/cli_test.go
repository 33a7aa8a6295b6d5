package agent

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
)

// TestVerbHelp: every verb has its own --help, which exits 0 and lists only
// that verb's flags; a flag of another verb is a usage error naming it.
func TestVerbHelp(t *testing.T) {
	for _, v := range verbs {
		t.Run(v.name, func(t *testing.T) {
			for _, h := range []string{"--help", "-h"} {
				var out, errOut bytes.Buffer
				if code := Main(context.Background(), []string{v.name, h}, &out, &errOut); code != ExitOK {
					t.Fatalf("%s %s: exit %d, want 0\n%s", v.name, h, code, errOut.String())
				}
				if !strings.HasPrefix(out.String(), "usage: redis-ha-agent "+v.name) {
					t.Errorf("%s %s printed:\n%s", v.name, h, out.String())
				}
			}
			var out bytes.Buffer
			Main(context.Background(), []string{"help", v.name}, &out, &out)
			if !strings.HasPrefix(out.String(), "usage: redis-ha-agent "+v.name) {
				t.Errorf("help %s printed:\n%s", v.name, out.String())
			}
		})
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "--to", "x"}, "flag provided but not defined: -to"},
		{[]string{"switchover", "--rolling"}, "flag provided but not defined: -rolling"},
		{[]string{"adopt-data"}, "missing DIR"},
		{[]string{"adopt-data", "a", "b"}, `unexpected argument "b"`},
		{[]string{"resume", "now"}, `unexpected argument "now"`},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
	} {
		var out, errOut bytes.Buffer
		if code := Main(context.Background(), tc.args, &out, &errOut); code != ExitUsage || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut.String(), ExitUsage, tc.want)
		}
	}
	for _, args := range [][]string{{"-v"}, {"--version"}, {"version"}} {
		var out bytes.Buffer
		if code := Main(context.Background(), args, &out, &out); code != ExitOK || out.String() != "redis-ha-agent "+Version+"\n" {
			t.Errorf("%v: exit %d, %q", args, code, out.String())
		}
	}
}

// TestBashCompletion runs the generated script in bash: "sw<TAB>" completes
// to switchover, and a verb's flags are its own.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	var script bytes.Buffer
	if code := Main(context.Background(), []string{"completion", "bash"}, &script, &script); code != ExitOK {
		t.Fatalf("completion bash: exit %d\n%s", code, script.String())
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"redis-ha-agent", "sw"}, "switchover"},
		{[]string{"redis-ha-agent", "switchover", "--"}, "--config --json --to --help"},
		{[]string{"redis-ha-agent", "restart", "--p"}, "--pending"},
		{[]string{"redis-ha-agent", "completion", "z"}, "zsh"},
	} {
		// bash-completion's _init_completion, reduced to what the script reads.
		prog := script.String() + `
_init_completion() { words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; cur=${words[cword]}; prev=${words[cword-1]}; }
_filedir() { :; }
COMP_WORDS=(` + strings.Join(tc.words, " ") + `); COMP_CWORD=$((${#COMP_WORDS[@]}-1))
_redis_ha_agent
echo "${COMPREPLY[*]}"
`
		out, err := exec.Command(bash, "-c", prog).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("%q<TAB>: %q (%v), want %q", strings.Join(tc.words, " "), out, err, tc.want)
		}
	}
}

// TestManuals: both man pages render, name every verb and every key of the
// shipped configuration.
func TestManuals(t *testing.T) {
	var m8 bytes.Buffer
	if err := WriteManual8(&m8, "2026-12-01"); err != nil {
		t.Fatal(err)
	}
	for _, v := range verbs {
		if !strings.Contains(m8.String(), ".B "+roff("redis-ha-agent "+v.name)) {
			t.Errorf("redis-ha-agent(8) lacks %s", v.name)
		}
	}
	conf := "# header\n\n#[cluster]\n# What peers are.\n#peers = []\n\n#[log]\n# The level.\n#level = \"info\"\n"
	var m5 bytes.Buffer
	if err := WriteManual5(&m5, strings.NewReader(conf), "2026-12-01"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".SS [cluster]\n.TP\n.B peers\nWhat peers are.", ".SS [log]\n.TP\n.B level\nThe level."} {
		if !strings.Contains(m5.String(), want) {
			t.Errorf("redis-ha.conf(5) lacks %q:\n%s", want, m5.String())
		}
	}
	if err := WriteManual5(&m5, strings.NewReader("# nothing\n"), "x"); err == nil {
		t.Error("a configuration without keys made a man page")
	}
	if man, err := exec.LookPath("man"); err == nil {
		cmd := exec.Command(man, "--warnings", "-l", "-Tutf8", "-")
		var warnings bytes.Buffer
		cmd.Stdin, cmd.Stderr = &m8, &warnings
		if err := cmd.Run(); err != nil || warnings.Len() > 0 {
			t.Errorf("man --warnings -l redis-ha-agent(8): %v\n%s", err, warnings.String())
		}
	}
}
