package agent

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// The man pages are generated: redis-ha-agent(8) from the verb table (what
// --help prints), redis-ha.conf(5) from the shipped redis-ha.conf, which
// lists every key at its default with a comment saying what it does.

// roff escapes text for a man page: backslashes, and a line starting with
// a dot or an apostrophe would be read as a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// WriteManual8 writes redis-ha-agent(8).
func WriteManual8(w io.Writer, date string) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, ".TH REDIS-HA-AGENT 8 %q %q \"System Administration\"\n", date, "redis-ha-agent "+Version)
	fmt.Fprintf(b, ".SH NAME\nredis\\-ha\\-agent \\- self\\-healing Redis on a group of boxes, with Sentinel\n")
	fmt.Fprintf(b, ".SH SYNOPSIS\n.B redis\\-ha\\-agent\n.I command\n.RI [ flags ]\n")
	fmt.Fprintf(b, ".SH DESCRIPTION\n%s\n", roff(`redis-ha-agent supervises this box's redis-server and redis-sentinel (the distribution's
binaries, as the redis user), tunes the kernel for redis, joins the Sentinel quorum of its peers,
reports to systemd, reloads its configuration when a file in /etc/redis-ha changes, keeps a virtual
IP on the master and answers load balancers over HTTP. The daemon is the unit redis-ha-agent.service;
the other commands talk to it and to the group.`))
	fmt.Fprintf(b, ".SH COMMANDS\n")
	for i := range verbs {
		v := &verbs[i]
		fmt.Fprintf(b, ".TP\n.B %s\n%s.\n", roff(v.synopsis()), roff(capitalize(v.summary)))
		if v.help != "" {
			fmt.Fprintf(b, "%s\n", roff(v.help))
		}
		for _, f := range v.flagDocs() {
			if f.name == "config" {
				continue
			}
			name := "\\-\\-" + roff(f.name)
			if f.arg != "" {
				name += " " + roff(f.arg)
			}
			fmt.Fprintf(b, ".RS\n.TP\n.B %s\n%s\n.RE\n", name, roff(f.usage))
		}
	}
	fmt.Fprintf(b, ".SH OPTIONS\n.TP\n.BI \\-\\-config \" PATH\"\n%s\n", roff("Every command but version and completion reads the base configuration at PATH (default "+defaultConf+") and its drop-ins in the conf.d directory beside it."))
	fmt.Fprintf(b, ".TP\n.B \\-\\-help\nThe command's synopsis and flags.\n")
	fmt.Fprintf(b, ".SH EXIT STATUS\n.TP\n.B 0\nSuccess; for status, a healthy group.\n.TP\n.B 1\nFailure, or an unhealthy group (the report says why).\n.TP\n.B 2\nUsage error.\n.TP\n.B 78\nInvalid configuration (EX_CONFIG; the unit does not restart on it).\n")
	fmt.Fprintf(b, ".SH FILES\n.TP\n.I /etc/redis\\-ha/redis\\-ha.conf\nThe base configuration, every key at its default; see\n.BR redis\\-ha.conf (5).\n")
	fmt.Fprintf(b, ".TP\n.I /etc/redis\\-ha/conf.d/*.conf\nDrop\\-ins, read in lexical order; a later file wins key by key.\n")
	fmt.Fprintf(b, ".TP\n.I /etc/redis\\-ha/password\nThe group's password (not readable by others).\n")
	fmt.Fprintf(b, ".TP\n.I /var/lib/redis\\-ha\nThe state directory: redis' data, the generated redis.conf and sentinel.conf, the role history.\n")
	fmt.Fprintf(b, ".SH SEE ALSO\n.BR redis\\-ha.conf (5),\n.BR redis\\-server (1),\n.BR redis\\-sentinel (1),\n.BR systemctl (1),\n.BR journalctl (1)\n.PP\n/usr/share/doc/redis\\-ha\\-agent/README.md and its examples directory.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteManual5 writes redis-ha.conf(5) from the shipped configuration file:
// its header comment is the description, each "#[table]" a section, each
// "#key = default" a key with the comment lines above it.
func WriteManual5(w io.Writer, conf io.Reader, date string) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, ".TH REDIS-HA.CONF 5 %q %q \"File Formats\"\n", date, "redis-ha-agent "+Version)
	fmt.Fprintf(b, ".SH NAME\nredis\\-ha.conf \\- configuration of redis\\-ha\\-agent\n")
	fmt.Fprintf(b, ".SH SYNOPSIS\n/etc/redis\\-ha/redis\\-ha.conf, /etc/redis\\-ha/conf.d/*.conf\n")
	sc := bufio.NewScanner(conf)
	var comment []string
	header, keys := true, 0
	flushHeader := func() {
		fmt.Fprintf(b, ".SH DESCRIPTION\n")
		for _, l := range comment {
			if strings.HasPrefix(l, "  ") {
				fmt.Fprintf(b, ".RS\n.nf\n%s\n.fi\n.RE\n", roff(strings.TrimSpace(l)))
				continue
			}
			if l == "" {
				fmt.Fprintf(b, ".PP\n")
				continue
			}
			fmt.Fprintf(b, "%s\n", roff(l))
		}
		fmt.Fprintf(b, ".SH KEYS\n")
		comment, header = nil, false
	}
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "#[") && strings.HasSuffix(l, "]"):
			if header {
				flushHeader()
			}
			fmt.Fprintf(b, ".SS %s\n", roff(strings.TrimPrefix(l, "#")))
			comment = nil
		case header && strings.HasPrefix(l, "#"):
			comment = append(comment, strings.TrimPrefix(strings.TrimPrefix(l, "#"), " "))
		case header && l == "":
			if len(comment) > 0 {
				comment = append(comment, "")
			}
		case strings.HasPrefix(l, "# "):
			comment = append(comment, strings.TrimPrefix(l, "# "))
		case strings.HasPrefix(l, "#") && strings.Contains(l, " = "):
			key, def, _ := strings.Cut(strings.TrimPrefix(l, "#"), " = ")
			fmt.Fprintf(b, ".TP\n.B %s\n%s\n.br\nExample or default: %s\n", roff(key), roff(strings.Join(comment, "\n")), roff(def))
			comment = nil
			keys++
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("redis-ha.conf(5): %w", err)
	}
	if keys == 0 {
		return fmt.Errorf("redis-ha.conf(5): no key found in the configuration file")
	}
	fmt.Fprintf(b, ".SH SEE ALSO\n.BR redis\\-ha\\-agent (8)\n")
	_, err := io.WriteString(w, b.String())
	return err
}
