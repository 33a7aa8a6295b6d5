#!/bin/sh
# Prints the package changelog, generated from git, as the chglog YAML that nfpm
# turns into /usr/share/doc/redis-ha-agent/changelog.Debian.gz (deb) and %changelog
# (rpm). One entry per release tag (v1.2.3) and one for the commits after the last
# tag, newest first; each lists its commits' subjects. Dates are commit dates, so
# the same commit always gives the same changelog.
#   changelog.sh VERSION-RELEASE MAINTAINER
set -e
version=$1
maintainer=$2
if [ -z "$version" ] || [ -z "$maintainer" ]; then
	echo "usage: changelog.sh VERSION-RELEASE MAINTAINER" >&2
	exit 2
fi

# yaml quotes s in single quotes, where only ' itself needs escaping (doubled).
yaml() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }

# entry prints the entry of the commits in range (git log syntax), tip first.
entry() {
	semver=$1 range=$2 tip=$3
	echo "- semver: $(yaml "$semver")"
	echo "  date: $(git log -1 --format=%cI "$tip")"
	echo "  packager: $(yaml "$maintainer")"
	echo "  deb:"
	echo "    urgency: medium"
	echo "    distributions: [stable]"
	echo "  changes:"
	# Subjects are cut at a word within 72 characters (not bytes): Debian changelog lines
	# stay under 80, and lintian checks the spelling of what is left.
	git log --no-merges --format='%h%x09%s' "$range" | while IFS='	' read -r sha subject; do
		subject=$(printf '%s' "$subject" | LC_ALL=C.UTF-8 sed -E '/^.{73,}$/ s/^(.{1,68}[^ ]) .*$/\1 .../')
		echo "    - commit: $sha"
		echo "      note: $(yaml "$subject")"
	done
}

tags=$(git tag --list 'v[0-9]*' --sort=-creatordate --merged HEAD)
last=$(echo "$tags" | head -n1)
if [ -z "$last" ]; then
	entry "$version" HEAD HEAD
	exit 0
fi
if [ "$(git rev-list --count "$last..HEAD")" -gt 0 ]; then
	entry "$version" "$last..HEAD" HEAD
fi
# Each tag's entry: its commits since the tag before it; its version is the tag's,
# released as -1 like the package.
prev=
for tag in $tags; do
	if [ -n "$prev" ]; then
		entry "$(echo "${prev#v}" | sed 's/-/~/g')-1" "$tag..$prev" "$prev"
	fi
	prev=$tag
done
entry "$(echo "${prev#v}" | sed 's/-/~/g')-1" "$prev" "$prev"
