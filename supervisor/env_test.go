package supervisor

import (
	"slices"
	"testing"
)

func TestChildEnv(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"empty", nil, []string{}},
		{"nothing to strip", []string{"PATH=/bin", "HOME=/root"}, []string{"PATH=/bin", "HOME=/root"}},
		{
			"systemd variables stripped",
			[]string{
				"PATH=/bin", "NOTIFY_SOCKET=/run/systemd/notify", "WATCHDOG_USEC=30000000",
				"WATCHDOG_PID=1", "LISTEN_PID=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=a:b", "HOME=/root",
			},
			[]string{"PATH=/bin", "HOME=/root"},
		},
		{
			"only exact names",
			[]string{"NOTIFY_SOCKET_X=1", "MY_WATCHDOG_USEC=1", "LISTEN_FDS_EXTRA=1", "WATCHDOG_OTHER=1"},
			[]string{"NOTIFY_SOCKET_X=1", "MY_WATCHDOG_USEC=1", "LISTEN_FDS_EXTRA=1", "WATCHDOG_OTHER=1"},
		},
		{"without value", []string{"NOTIFY_SOCKET", "KEEP"}, []string{"KEEP"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := childEnv(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("childEnv(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestStartEnv(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("WATCHDOG_PID", "1")
	t.Setenv("LISTEN_FDS", "1")
	t.Setenv("KEEP_ME", "yes")
	script := `env | grep -E '^(NOTIFY_SOCKET|WATCHDOG_PID|LISTEN_FDS|KEEP_ME|GIVEN)=' | sort`
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"inherited minus systemd", nil, []string{"KEEP_ME=yes"}},
		{"given verbatim", []string{"PATH=/usr/bin:/bin", "GIVEN=1", "NOTIFY_SOCKET=/x"}, []string{"GIVEN=1", "NOTIFY_SOCKET=/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := sh(script)
			spec.Env = tt.env
			p, err := Start(spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			waitDone(t, p)
			if got := p.Tail(); !slices.Equal(got, tt.want) {
				t.Errorf("child environment = %q, want %q", got, tt.want)
			}
		})
	}
}
