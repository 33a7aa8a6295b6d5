package agent

import "testing"

func TestConfigRelevant(t *testing.T) {
	const base = "/etc/redis-ha/redis-ha.conf"
	tests := []struct {
		name string
		want bool
	}{
		{base, true},
		{"/etc/redis-ha/conf.d", true},
		{"/etc/redis-ha/conf.d/10-cluster.conf", true},
		{"/etc/redis-ha/conf.d/.10-cluster.conf.swp", true}, // re-read; the loader ignores it
		{"/etc/redis-ha/password", true},
		{"/etc/redis-ha/agent.log", false},
		{"/etc/redis-ha/data", false},
		{"/etc/redis-ha/redis-ha.conf.dpkg-new", false},
	}
	for _, tt := range tests {
		if got := configRelevant(base, tt.name); got != tt.want {
			t.Errorf("configRelevant(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
