package agent

import "testing"

func TestJobType(t *testing.T) {
	const unit = "redis-ha-agent.service"
	tests := []struct{ out, want string }{
		{"", ""},
		{"2263 redis-ha-agent.service restart running\n", "restart"},
		{"  12 redis-ha-agent.service stop    running\n", "stop"},
		{"7 other.service restart waiting\n2264 redis-ha-agent.service stop running\n", "stop"},
		{"7 other.service restart waiting\n", ""},
	}
	for _, tt := range tests {
		if got := jobType([]byte(tt.out), unit); got != tt.want {
			t.Errorf("jobType(%q) = %q, want %q", tt.out, got, tt.want)
		}
	}
}
