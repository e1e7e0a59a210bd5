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
# pkg-config and with CMake, then removes the packages and checks, by
# comparing file lists, that no file of theirs, and none they created, is
# left behind.
set -euo pipefail
debs=$(cd "$1" && pwd)
export DEBIAN_FRONTEND=noninteractive
packages=($(for d in "$debs"/*.deb; do dpkg-deb -f "$d" Package; done))
work=$(mktemp -d /tmp/deb-test.XXXXXX)
chmod 755 "$work"
echo "deb-test: ${packages[*]}"

# Every file and directory with its type, outside the volatile places and
# the package managers' own databases.
snapshot() {
	find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o -path /src \
		-o -path /var/cache -o -path /var/lib/apt -o -path /var/lib/dpkg -o -path /var/log -o -path /root \) -prune \
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

apt-get install -y -qq "$debs"/*.deb >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log"; exit 1; }
for p in "${packages[@]}"; do
	dpkg-query -L "$p"
done | grep -vx '/\.' | sort -u >"$work/package-paths"
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
for build in pkgconfig cmake; do
	"${as_postgres[@]}" createdb -p "$port" "example_$build"
	"${as_postgres[@]}" psql -X -q -p "$port" -d "example_$build" -c 'CREATE EXTENSION coherence'
done
on_db example_pkgconfig "$work/walkthrough-pkgconfig" >"$work/example-pkgconfig.out"
on_db example_cmake "$work/build/walkthrough" >"$work/example-cmake.out"
for build in pkgconfig cmake; do
	[ "$(on_db "example_$build" coherence head)" = 7 ] ||
		{ echo "deb-test: the example built with $build did not write its 7 events" >&2; exit 1; }
done
cmp "$work/example-pkgconfig.out" "$work/example-cmake.out"
echo "deb-test: libcoherence-client-dev: the example builds with pkg-config and with CMake, and runs"

# Removal. After the walkthrough, apt-get remove must take away every file of
# the packages. Then one more install and remove with the dependencies in
# place: installing must add exactly the packages' files, and removing and
# purging must give back the file list from before, to the last file.
pg_dropcluster --stop "$major" test
apt-get remove -y -qq "${packages[@]}" >/dev/null
left=()
while read -r path; do
	if [ -d "$path" ]; then
		dpkg-query -S "$path" >/dev/null 2>&1 || left+=("$path/")
	elif [ -e "$path" ] || [ -L "$path" ]; then
		left+=("$path")
	fi
done <"$work/package-paths"
[ ${#left[@]} -eq 0 ] || { echo "deb-test: apt-get remove left behind:" >&2; printf '  %s\n' "${left[@]}" >&2; exit 1; }
echo "deb-test: apt-get remove took every file of the packages away (directories left belong to other packages)"

snapshot >"$work/without"
apt-get install -y -qq "$debs"/*.deb >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
snapshot >"$work/with"
comm -13 <(cut -d' ' -f2- "$work/without" | sort) "$work/package-paths" >"$work/expected-new"
comm -13 "$work/without" "$work/with" | cut -d' ' -f2- | sort >"$work/new"
diff -u "$work/expected-new" "$work/new" ||
	{ echo "deb-test: installing added other paths than the packages' own (+) or missed some (-)" >&2; exit 1; }
comm -23 "$work/without" "$work/with" | diff /dev/null - ||
	{ echo "deb-test: installing took paths away" >&2; exit 1; }
apt-get remove -y -qq "${packages[@]}" >/dev/null
dpkg --purge "${packages[@]}" >/dev/null 2>&1
snapshot >"$work/removed"
diff -u "$work/without" "$work/removed" ||
	{ echo "deb-test: remove and purge did not give back the file list from before (above)" >&2; exit 1; }
dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${packages[@]}" 2>/dev/null | grep -v '^un ' &&
	{ echo "deb-test: packages still known to dpkg" >&2; exit 1; }
echo "deb-test: installing added exactly the $(grep -c . "$work/new") paths of the packages; removing and purging took exactly those away"
rm -rf "$work"
