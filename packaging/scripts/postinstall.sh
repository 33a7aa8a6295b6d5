#!/bin/sh
# redis-ha-agent postinst (deb: configure [old-version] | abort-remove) and %post (rpm: 1
# install, 2 upgrade). DPKG_ROOT, set by `dpkg --root` (and by the tests), prefixes paths.
set -e

unit=redis-ha-agent.service
root=${DPKG_ROOT:-}
hold=
state=$root/var/lib/redis-ha
password=$root/etc/redis-ha/password

case "$1" in
configure | abort-remove)
	# A reinstall after `remove` has an old version but must start over.
	if [ -z "$2" ] || [ -e "$state/.removed" ]; then action=install; else action=upgrade; fi ;;
1) action=install ;;
[0-9]*) action=upgrade ;;
*) exit 0 ;;
esac

say() { echo "redis-ha-agent: $*"; }
running() { [ -d "$root/run/systemd/system" ] && command -v systemctl >/dev/null; }
# Enabling and masking are symlinks: systemctl makes them without a running systemd too.
systemctl_links() {
	if command -v systemctl >/dev/null; then systemctl ${DPKG_ROOT:+--root="$DPKG_ROOT"} "$@"; fi
}

# redis-tools (deb) and redis (rpm) create the user before we run; this is the fallback.
if ! getent passwd redis >/dev/null; then
	if getent group redis >/dev/null; then group="--gid redis"; else group=--user-group; fi
	# shellcheck disable=SC2086 # $group is two words
	useradd --system $group --home-dir /var/lib/redis --no-create-home \
		--shell /usr/sbin/nologin --comment "Redis" redis
fi

# Debian's redis: where its data lives, and how redis-cli reaches it.
debian_conf=$root/etc/redis/redis.conf
debian() { [ -f "$debian_conf" ] && awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$debian_conf" | tr -d '"'; }
datadir=$(debian dir) || true
datadir=${datadir:-/var/lib/redis}

# debian_keys prints how many keys Debian's redis holds: the running server's count,
# else its data files' (redis-check-rdb reads a snapshot; an append-only file is data
# it cannot count, "unknown", as is a server that refuses to say).
debian_keys() {
	if running && systemctl is-active --quiet redis-server.service 2>/dev/null; then
		port=$(debian port) || true
		# The password goes through the environment, never argv.
		if out=$(REDISCLI_AUTH=$(debian requirepass) redis-cli -p "${port:-6379}" info keyspace 2>/dev/null) &&
			echo "$out" | grep -q '^# Keyspace'; then
			echo "$out" | sed -n 's/^db[0-9]*:keys=\([0-9]*\),.*/\1/p' | awk '{ n += $1 } END { print n + 0 }'
		else
			echo unknown
		fi
		return
	fi
	dir=$root$datadir
	for f in "$dir"/appendonly.aof "$dir"/appendonlydir/*.aof; do
		if [ -s "$f" ]; then echo unknown && return; fi
	done
	n=0
	for f in "$dir"/dump.rdb "$dir"/appendonlydir/*.base.rdb; do
		[ -f "$f" ] || continue
		k=$(redis-check-rdb "$f" 2>/dev/null | sed -n 's/.*\[info\] \([0-9]*\) keys read.*/\1/p')
		if [ -z "$k" ]; then echo unknown && return; fi
		n=$((n + k))
	done
	echo "$n"
}

# Redis writes its data and sentinel its config here as redis; the agent (root) reads it.
mkdir -p "$state"
chmod 0750 "$state"
chown redis:redis "$state"

if [ "$action" = install ]; then
	rm -f "$state/.removed"

	# Only printable ASCII without spaces or quotes survives sentinel's config rewrite.
	if [ ! -e "$password" ]; then
		tmp=$password.tmp
		(umask 077 && LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 >"$tmp" && echo >>"$tmp")
		chown root:redis "$tmp"
		chmod 0640 "$tmp" # kept when the user later writes their own password into it
		mv "$tmp" "$password"
		say "wrote a random password to /etc/redis-ha/password; on a group of boxes, write the same password on every box"
	fi

	units=
	for u in redis-server.service redis.service redis-sentinel.service; do
		[ -f "$root/lib/systemd/system/$u" ] || [ -f "$root/usr/lib/systemd/system/$u" ] || continue
		[ "$(readlink "$root/etc/systemd/system/$u" 2>/dev/null)" != /dev/null ] || continue
		units="$units $u"
	done

	# How the distribution's units were found, for purge to put them back so: the first
	# install's, kept across remove and reinstall.
	found=$state/.debian-units-found
	if [ ! -e "$found" ]; then
		for u in $units; do
			enabled=$(systemctl_links is-enabled "$u" 2>/dev/null) || true
			active=inactive
			if running; then active=$(systemctl is-active "$u" 2>/dev/null) || true; fi
			echo "$u ${enabled:-unknown} ${active:-inactive}"
		done >"$found"
	fi

	# Debian's redis may hold a dataset. Taking its port with an empty redis would hide
	# it: then neither it nor redis-ha-agent is touched, and the way on is said. Masked
	# (by an earlier install, or the admin), it is no longer the box's redis.
	keys=0
	case " $units " in *" redis-server.service "*) keys=$(debian_keys) ;; esac
	if [ "$keys" != 0 ]; then
		hold=1
		[ "$keys" = unknown ] && keys="data redis-ha-agent could not count" || keys="$keys keys"
		say "redis-server holds $keys ($datadir). It is left as it is, and redis-ha-agent"
		say "  is left disabled and stopped: an empty redis must not take its place unseen."
		say "  To make this data the group's, on the bootstrap primary (or a single box):"
		say "    systemctl disable --now$units"
		say "    redis-ha-agent adopt-data $datadir"
		say "    systemctl enable --now $unit"
		say "  To start empty instead: systemctl disable --now$units; systemctl enable --now $unit"
	else
		# The distribution's own redis and sentinel units would hold ports 6379 and 26379.
		# Masks already there are the admin's and are left alone; ours are recorded so
		# that purge undoes exactly those.
		taken=
		for u in $units; do
			if running; then systemctl stop "$u" 2>/dev/null || true; fi
			systemctl_links --quiet disable "$u" 2>/dev/null || true
			if systemctl_links --quiet mask "$u"; then
				echo "$u" >>"$state/.masked-by-redis-ha"
				taken="$taken $u"
			else
				say "could not mask $u: keep it stopped, it holds the ports redis-ha-agent needs"
			fi
		done
		if [ -n "$taken" ]; then
			say "stopped, disabled and masked$taken: redis-ha-agent runs redis and sentinel itself; purging redis-ha-agent puts them back as they were"
		fi
	fi
fi

if running; then systemctl daemon-reload; fi

if [ "$action" = install ] && [ -n "$hold" ]; then
	: # left disabled: see above
elif [ "$action" = install ]; then
	systemctl_links --quiet enable "$unit"
	if running; then
		if systemctl start "$unit"; then
			say "started $unit: a single redis on 127.0.0.1:6379 until a group is configured in /etc/redis-ha/conf.d/"
		else
			say "$unit did not start: see journalctl -u $unit"
		fi
	fi
elif running; then
	systemctl try-restart "$unit" || say "$unit did not restart: see journalctl -u $unit"
fi
exit 0
