package agent

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifier speaks the sd_notify protocol to systemd (Type=notify). Without
// NOTIFY_SOCKET (a shell, a test) every call is a no-op. Only the agent
// notifies: children never see NOTIFY_SOCKET (the supervisor strips it).
type notifier struct {
	log *slog.Logger

	mu      sync.Mutex
	status  string
	failing bool // last send failed: log once, not every second
}

func (s *notifier) send(fields ...string) {
	_, err := daemon.SdNotify(false, strings.Join(fields, "\n"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil && !s.failing {
		s.log.Warn("sd_notify", "err", err)
	}
	s.failing = err != nil
}

// setStatus sends STATUS= when the line changed.
func (s *notifier) setStatus(status string) {
	s.mu.Lock()
	same := status == s.status
	s.status = status
	s.mu.Unlock()
	if !same {
		s.send("STATUS=" + status)
	}
}

// ready says start-up (or a reload) is complete.
func (s *notifier) ready(status string) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
	s.send(daemon.SdNotifyReady, "STATUS="+status)
}

// reloading must carry MONOTONIC_USEC so that `systemctl reload` waits for
// the READY=1 that ends it (systemd.service(5), Type=notify-reload).
func (s *notifier) reloading() {
	s.send(daemon.SdNotifyReloading, strings.TrimSuffix(daemon.SdNotifyMonotonicUsec(), "\n"), "STATUS=reloading configuration")
}

// extendStart asks systemd for more start-up time while a large dataset
// loads, instead of a TimeoutStartSec that must guess the dataset size.
func (s *notifier) extendStart(d time.Duration, status string) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
	s.send(fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", d.Microseconds()), "STATUS="+status)
}

func (s *notifier) stopping() { s.send(daemon.SdNotifyStopping, "STATUS=stopping") }
func (s *notifier) watchdog() { s.send(daemon.SdNotifyWatchdog) }

// watchdogEvery is how often to ping the watchdog: half its timeout, or 0
// when systemd does not watch us.
func watchdogEvery() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}
