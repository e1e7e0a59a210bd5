#!/usr/bin/env bash
# Installs the Debian packages that building and testing coherence need, and
# only those that are missing, so a machine that has them stays untouched.
set -euo pipefail

packages=(
	make gcc g++ cmake pkg-config
	postgresql-15 postgresql-server-dev-15 postgresql-contrib
	libpq-dev libpqxx-dev nlohmann-json3-dev libgtest-dev
	libcli11-dev libhowardhinnant-date-dev uuid-dev
)
if [ "${1:-}" = --bench ]; then
	packages+=(gnuplot-nox)
fi

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "deps: installing ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
