#!/usr/bin/env bash
# make bench: installs what is missing (gnuplot included), builds and installs
# the extension and client, builds the load generator, and runs it against a
# throwaway server. Writes bench/results/results.{csv,md}, throughput.dat and
# throughput.png. BENCH_FULL=1 adds the 10M-event store size (slow).
#
# Server settings, the same for coherence and the baseline (they share the
# server): durable writes (fsync=on) but synchronous_commit=off, so commits do
# not wait for the disk flush and the figures measure CPU work rather than
# this machine's fsync latency; shared_buffers=1GB; a large max_wal_size so
# loading does not checkpoint constantly.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --bench

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "bench: building and installing the extension and client" >&2
make -s >/dev/null
"${sudo[@]}" make -s install >/dev/null
cmake -S bench -B build/bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/bench -j2 >/dev/null

args=(--out bench/results)
[ "${BENCH_FULL:-0}" = 1 ] && args+=(--full)
mkdir -p bench/results
scripts/with-server.sh \
	-c fsync=on -c synchronous_commit=off -c shared_buffers=1GB -c max_connections=100 \
	-c max_wal_size=8GB -c checkpoint_timeout=15min \
	build/bench/coherence-bench "${args[@]}"

gnuplot bench/throughput.gp
echo "bench: results in bench/results/ (results.md, results.csv, throughput.png)" >&2
