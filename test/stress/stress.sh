#!/usr/bin/env bash
# Stress: 16 concurrent writers on 4 hot aggregates for a few seconds, then
# SQL checks that no conflict was lost and that seq_nos are gapless; once in
# READ COMMITTED and once in REPEATABLE READ, where a concurrent append makes
# a call fail with 40001 and pgbench retries it. Runs against the server in
# PGHOST/PGPORT (scripts/with-server.sh provides one).
#
#   test/stress/stress.sh [isolation level ...]   (default: both)
set -euo pipefail
cd "$(dirname "$0")"

clients=${STRESS_CLIENTS:-16}
seconds=${STRESS_SECONDS:-5}
db=coherence_stress
[ $# -gt 0 ] || set -- "read committed" "repeatable read"
log=$(mktemp "${TMPDIR:-/tmp}/coherence-stress.XXXXXX")
trap 'rm -f "$log"' EXIT

# Every stored action's base must be past the previous action on its
# aggregate: otherwise a conflict went unreported. Prints: actions, lost
# conflicts, whether seq_nos are gapless.
check() {
	psql -X -A -t -F ' ' -v ON_ERROR_STOP=1 -d $db <<'SQL'
WITH a AS (
	SELECT seq_no, (patch->'assoc'->>'base')::bigint AS base,
	       lag(seq_no) OVER (PARTITION BY aggregate_kind, aggregate_id ORDER BY seq_no) AS previous
	FROM coherence_actions)
SELECT count(*),
       count(*) FILTER (WHERE base <= previous),
       (SELECT count(*) = coalesce(max(seq_no), 0) AND coalesce(min(seq_no), 1) = 1 FROM coherence_events)
FROM a;
SQL
}

# One run at isolation level $1; prints its figures and fails on a finding.
run() {
	local level=$1 status=0
	psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" || return 1
	psql -X -q -v ON_ERROR_STOP=1 -d $db -c "CREATE EXTENSION coherence" || return 1

	echo "stress: $level: $clients writers on 4 hot aggregates for ${seconds}s"
	# Serialization failures (40001) are retried until the run ends; any
	# other error aborts a client and fails pgbench.
	PGOPTIONS="-c default_transaction_isolation=${level/ /\\ }" pgbench -n -d $db -c "$clients" -j 2 -T "$seconds" \
		--max-tries=0 -f hot-aggregates.pgbench >"$log" 2>&1 || { cat "$log"; return 1; }
	local attempts failed retried
	attempts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log")
	retried=$(sed -n 's/^total number of retries: \([0-9]*\).*/\1/p' "$log")

	local actions lost gapless forged_lost
	read -r actions lost gapless < <(check) || return 1

	# The check itself must be able to fail: forge an action that bypasses
	# coherence_rebase (as superuser) with a stale base, and expect it caught.
	psql -X -q -v ON_ERROR_STOP=1 -d $db <<'SQL'
INSERT INTO coherence_events SELECT max(seq_no) + 1, now(), 'forged' FROM coherence_events;
INSERT INTO coherence_actions SELECT max(seq_no), 'forged', 'writer', '0', 'hot', '1', '{"assoc": {"base": 1}}'
  FROM coherence_events;
SQL
	[ $? -eq 0 ] || return 1
	read -r _ forged_lost _ < <(check) || return 1
	psql -X -q -d postgres -c "DROP DATABASE $db"

	local conflicts=$((attempts - actions))
	echo "stress: $level: $attempts attempts, $actions appended, $conflicts conflicts, ${retried:-0} retries after 40001," \
		"$lost lost conflicts, gapless=$gapless"
	[ "${failed:-0}" -eq 0 ] || { echo "stress: FAIL: $level: $failed transactions failed"; status=1; }
	[ "$lost" -eq 0 ] || { echo "stress: FAIL: $level: $lost actions were appended over a change they had not seen"; status=1; }
	[ "$gapless" = t ] || { echo "stress: FAIL: $level: seq_nos have gaps"; status=1; }
	[ "$actions" -gt 0 ] || { echo "stress: FAIL: $level: nothing was appended"; status=1; }
	[ "$conflicts" -gt 0 ] || { echo "stress: FAIL: $level: no conflicts, so the run proved nothing"; status=1; }
	[ "$forged_lost" -eq 1 ] || { echo "stress: FAIL: $level: the check missed a forged lost conflict"; status=1; }
	return $status
}

status=0
for level in "$@"; do
	run "$level" || status=1
done
exit $status
