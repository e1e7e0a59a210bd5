#!/usr/bin/env bash
# Installs the Debian packages that building and testing coherence need, and
# only those that are missing, so a machine that has them stays untouched.
#
#   scripts/deps.sh [--bench | --deb | --matrix]
#
# The PostgreSQL major is the one this Debian release ships (15 on Debian 12,
# 17 on 13, 18 on testing), or PG_MAJOR when set. --bench adds gnuplot,
# --deb the packaging tools, --matrix what make test-matrix runs on the host.
set -euo pipefail

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
apt_get() {
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@"
}

# The major that the distribution's "postgresql" package depends on; reads
# the package lists once first when the machine has none yet.
distribution_pg_major() {
	local major
	major=$(apt-cache depends postgresql 2>/dev/null | sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | sed -n 1p)
	if [ -z "$major" ]; then
		apt_get update -qq
		major=$(apt-cache depends postgresql | sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | sed -n 1p)
	fi
	[ -n "$major" ] || { echo "deps: no postgresql package in this machine's apt sources" >&2; exit 1; }
	echo "$major"
}
case "${1:-}" in
--matrix) packages=(debootstrap util-linux git) ;;
*)
	pg_major=${PG_MAJOR:-$(distribution_pg_major)}
	packages=(
		make gcc g++ cmake pkg-config
		"postgresql-$pg_major" "postgresql-server-dev-$pg_major" postgresql-contrib
		libpq-dev libpqxx-dev nlohmann-json3-dev libgtest-dev
		libcli11-dev libhowardhinnant-date-dev uuid-dev
	)
	case "${1:-}" in
	--bench) packages+=(gnuplot-nox) ;;
	--deb) packages+=(git build-essential dpkg-dev debhelper postgresql-server-dev-all) ;;
	esac
	;;
esac

# Installed, or provided by an installed package (Debian 13 makes
# postgresql-contrib a virtual package that "postgresql" provides).
installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep "ok installed" >/dev/null ||
		dpkg-query -W -f='${db:Status-Abbrev} ${Provides}\n' | awk '$1 == "ii"' | grep -E "[ ,]$1( |,|$)" >/dev/null
}

missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
apt_get update -qq
apt_get install -y -qq --no-install-recommends "${missing[@]}"
