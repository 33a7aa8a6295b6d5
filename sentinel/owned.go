package sentinel

import "strings"

// OwnedRedisKey reports whether key is a redis.conf directive the agent
// renders itself, or one that would undo what it guarantees. A user setting
// one through redis.settings would silently fight the agent (a second
// "port", a "replicaof" that Sentinel then overrides) or switch its access
// control off ("user default on nopass", an aclfile, a module, the DEBUG
// command), so config validation refuses them and RenderRedis drops them.
func OwnedRedisKey(key string) bool {
	k := strings.ToLower(key)
	// enable-debug-command, enable-module-command, enable-protected-configs:
	// each hands a client what only the redis user's files should decide.
	if strings.HasPrefix(k, "enable-") {
		return true
	}
	switch k {
	case "port", "bind", "dir", "daemonize", "supervised",
		"requirepass", "masterauth", "masteruser", "replicaof", "slaveof",
		"appendonly", "appendfilename", "appenddirname", "save", "dbfilename",
		"replica-announce-ip", "replica-announce-port", "slave-announce-ip",
		"slave-announce-port", "replica-priority", "slave-priority",
		"protected-mode", "logfile", "pidfile", "include", "unixsocket",
		"min-replicas-to-write", "min-replicas-max-lag", "min-slaves-to-write",
		"min-slaves-max-lag", "rename-command",
		// Access control: the password file and auth.acl decide it.
		"user", "aclfile", "loadmodule",
		// TLS: rendered from tls.*; the ciphers and protocols stay the user's.
		"tls-port", "tls-cert-file", "tls-key-file", "tls-key-file-pass", "tls-client-cert-file",
		"tls-client-key-file", "tls-client-key-file-pass", "tls-ca-cert-file", "tls-ca-cert-dir",
		"tls-auth-clients", "tls-replication", "tls-cluster":
		return true
	}
	return false
}
