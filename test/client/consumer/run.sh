#!/usr/bin/env bash
# CTest's package test: installs the freshly built client into a temporary
# prefix, builds a consumer project against it with find_package, and runs
# it (shared and static) against a fresh database of the test server.
set -euo pipefail
build=$1 source=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"; dropdb --if-exists coherence_consumer_$$' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
cmake -S "$source" -B "$prefix/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer-build" >/dev/null
createdb coherence_consumer_$$
psql -X -q -d coherence_consumer_$$ -c "CREATE EXTENSION coherence"
# The shared library is found through the package's RPATH-less install:
# point the loader at the prefix, as ldconfig would for a system install.
run() { LD_LIBRARY_PATH="$prefix/lib" "$prefix/consumer-build/$1" "dbname=coherence_consumer_$$"; }
[ "$(run consumer)" = "ok head 1" ]
[ "$(run consumer-static)" = "ok head 2" ]
# Only the shared build needs libcoherence-client.so, with its SONAME.
grep -q 'NEEDED.*libcoherence-client\.so\.1' <(objdump -p "$prefix/consumer-build/consumer")
! grep -q 'NEEDED.*libcoherence-client' <(objdump -p "$prefix/consumer-build/consumer-static")
