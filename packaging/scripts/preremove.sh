#!/bin/sh
# redis-ha-agent prerm (deb: remove | upgrade | deconfigure | failed-upgrade) and %preun
# (rpm: 0 erase, 1 upgrade). On upgrade the agent keeps running: postinst restarts it.
# DPKG_ROOT, set by `dpkg --root` (and by the tests), prefixes paths.
set -e

unit=redis-ha-agent.service
root=${DPKG_ROOT:-}

case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac

command -v systemctl >/dev/null || exit 0
# The agent stops sentinel, then redis, before it exits.
if [ -d "$root/run/systemd/system" ]; then systemctl stop "$unit" || true; fi
systemctl ${DPKG_ROOT:+--root="$DPKG_ROOT"} --quiet disable "$unit" || true
# Tells a later reinstall (deb: configure with an old version) to enable and start again.
if [ -d "$root/var/lib/redis-ha" ]; then : >"$root/var/lib/redis-ha/.removed"; fi
exit 0
