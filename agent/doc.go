// Package agent is the composition root of redis-ha-agent: the command line,
// the configuration model and its validation, the control loop that decides
// this box's role and drives redis and sentinel through the supervisor,
// hot reload, and status reporting.
//
// It is the only package that reads the environment, watches files, handles
// SIGHUP or knows about both the sentinel and the supervisor packages; it never
// exits the process (cmd does, with the code Main returns).
package agent
