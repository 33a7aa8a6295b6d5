// Package supervisor runs generic child processes for the agent: it starts them in their own
// process group, logs their output line by line, stops them with SIGTERM then SIGKILL, reaps
// them, cleans up a stale copy left behind by a crashed agent (PidFile) and restarts them with
// jittered exponential backoff (Child).
//
// It owns fork/exec, signals, pid files and the restart policy, and nothing else. It must not
// know which program it runs or what that program's files mean: the caller hands it a Spec,
// and decides through Child.Next when and with what to start again. It never reads the
// environment except to strip the service manager's variables from a child's inherited
// environment, never exits the agent and keeps no package-level state. Linux only (/proc,
// waitid).
package supervisor
