#!/bin/sh
# redis-ha-agent prerm (deb: remove | upgrade | deconfigure | failed-upgrade) and %preun
# (rpm: 0 erase, 1 upgrade). On upgrade the agent keeps running: postinst restarts it.
# DPKG_ROOT, set by `dpkg --root` (and by the tests), prefixes paths. deb acts on the
# unit through deb-systemd-helper and deb-systemd-invoke, rpm through systemctl
# (postinstall.sh says why).
set -e

unit=redis-ha-agent.service
root=${DPKG_ROOT:-}

case "$1" in
remove) format=deb ;;
0) format=rpm ;;
*) exit 0 ;;
esac

command -v systemctl >/dev/null || exit 0
systemctl_links() { systemctl ${DPKG_ROOT:+--root="$DPKG_ROOT"} "$@"; }

# leftovers stops what still runs in the unit's cgroup once the unit is stopped.
# KillMode=process lets redis and sentinel outlive the agent, so that an agent crash
# is no failover; but when the agent is already dead at removal (it crashed and was
# not restarted, or refused an invalid configuration at start), stop has nothing to
# stop and they would go on serving from a removed package. SIGTERM first, which
# redis answers by persisting its data, SIGKILL after the unit's TimeoutStopSec.
leftovers() {
	cg=$(systemctl show -P ControlGroup "$unit" 2>/dev/null) || cg=
	[ -n "$cg" ] || cg=/system.slice/$unit
	pids=
	# cgroup v2, then the v1 hierarchies that systemd's own cgroup lives in.
	for d in "$root/sys/fs/cgroup$cg" "$root/sys/fs/cgroup/unified$cg" "$root/sys/fs/cgroup/systemd$cg"; do
		if [ -r "$d/cgroup.procs" ]; then
			pids=$(cat "$d/cgroup.procs")
			break
		fi
	done
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086 # one pid a word
	echo "redis-ha-agent: stopping what the dead agent left running: pids" $pids
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null || true
	i=0
	while [ $i -lt 90 ]; do
		alive=
		for p in $pids; do
			if kill -0 "$p" 2>/dev/null; then alive="$alive $p"; fi
		done
		[ -n "$alive" ] || return 0
		sleep 1
		i=$((i + 1))
	done
	# shellcheck disable=SC2086
	kill -KILL $alive 2>/dev/null || true
}

if [ -d "$root/run/systemd/system" ]; then
	# The agent stops sentinel, then redis, before it exits.
	if [ "$format" = deb ]; then deb-systemd-invoke stop "$unit" || true; else systemctl stop "$unit" || true; fi
	leftovers
fi
# rpm: a symlink, which systemctl removes without a running systemd too.
if [ "$format" = deb ]; then deb-systemd-helper disable "$unit" || true; else
	systemctl_links --quiet disable "$unit" || true
fi
# Tells a later reinstall (deb: configure with an old version) to enable and start again.
if [ -d "$root/var/lib/redis-ha" ]; then : >"$root/var/lib/redis-ha/.removed"; fi
exit 0
