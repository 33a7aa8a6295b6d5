#!/bin/sh
# Prints the package version of the checked-out commit. Valid for both dpkg and rpm,
# it grows along history, so a package built from a later commit upgrades one built
# from an earlier commit:
#   at tag v1.2.3               1.2.3
#   4 commits after v1.2.3      1.2.3+4.gabc1234
#   no tag yet, 12 commits      0.0.0+12.gabc1234  (as if v0.0.0 tagged the root)
#   uncommitted changes         ....dirty          (sorts after the same commit clean)
# A tag's pre-release (v1.3.0-rc1) becomes 1.3.0~rc1, which sorts before 1.3.0.
set -e
if desc=$(git describe --tags --long --dirty --abbrev=7 --match 'v[0-9]*' 2>/dev/null); then
	# v1.2.3-4-gabc1234[-dirty]
	case $desc in *-dirty) dirty=.dirty desc=${desc%-dirty} ;; *) dirty= ;; esac
	sha=${desc##*-}
	desc=${desc%-*}
	n=${desc##*-}
	base=$(echo "${desc%-*}" | sed 's/^v//; s/-/~/g')
else
	desc=$(git describe --always --dirty --abbrev=7)
	case $desc in *-dirty) dirty=.dirty desc=${desc%-dirty} ;; *) dirty= ;; esac
	sha=g$desc
	n=$(git rev-list --count HEAD)
	base=0.0.0
fi
if [ "$n" = 0 ] && [ -z "$dirty" ]; then
	echo "$base"
else
	echo "$base+$n.$sha$dirty"
fi
