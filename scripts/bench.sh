#!/usr/bin/env bash
# make bench: installs what is missing (gnuplot included), builds and installs
# the extension and client, builds the load generator, and runs it twice
# against a throwaway server: with synchronous_commit=on (durable commits, as
# users run it: the headline) and off (the CPU view, commits not waiting for
# the disk). Writes bench/results/synchronous_commit-{on,off}/ with
# results.{csv,md}, throughput.dat and throughput.png. BENCH_FULL=1 adds the
# 10M-event store size (slow).
#
# Server settings, the same for coherence and the baseline (they share the
# server): fsync=on; shared_buffers=1GB; a large max_wal_size so loading does
# not checkpoint constantly.
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

for commit in on off; do
	out=bench/results/synchronous_commit-$commit
	args=(--out "$out")
	[ "${BENCH_FULL:-0}" = 1 ] && args+=(--full)
	mkdir -p "$out"
	echo "bench: synchronous_commit=$commit" >&2
	scripts/with-server.sh \
		-c fsync=on -c synchronous_commit=$commit -c shared_buffers=1GB -c max_connections=100 \
		-c max_wal_size=8GB -c checkpoint_timeout=15min \
		build/bench/coherence-bench "${args[@]}"
	gnuplot -e "dir='$out'; commit='$commit'" bench/throughput.gp
done
echo "bench: results in bench/results/synchronous_commit-{on,off}/ (results.md, results.csv, throughput.png)" >&2
