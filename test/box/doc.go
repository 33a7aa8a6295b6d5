// Package box is the box bench: real Debian boxes booting systemd under
// systemd-nspawn, each in its own network namespace on one bridge, for
// end-to-end tests of the packaged agent.
//
// A Bench owns a switch namespace (a bridge, an nftables table for cuts), a
// client namespace and the boxes it boots; every box is an overlay on one
// cached Debian image. Everything a Bench creates is named with the prefix
// "rha-" and removed by its t.Cleanup, pass or fail; leftovers of a killed
// run are swept before the first Bench of a process starts (Sweep).
//
// It needs root, systemd-nspawn, debootstrap, nftables and iproute2 on the
// host, and nothing from the host's own network: boxes talk on 10.88.0.0/24
// inside namespaces the bench creates, and never reach outside them. It does
// not know about the agent; test/e2e does.
package box
