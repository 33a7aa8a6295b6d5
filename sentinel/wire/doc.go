// Package wire holds the values Redis and Sentinel speak of and the agent
// reasons about: addresses, roles, and a sentinel's answer to "where is the
// master". It is pure (no I/O, no clock) so that the agent's decisions
// (agent/ha) can use the same types as the code that talks to the servers
// (sentinel) without depending on it.
package wire
