package agent

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

// The command line is one table: each verb's flags, its --help, the global
// usage, the shell completions and redis-ha-agent(8) all come from it, so
// they cannot disagree.

// verb is one command of the command line.
type verb struct {
	name    string
	args    []string // positional arguments, e.g. "DIR"
	summary string   // one line, for the usage and the man page's list
	help    string   // what --help adds below the synopsis
	flags   func(fs *flag.FlagSet, o *opts)
	run     func(ctx context.Context, o *opts, out io.Writer) error
	// sentinelOnly: refused in cluster mode, where no Sentinel group exists
	// to pause, drain or restart through.
	sentinelOnly bool
}

func jsonFlag(what string) func(fs *flag.FlagSet, o *opts) {
	return func(fs *flag.FlagSet, o *opts) { fs.BoolVar(&o.json, "json", false, "print "+what+" as JSON") }
}

// verbs in the order the usage lists them.
var verbs = []verb{
	{name: "run", summary: "the daemon (systemd runs it: redis-ha-agent.service)",
		help: "Supervises redis and sentinel, tunes the kernel, keeps the group's roles, the VIP and the HTTP API.\nThe configuration directory is --config's directory, its drop-ins in conf.d beside it."},
	{name: "status", summary: "every peer: role, offsets, lag, what the sentinels say",
		help:  "Exit status 0 when the group is healthy, 1 when not (the report says why).",
		flags: jsonFlag("the report"),
		run:   func(ctx context.Context, o *opts, out io.Writer) error { return status(ctx, o.config, o.json, out) }},
	{name: "check", summary: "preflight: config, binaries, ports, peers, kernel settings, quorum",
		help:  "Exit status 1 when a finding fails (warnings do not).",
		flags: jsonFlag("the findings"),
		run:   func(ctx context.Context, o *opts, out io.Writer) error { return check(ctx, o.config, o.json, out) }},
	{name: "check-config", summary: "parse and validate the configuration only",
		help: "Every problem is reported with file, line and key; exit status 78 when the configuration is invalid.",
		run:  func(_ context.Context, o *opts, out io.Writer) error { return checkConfig(o.config, out) }},
	{name: "switchover", summary: "planned master change with zero acknowledged writes lost",
		help: "Writes pause on the master (CLIENT PAUSE WRITE) until the target holds its offset, then Sentinel promotes it.",
		flags: func(fs *flag.FlagSet, o *opts) {
			fs.StringVar(&o.to, "to", "", "the replica to promote, `HOST[:PORT]` (default: the most up-to-date)")
			jsonFlag("the result (from, to, writes paused, took) or the error")(fs, o)
		},
		run: func(ctx context.Context, o *opts, out io.Writer) error {
			return switchoverCmd(ctx, o.config, o.to, o.json, out)
		}},
	{name: "history", summary: "this box's role changes with time, cause and replication offsets",
		flags: jsonFlag("the changes"),
		run:   func(_ context.Context, o *opts, out io.Writer) error { return history(o.config, o.json, out) }},
	{name: "pause", sentinelOnly: true, summary: "group-wide maintenance: no automatic failover, fencing or VIP move",
		help: "The pause is kept across agent restarts and shows in status, STATUS=, /status and /metrics.",
		flags: func(fs *flag.FlagSet, o *opts) {
			fs.DurationVar(&o.pauseFor, "for", 0, "end the pause by itself after this `DURATION` (default: at resume)")
		},
		run: func(ctx context.Context, o *opts, out io.Writer) error {
			return pauseCmd(ctx, o.config, o.pauseFor, out)
		}},
	{name: "resume", sentinelOnly: true, summary: "end the pause",
		run: func(ctx context.Context, o *opts, out io.Writer) error { return resumeCmd(ctx, o.config, out) }},
	{name: "drain", sentinelOnly: true, summary: "this box hands off the master role and is never promoted until undrained",
		help: "Refused when the group would keep fewer promotable replicas than it needs, or lose its sentinel quorum.",
		run:  func(ctx context.Context, o *opts, out io.Writer) error { return drainCmd(ctx, o.config, false, out) }},
	{name: "undrain", sentinelOnly: true, summary: "this box may be promoted again (node.priority)",
		run: func(ctx context.Context, o *opts, out io.Writer) error { return drainCmd(ctx, o.config, true, out) }},
	{name: "restart", sentinelOnly: true, summary: "restart redis here (a master switches over first), or on every box",
		flags: func(fs *flag.FlagSet, o *opts) {
			fs.BoolVar(&o.rolling, "rolling", false, "every box: replicas first, one at a time, each back in sync; one switchover; the old master last")
			fs.BoolVar(&o.pendingOnly, "pending", false, "only where a restart is pending (a binary replaced on disk, a restart-only setting changed)")
		},
		run: func(ctx context.Context, o *opts, out io.Writer) error {
			return restartCmd(ctx, o.config, o.rolling, o.pendingOnly, out)
		}},
	{name: "adopt-data", sentinelOnly: true, args: []string{"DIR"}, summary: "make an existing redis data directory this box's dataset",
		help: "Before the group's first start, on the bootstrap primary or a single box (e.g. DIR = /var/lib/redis).\nDIR is copied, never changed; refused whenever the state directory already holds keys.",
		run: func(ctx context.Context, o *opts, out io.Writer) error {
			return adoptDataCmd(ctx, o.config, o.arg, out)
		}},
	{name: "completion", args: []string{"SHELL"}, summary: "print the bash or zsh completion script"}, // run: init
	{name: "version", summary: "print the version",
		run: func(_ context.Context, _ *opts, out io.Writer) error {
			_, err := fmt.Fprintf(out, "redis-ha-agent %s\n", Version)
			return err
		}},
}

// completion lists the verbs, so it joins them once they exist.
func init() {
	lookupVerb("completion").run = func(_ context.Context, o *opts, out io.Writer) error { return WriteCompletion(o.arg, out) }
}

func lookupVerb(name string) *verb {
	for i := range verbs {
		if verbs[i].name == name {
			return &verbs[i]
		}
	}
	return nil
}

// takesConfig says whether the verb reads the configuration.
func (v *verb) takesConfig() bool { return v.name != "version" && v.name != "completion" }

// flagSet is the verb's own flags, bound to o.
func (v *verb) flagSet(o *opts) *flag.FlagSet {
	fs := flag.NewFlagSet(v.name, flag.ContinueOnError)
	if v.takesConfig() {
		fs.StringVar(&o.config, "config", defaultConf, "the base configuration `PATH` (drop-ins in conf.d beside it)")
	}
	if v.flags != nil {
		v.flags(fs, o)
	}
	return fs
}

// flagDoc is one flag as the help, the man page and the completions show it.
type flagDoc struct{ name, arg, usage string }

func (v *verb) flagDocs() []flagDoc {
	var out []flagDoc
	v.flagSet(&opts{}).VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool {
			arg = ""
		}
		out = append(out, flagDoc{f.Name, arg, usage})
	})
	return out
}

func (v *verb) synopsis() string {
	s := "redis-ha-agent " + v.name
	for _, f := range v.flagDocs() {
		if f.arg != "" {
			s += fmt.Sprintf(" [--%s %s]", f.name, f.arg)
		} else {
			s += fmt.Sprintf(" [--%s]", f.name)
		}
	}
	for _, a := range v.args {
		s += " " + a
	}
	return s
}

// usage is the verb's --help.
func (v *verb) usage() string {
	b := &strings.Builder{}
	fmt.Fprintf(b, "usage: %s\n\n%s.\n", v.synopsis(), capitalize(v.summary))
	if v.help != "" {
		fmt.Fprintf(b, "%s\n", v.help)
	}
	if fd := v.flagDocs(); len(fd) > 0 {
		fmt.Fprintf(b, "\nflags:\n")
		for _, f := range fd {
			name := "--" + f.name
			if f.arg != "" {
				name += " " + f.arg
			}
			fmt.Fprintf(b, "  %-24s %s\n", name, f.usage)
		}
	}
	return b.String()
}

// usage is the command line's: every verb with its summary.
func usage() string {
	b := &strings.Builder{}
	fmt.Fprintf(b, "usage: redis-ha-agent <command> [flags]\n\ncommands:\n")
	for _, v := range verbs {
		name := v.name
		for _, a := range v.args {
			name += " " + a
		}
		fmt.Fprintf(b, "  %-16s %s\n", name, v.summary)
	}
	fmt.Fprintf(b, "\nredis-ha-agent <command> --help shows a command's flags; they take --config PATH\n(default %s).\n", defaultConf)
	return b.String()
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// WriteCompletion writes shell's completion script: the verbs, then each
// verb's flags (and directories for adopt-data, paths for --config).
func WriteCompletion(shell string, out io.Writer) error {
	var names []string
	for _, v := range verbs {
		names = append(names, v.name)
	}
	switch shell {
	case "bash":
		b := &strings.Builder{}
		fmt.Fprintf(b, "# bash completion for redis-ha-agent (generated by redis-ha-agent completion bash)\n")
		fmt.Fprintf(b, "_redis_ha_agent() {\n\tlocal cur prev words cword\n\t_init_completion || return\n")
		fmt.Fprintf(b, "\tif [[ $cword -eq 1 ]]; then\n\t\tCOMPREPLY=($(compgen -W '%s --help --version' -- \"$cur\"))\n\t\treturn\n\tfi\n", strings.Join(names, " "))
		fmt.Fprintf(b, "\tcase $prev in\n\t--config) _filedir; return ;;\n\tesac\n")
		fmt.Fprintf(b, "\tcase ${words[1]} in\n")
		for _, v := range verbs {
			var fl []string
			for _, f := range v.flagDocs() {
				fl = append(fl, "--"+f.name)
			}
			fl = append(fl, "--help")
			extra := ""
			switch v.name {
			case "adopt-data":
				extra = " _filedir -d;"
			case "completion":
				extra = " COMPREPLY+=($(compgen -W 'bash zsh' -- \"$cur\"));"
			}
			fmt.Fprintf(b, "\t%s) COMPREPLY=($(compgen -W '%s' -- \"$cur\"));%s ;;\n", v.name, strings.Join(fl, " "), extra)
		}
		fmt.Fprintf(b, "\tesac\n}\ncomplete -F _redis_ha_agent redis-ha-agent\n")
		_, err := io.WriteString(out, b.String())
		return err
	case "zsh":
		b := &strings.Builder{}
		fmt.Fprintf(b, "#compdef redis-ha-agent\n# zsh completion for redis-ha-agent (generated by redis-ha-agent completion zsh)\n\n")
		fmt.Fprintf(b, "_redis-ha-agent() {\n\tlocal -a verbs\n\tverbs=(\n")
		for _, v := range verbs {
			fmt.Fprintf(b, "\t\t%s\n", zshQuote(v.name+":"+v.summary))
		}
		fmt.Fprintf(b, "\t)\n\tif (( CURRENT == 2 )); then\n\t\t_describe command verbs\n\t\treturn\n\tfi\n\tcase $words[2] in\n")
		for _, v := range verbs {
			fmt.Fprintf(b, "\t%s)\n\t\t_arguments", v.name)
			for _, f := range v.flagDocs() {
				spec := "--" + f.name + "[" + zshBracket(f.usage) + "]"
				switch {
				case f.name == "config":
					spec += ":path:_files"
				case f.arg != "":
					spec += ":" + strings.ToLower(f.arg) + ": "
				}
				fmt.Fprintf(b, " \\\n\t\t\t%s", zshQuote(spec))
			}
			switch v.name {
			case "adopt-data":
				fmt.Fprintf(b, " \\\n\t\t\t'1:directory:_files -/'")
			case "completion":
				fmt.Fprintf(b, " \\\n\t\t\t'1:shell:(bash zsh)'")
			}
			fmt.Fprintf(b, "\n\t\t;;\n")
		}
		fmt.Fprintf(b, "\tesac\n}\n\n_redis-ha-agent \"$@\"\n")
		_, err := io.WriteString(out, b.String())
		return err
	}
	return fmt.Errorf("completion: %q is not a shell this knows (bash, zsh)", shell)
}

func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// zshBracket escapes what _arguments reads inside a [description].
func zshBracket(s string) string {
	r := strings.NewReplacer("[", `\[`, "]", `\]`, ":", `\:`)
	return r.Replace(s)
}
