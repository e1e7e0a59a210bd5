#!/usr/bin/env bash
# Runs every test suite against the server in PGHOST/PGPORT and its standby
# in COHERENCE_STANDBY_PORT (see scripts/test.sh; the crash test starts a
# server of its own), goes on after a failing suite so that one run shows
# every failure, and ends with a "N passed, N failed" line over all tests.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()

# Adds a suite's counts, or one failure when its output could not be counted.
tally() {
	local name=$1 rc=$2 ok=$3 bad=$4
	passed=$((passed + ok))
	failed=$((failed + bad))
	if [ "$rc" -ne 0 ]; then
		failures+=("'$name'")
		[ "$bad" -gt 0 ] || failed=$((failed + 1))
	fi
}

echo "== pg_regress and isolation suites"
mkdir -p build
make -s installcheck 2>&1 | tee build/installcheck.log
rc=${PIPESTATUS[0]}
for diffs in regression.diffs output_iso/regression.diffs; do
	[ -s "$diffs" ] && { echo "== $diffs"; cat "$diffs"; }
done
ok=$(grep -c ' \.\.\. ok' build/installcheck.log)
bad=$(grep -c ' \.\.\. FAILED' build/installcheck.log)
tally installcheck $rc "$ok" "$bad"

# Runs one test script, which counts as one test.
single() {
	local name=$1 rc
	shift
	echo "== $name"
	"$@"
	rc=$?
	tally "$name" $rc $((rc == 0)) $((rc != 0))
}

single "stress (read committed)" test/stress/stress.sh "read committed"
single "stress (repeatable read)" test/stress/stress.sh "repeatable read"
single backup test/backup/backup.sh
single replica test/replica/replica.sh
single fuzz test/fuzz/fuzz.sh
single crash test/crash/crash.sh

echo "== C++ client tests"
ctest --test-dir build/client --output-on-failure | tee build/ctest.log
rc=${PIPESTATUS[0]}
read -r total bad < <(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2 \1/p' build/ctest.log; echo 0 0)
tally ctest $rc $((total - bad)) "$bad"

# The server itself must have stayed healthy through everything above: no
# crashed backend, and no lock given back by the wrong owner (what a broken
# early lock release logs).
single "server log" bash -c '! grep -E "terminated by signal|PANIC|you don.t own a lock" "$COHERENCE_SERVER_LOG"'

[ ${#failures[@]} -eq 0 ] || echo "failing suites: ${failures[*]}"
echo "coherence: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
