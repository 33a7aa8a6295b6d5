#!/bin/sh
# redis-ha-agent postinst (deb: configure [old-version] | abort-remove) and %post (rpm: 1
# install, 2 upgrade). DPKG_ROOT, set by `dpkg --root` (and by the tests), prefixes paths.
#
# One script for both formats: all it decides (the user, the password, taking over the
# distribution's redis units) is the same; only the tool that acts on our own unit
# differs. On deb that is deb-systemd-helper and deb-systemd-invoke, which keep dpkg's
# record of the admin's enable/disable choice and honour policy-rc.d; on rpm it is
# systemctl, as rpm's own %systemd_post does.
set -e

unit=redis-ha-agent.service
root=${DPKG_ROOT:-}
state=$root/var/lib/redis-ha
password=$root/etc/redis-ha/password

case "$1" in
configure | abort-remove)
	format=deb
	# A reinstall after `remove` has an old version but must start over.
	if [ -z "$2" ] || [ -e "$state/.removed" ]; then action=install; else action=upgrade; fi ;;
1) format=rpm action=install ;;
[0-9]*) format=rpm action=upgrade ;;
*) exit 0 ;;
esac

say() { echo "redis-ha-agent: $*"; }
running() { [ -d "$root/run/systemd/system" ] && command -v systemctl >/dev/null; }
# Enabling and masking are symlinks: systemctl makes them without a running systemd too.
# Used for the distribution's redis units only, never for ours: a mask made by
# deb-systemd-helper would be lifted by redis-server's own postinst on its next upgrade
# (it unmasks what deb-systemd-helper masked), starting Debian's redis on our ports.
systemctl_links() {
	if command -v systemctl >/dev/null; then systemctl ${DPKG_ROOT:+--root="$DPKG_ROOT"} "$@"; fi
}
# invoke starts, stops or restarts a unit (deb: through policy-rc.d).
invoke() {
	if [ "$format" = deb ]; then deb-systemd-invoke "$@"; else systemctl "$@"; fi
}

# The user redis and sentinel run as: redis, created by redis-tools (deb) and redis
# (rpm) before we run, or valkey on a box with Valkey alone (valkey-tools). The agent
# itself picks valkey for Valkey where that user exists, and hands the state
# directory over at its start.
user=redis
if ! getent passwd redis >/dev/null; then
	if getent passwd valkey >/dev/null; then
		user=valkey
	else
		if getent group redis >/dev/null; then group="--gid redis"; else group=--user-group; fi
		# shellcheck disable=SC2086 # $group is two words
		useradd --system $group --home-dir /var/lib/redis --no-create-home \
			--shell /usr/sbin/nologin --comment "Redis" redis
	fi
fi

# Redis writes its data and sentinel its config here; the agent (root) reads it.
mkdir -p "$state"
chmod 0750 "$state"
chown "$user:$user" "$state"

if [ "$action" = install ]; then
	rm -f "$state/.removed"

	# Only printable ASCII without spaces or quotes survives sentinel's config rewrite.
	if [ ! -e "$password" ]; then
		tmp=$password.tmp
		(umask 077 && LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 >"$tmp" && echo >>"$tmp")
		chown "root:$user" "$tmp"
		chmod 0640 "$tmp" # kept when the user later writes their own password into it
		mv "$tmp" "$password"
		say "wrote a random password to /etc/redis-ha/password; on a group of boxes, write the same password on every box"
	fi

	# The distribution's own redis (or valkey) and sentinel units would hold ports 6379
	# and 26379. Masks already there are the admin's and are left alone; ours are
	# recorded so that purge undoes exactly those.
	taken=
	for u in redis-server.service redis.service redis-sentinel.service valkey-server.service valkey-sentinel.service; do
		[ -f "$root/lib/systemd/system/$u" ] || [ -f "$root/usr/lib/systemd/system/$u" ] || continue
		[ "$(readlink "$root/etc/systemd/system/$u" 2>/dev/null)" != /dev/null ] || continue
		if running; then invoke stop "$u" 2>/dev/null || true; fi
		systemctl_links --quiet disable "$u" 2>/dev/null || true
		if systemctl_links --quiet mask "$u"; then
			echo "$u" >>"$state/.masked-by-redis-ha"
			taken="$taken $u"
		else
			say "could not mask $u: keep it stopped, it holds the ports redis-ha-agent needs"
		fi
	done
	if [ -n "$taken" ]; then
		undo="purging redis-ha-agent"
		if [ "$format" = rpm ]; then undo="erasing redis-ha-agent"; fi
		say "stopped, disabled and masked$taken: redis-ha-agent runs redis and sentinel itself; $undo unmasks them"
	fi
fi

if running; then systemctl daemon-reload; fi

# Enabled on install; on upgrade the admin's choice stands (deb: deb-systemd-helper
# refreshes the links of an enabled unit and only records a disabled one).
case $format-$action in
deb-install) deb-systemd-helper unmask "$unit" && deb-systemd-helper enable "$unit" ;;
deb-upgrade)
	deb-systemd-helper unmask "$unit"
	if deb-systemd-helper --quiet was-enabled "$unit"; then
		deb-systemd-helper enable "$unit"
	else
		deb-systemd-helper update-state "$unit"
	fi
	;;
rpm-install) systemctl_links --quiet enable "$unit" ;;
esac

if ! running; then
	exit 0
elif [ "$action" = install ]; then
	if invoke start "$unit"; then
		say "started $unit: a single redis on 127.0.0.1:6379 until a group is configured in /etc/redis-ha/conf.d/"
	else
		say "$unit did not start: see journalctl -u $unit"
	fi
else
	invoke try-restart "$unit" || say "$unit did not restart: see journalctl -u $unit"
fi
exit 0
