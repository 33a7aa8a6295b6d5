package sentinel

import "strings"

// OwnedRedisKey reports whether key is a redis.conf directive the agent
// renders itself. A user setting one through redis.settings would silently
// fight the agent (a second "port", a "replicaof" that Sentinel then
// overrides), so config validation refuses them and RenderRedis drops them.
func OwnedRedisKey(key string) bool {
	switch strings.ToLower(key) {
	case "port", "bind", "dir", "daemonize", "supervised",
		"requirepass", "masterauth", "masteruser", "replicaof", "slaveof",
		"appendonly", "appendfilename", "appenddirname", "save", "dbfilename",
		"replica-announce-ip", "replica-announce-port", "slave-announce-ip",
		"slave-announce-port", "replica-priority", "slave-priority",
		"protected-mode", "logfile", "pidfile", "include", "unixsocket",
		"min-replicas-to-write", "min-replicas-max-lag", "min-slaves-to-write",
		"min-slaves-max-lag", "rename-command":
		return true
	}
	return false
}
