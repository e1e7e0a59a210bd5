#!/usr/bin/env bash
# The Debian package test, run as root on a clean Debian (make test-matrix
# runs it in a fresh minbase chroot, from the source tree's top):
#
#   scripts/deb-test.sh DIR       DIR holds the .deb files of make deb
#
# Installs the packages with apt-get, creates a cluster with Debian's
# pg_createcluster, runs CREATE EXTENSION coherence and the walkthrough
# (sql/walkthrough.sql, compared with expected/walkthrough.out), drives the
# CLI, builds the C++ walkthrough example against the installed library with
# pkg-config and with CMake, then removes and purges everything it installed
# and checks that the file system is as it was: no file of the packages, and
# none they created, is left behind.
set -euo pipefail
debs=$(cd "$1" && pwd)
export DEBIAN_FRONTEND=noninteractive
packages=($(for d in "$debs"/*.deb; do dpkg-deb -f "$d" Package; done))
work=$(mktemp -d /tmp/deb-test.XXXXXX)
chmod 755 "$work"
echo "deb-test: ${packages[*]}"

# Every file and directory outside the volatile places, with its type.
snapshot() {
	find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o -path /src \
		-o -path /var/cache -o -path /var/lib/apt/lists -o -path /var/log -o -path /root \) -prune \
		-o -printf '%y %p\n' | sort
}

# A free TCP port on 127.0.0.1 for the cluster (chroots share the network).
free_port() {
	local port=$((20000 + RANDOM % 20000))
	while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
	echo "$port"
}

# The compiler and build tools the example needs are not part of the test.
apt-get update -qq
apt-get install -y -qq g++ make cmake pkgconf >/dev/null
snapshot >"$work/before"

apt-get install -y -qq "$debs"/*.deb >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log"; exit 1; }
for p in "${packages[@]}"; do
	dpkg-query -L "$p"
done | sort -u >"$work/package-paths"
major=$(ls /usr/lib/postgresql)
echo "deb-test: installed, PostgreSQL $major, $(grep -c . "$work/package-paths") paths in the packages"

# The extension in a Debian cluster, with the walkthrough's answers.
port=$(free_port)
pg_createcluster -p "$port" "$major" test >/dev/null
pg_ctlcluster "$major" test start
as_postgres=(runuser -u postgres --)
"${as_postgres[@]}" createdb -p "$port" walkthrough
"${as_postgres[@]}" psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d walkthrough -c 'CREATE EXTENSION coherence'
# As pg_regress runs it (the file drops and recreates the extension itself).
PGTZ=PST8PDT PGDATESTYLE='Postgres, MDY' "${as_postgres[@]}" \
	psql -X -a -q -v HIDE_TABLEAM=on -v HIDE_TOAST_COMPRESSION=on -p "$port" -d walkthrough \
	<sql/walkthrough.sql >"$work/walkthrough.out" 2>&1
diff -u expected/walkthrough.out "$work/walkthrough.out"
echo "deb-test: CREATE EXTENSION coherence and the walkthrough: as expected"

# Runs a command as postgres on database $1 of the cluster.
on_db() {
	local db=$1
	shift
	"${as_postgres[@]}" env PGHOST=/var/run/postgresql PGPORT="$port" PGDATABASE="$db" "$@"
}

# The CLI reads what the walkthrough wrote.
[ "$(on_db walkthrough coherence head)" = 7 ] || { echo "deb-test: coherence head did not print 7" >&2; exit 1; }
on_db walkthrough coherence event 7 | grep -q '"key-expired"' ||
	{ echo "deb-test: coherence event 7 is not the key expiry" >&2; exit 1; }
echo "deb-test: coherence-cli: head and event answer"

# The C++ example, built against the installed library both ways, runs its
# walkthrough on a fresh database.
cp client/examples/walkthrough.cpp "$work/"
g++ -std=c++17 "$work/walkthrough.cpp" $(pkg-config --cflags --libs coherence-client) -o "$work/walkthrough-pkgconfig"
cat >"$work/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(walkthrough LANGUAGES CXX)
find_package(coherence-client CONFIG REQUIRED)
add_executable(walkthrough walkthrough.cpp)
target_link_libraries(walkthrough PRIVATE coherence::client)
CMAKE
cmake -S "$work" -B "$work/build" >/dev/null
cmake --build "$work/build" >/dev/null
for program in "$work/walkthrough-pkgconfig" "$work/build/walkthrough"; do
	"${as_postgres[@]}" dropdb -p "$port" --if-exists example
	"${as_postgres[@]}" createdb -p "$port" example
	"${as_postgres[@]}" psql -X -q -p "$port" -d example -c 'CREATE EXTENSION coherence'
	on_db example "$program" >"$work/example.out"
	[ "$(on_db example coherence head)" = 7 ] || { echo "deb-test: $program did not write the 7 events" >&2; exit 1; }
done
echo "deb-test: libcoherence-client-dev: the example builds with pkg-config and with CMake, and runs"

# Removal: our packages first (no file of theirs may stay), then everything
# the installation pulled in, after which the file system must be as before.
pg_dropcluster --stop "$major" test
apt-get remove -y -qq "${packages[@]}" >/dev/null
left=$(while read -r path; do [ -e "$path" ] && [ ! -d "$path" ] && echo "$path"; done <"$work/package-paths")
[ -z "$left" ] || { echo "deb-test: apt-get remove left files of the packages:" >&2; echo "$left" >&2; exit 1; }
apt-get purge -y -qq "${packages[@]}" >/dev/null
dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${packages[@]}" 2>/dev/null | grep -v '^un ' &&
	{ echo "deb-test: packages still known to dpkg" >&2; exit 1; }
apt-get autoremove --purge -y -qq >/dev/null
snapshot >"$work/after"
if ! diff -u "$work/before" "$work/after"; then
	echo "deb-test: the file system differs from before the installation (above)" >&2
	exit 1
fi
echo "deb-test: apt-get remove, purge and autoremove leave the file system as it was"
rm -rf "$work"
