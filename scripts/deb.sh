#!/usr/bin/env bash
# make deb: Debian packages, built with Debian's tooling (dpkg-buildpackage,
# debhelper, pg_buildext) from a copy of the source tree, into build/deb:
# postgresql-NN-coherence for each PostgreSQL server whose dev package is
# installed (postgresql-server-dev-all brings the distribution's), the client
# library (libcoherence-client1, libcoherence-client-dev) and coherence-cli.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --deb
version=$(scripts/check-version.sh)

out=$PWD/build/deb
rm -rf "$out"
scripts/copy-tree.sh "$out/coherence-$version"
cd "$out/coherence-$version"
# debian/control lists one extension package per server version present.
PG_SUPPORTED_VERSIONS=installed pg_buildext updatecontrol
echo "deb: building coherence $version, log in build/deb/build.log"
PG_SUPPORTED_VERSIONS=installed dpkg-buildpackage --build=binary --no-sign -j2 >"$out/build.log" 2>&1 ||
	{ tail -30 "$out/build.log" >&2; exit 1; }
cd "$out"
rm -rf "coherence-$version"
ls -1 "$out"/*.deb
