#!/bin/sh
# redis-ha-agent postrm (deb: remove | purge | upgrade | failed-upgrade | abort-* |
# disappear) and %postun (rpm: 0 erase, 1 upgrade). rpm has no purge: an erase keeps the
# data and the password like a deb remove, but gives the distribution's redis units back.
# DPKG_ROOT, set by `dpkg --root` (and by the tests), prefixes paths.
set -e

unit=redis-ha-agent.service
root=${DPKG_ROOT:-}
state=$root/var/lib/redis-ha
masked=$state/.masked-by-redis-ha
found=$state/.debian-units-found

case "$1" in
remove | purge) format=deb ;;
0) format=rpm ;;
*) exit 0 ;;
esac

say() { echo "redis-ha-agent: $*"; }
running() { [ -d "$root/run/systemd/system" ] && command -v systemctl >/dev/null; }

# Masks and enablings are symlinks, which systemctl changes without a running systemd
# too. The distribution's redis units were masked with systemctl, not deb-systemd-helper
# (postinstall.sh says why), so they are unmasked the same way.
systemctl_links() { systemctl ${DPKG_ROOT:+--root="$DPKG_ROOT"} "$@"; }
# invoke starts a unit (deb: through policy-rc.d), as postinst stopped it.
invoke() {
	if [ "$format" = deb ]; then deb-systemd-invoke "$@"; else systemctl "$@"; fi
}

# Unmask what postinst masked, unless the admin has replaced our mask since; then put
# the distribution's units back as the first install found them: enabled if they were,
# started if they ran. An install older than that record leaves them disabled.
unmask() {
	if [ -f "$masked" ] && command -v systemctl >/dev/null; then
		while read -r u; do
			[ "$(readlink "$root/etc/systemd/system/$u" 2>/dev/null)" = /dev/null ] || continue
			if systemctl_links --quiet unmask "$u"; then
				if [ -f "$found" ]; then say "unmasked $u"; else
					say "unmasked $u; it stays disabled: systemctl enable --now $u to use it again"
				fi
			fi
		done <"$masked"
	fi
	rm -f "$masked"
	if [ -f "$found" ] && command -v systemctl >/dev/null; then
		while read -r u enabled active; do
			# Masked by the admin since: theirs.
			[ "$(readlink "$root/etc/systemd/system/$u" 2>/dev/null)" != /dev/null ] || continue
			if [ "$enabled" = enabled ] && systemctl_links --quiet enable "$u"; then
				say "enabled $u again, as redis-ha-agent found it"
			fi
			if [ "$active" != active ] || ! running; then continue; fi
			if [ "$format" = deb ] && [ "$enabled" != enabled ]; then
				# deb-systemd-invoke starts enabled units only.
				say "$u ran, though disabled, when redis-ha-agent was installed: systemctl start $u to run it again"
			elif invoke start "$u"; then
				say "started $u again, as redis-ha-agent found it running"
			fi
		done <"$found"
	fi
	rm -f "$found"
}

case "$1" in
remove)
	if [ -f "$masked" ]; then
		units=$(tr '\n' ' ' <"$masked")
		say "still masked until redis-ha-agent is purged: ${units% }"
	fi
	;;
purge)
	# deb-systemd-helper's record of our unit (prerm disabled it already).
	if command -v deb-systemd-helper >/dev/null; then deb-systemd-helper purge "$unit" || true; fi
	unmask
	# dpkg has removed the conffiles; these are the files postinst made.
	if [ -d "$state" ]; then
		rm -rf "$state"
		say "removed /var/lib/redis-ha (redis data, sentinel state, role history)"
	fi
	rm -f "$root/etc/redis-ha/password"
	rmdir "$root/etc/redis-ha/conf.d" "$root/etc/redis-ha" 2>/dev/null || true
	;;
0)
	unmask
	rm -f "$state/.removed"
	say "kept /var/lib/redis-ha and /etc/redis-ha/password; remove them by hand if no longer needed"
	;;
esac

if running; then systemctl daemon-reload || true; fi
exit 0
