// Package config owns redis-ha-agent's configuration: the model (Config),
// Load, which reads the base file and its conf.d drop-ins strictly, walking
// each file's syntax tree so that every unknown key and wrong type is
// reported at its file and line, then validates the merged result as a pure
// function of it and of facts gathered from the machine up front, and the
// values derived from it (the group's sentinels, this box's addresses).
//
// It reads files and asks the machine which addresses are its own; it
// never writes, listens or starts anything.
package config
