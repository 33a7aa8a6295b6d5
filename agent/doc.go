// Package agent is the composition root of redis-ha-agent: the command line,
// and the daemon's wiring. run starts redis and sentinel under the
// supervisor, then one loop on one ticker (loop.go) observes the local redis
// and sentinel, asks every sentinel where the master is, and carries out
// what the decisions of agent/ha say: fence or unfence, re-point a stray
// replica, take or release the virtual IP. The restart gate decides each
// start of redis in the supervisor's Next. Around the loop: hot reload
// (reload.go), sd_notify, the read-only HTTP API, and the control socket,
// whose switchover requests enter the loop through a channel.
//
// The configuration is agent/config's; every word to Redis and Sentinel goes
// through package sentinel. This is the only package that reads the
// environment, watches files, handles SIGHUP or knows about both the
// sentinel and the supervisor packages; it never exits the process (cmd
// does, with the code Main returns).
package agent
