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
hold=
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

# The distribution's redis (or valkey) server: where its data lives, and how its cli
# reaches it. $1 is redis or valkey; Debian names their files alike.
server_conf() { c=$root/etc/$1/$1.conf && [ -f "$c" ] && awk -v k="$2" '$1 == k { v = $2 } END { print v }' "$c" | tr -d '"'; }
server_dir() {
	d=$(server_conf "$1" dir) || true
	echo "${d:-/var/lib/$1}"
}

# server_keys prints how many keys the distribution's $1 (redis or valkey) holds: the
# running server's count, else its data files' ($1-check-rdb reads a snapshot; an
# append-only file is data it cannot count, "unknown", as is a server that refuses to
# say).
server_keys() {
	if running && systemctl is-active --quiet "$1-server.service" 2>/dev/null; then
		port=$(server_conf "$1" port) || true
		# The password goes through the environment, never argv (valkey-cli reads
		# either name).
		pass=$(server_conf "$1" requirepass) || true
		if out=$(REDISCLI_AUTH=$pass VALKEYCLI_AUTH=$pass "$1-cli" -p "${port:-6379}" info keyspace 2>/dev/null) &&
			echo "$out" | grep -q '^# Keyspace'; then
			echo "$out" | sed -n 's/^db[0-9]*:keys=\([0-9]*\),.*/\1/p' | awk '{ n += $1 } END { print n + 0 }'
		else
			echo unknown
		fi
		return
	fi
	dir=$root$(server_dir "$1")
	for f in "$dir"/appendonly.aof "$dir"/appendonlydir/*.aof; do
		if [ -s "$f" ]; then echo unknown && return; fi
	done
	n=0
	for f in "$dir"/dump.rdb "$dir"/appendonlydir/*.base.rdb; do
		[ -f "$f" ] || continue
		k=$("$1-check-rdb" "$f" 2>/dev/null | sed -n 's/.*\[info\] \([0-9]*\) keys read.*/\1/p')
		if [ -z "$k" ]; then echo unknown && return; fi
		n=$((n + k))
	done
	echo "$n"
}

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

	units=
	for u in redis-server.service redis.service redis-sentinel.service valkey-server.service valkey-sentinel.service; do
		[ -f "$root/lib/systemd/system/$u" ] || [ -f "$root/usr/lib/systemd/system/$u" ] || continue
		[ "$(readlink "$root/etc/systemd/system/$u" 2>/dev/null)" != /dev/null ] || continue
		units="$units $u"
	done

	# How the distribution's units were found, for purge (rpm: erase) to put them back
	# so: the first install's, kept across remove and reinstall.
	found=$state/.debian-units-found
	if [ ! -e "$found" ]; then
		for u in $units; do
			enabled=$(systemctl_links is-enabled "$u" 2>/dev/null) || true
			active=inactive
			if running; then active=$(systemctl is-active "$u" 2>/dev/null) || true; fi
			echo "$u ${enabled:-unknown} ${active:-inactive}"
		done >"$found"
	fi

	# The distribution's redis or valkey may hold a dataset. Taking its port with an
	# empty redis would hide it: then neither it nor redis-ha-agent is touched, and the
	# way on is said. Masked (by an earlier install, or the admin), it is no longer the
	# box's server.
	for server in redis valkey; do
		case " $units " in *" $server-server.service "*) ;; *) continue ;; esac
		keys=$(server_keys "$server")
		[ "$keys" != 0 ] || continue
		hold=1
		[ "$keys" = unknown ] && keys="data redis-ha-agent could not count" || keys="$keys keys"
		datadir=$(server_dir "$server")
		say "$server-server holds $keys ($datadir). It is left as it is, and redis-ha-agent"
		say "  is left disabled and stopped: an empty redis must not take its place unseen."
		say "  To make this data the group's, on the bootstrap primary (or a single box):"
		say "    systemctl disable --now$units"
		say "    redis-ha-agent adopt-data $datadir"
		say "    systemctl enable --now $unit"
		say "  To start empty instead, skip adopt-data."
	done
	if [ -z "$hold" ]; then
		# The distribution's own redis (or valkey) and sentinel units would hold ports
		# 6379 and 26379. Masks already there are the admin's and are left alone; ours
		# are recorded so that purge undoes exactly those.
		taken=
		for u in $units; do
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
			undo="purging redis-ha-agent puts them back"
			if [ "$format" = rpm ]; then undo="erasing redis-ha-agent puts them back"; fi
			say "stopped, disabled and masked$taken: redis-ha-agent runs redis and sentinel itself; $undo as they were"
		fi
	fi
fi

if running; then systemctl daemon-reload; fi

# Enabled on install, unless held above; on upgrade the admin's choice stands (deb:
# deb-systemd-helper refreshes the links of an enabled unit and only records a disabled
# one, as it does for a held install, so that the admin's later enable is kept).
case $format-$action in
deb-install)
	deb-systemd-helper unmask "$unit"
	if [ -n "$hold" ]; then
		deb-systemd-helper update-state "$unit"
	else
		deb-systemd-helper enable "$unit"
	fi
	;;
deb-upgrade)
	deb-systemd-helper unmask "$unit"
	if deb-systemd-helper --quiet was-enabled "$unit"; then
		deb-systemd-helper enable "$unit"
	else
		deb-systemd-helper update-state "$unit"
	fi
	;;
rpm-install) if [ -z "$hold" ]; then systemctl_links --quiet enable "$unit"; fi ;;
esac

if ! running; then
	exit 0
elif [ "$action" = install ] && [ -n "$hold" ]; then
	: # left disabled and stopped: see above
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
