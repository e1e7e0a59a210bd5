#!/usr/bin/env bash
# Stress: 16 concurrent writers on 4 hot aggregates for a few seconds, then
# SQL checks that no conflict was lost and that seq_nos are gapless. Runs
# against the server in PGHOST/PGPORT (scripts/with-server.sh provides one).
set -euo pipefail
cd "$(dirname "$0")"

clients=${STRESS_CLIENTS:-16}
seconds=${STRESS_SECONDS:-5}
db=coherence_stress

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -X -q -v ON_ERROR_STOP=1 -d $db -c "CREATE EXTENSION coherence"

echo "stress: $clients writers on 4 hot aggregates for ${seconds}s"
pgbench -n -d $db -c "$clients" -j 2 -T "$seconds" -f hot-aggregates.pgbench >pgbench.log 2>&1 ||
	{ cat pgbench.log; exit 1; }
attempts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' pgbench.log)
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' pgbench.log)
rm -f pgbench.log

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
read -r actions lost gapless < <(check)

# The check itself must be able to fail: forge an action that bypasses
# coherence_rebase (as superuser) with a stale base, and expect it caught.
psql -X -q -v ON_ERROR_STOP=1 -d $db <<'SQL'
INSERT INTO coherence_events SELECT max(seq_no) + 1, now(), 'forged' FROM coherence_events;
INSERT INTO coherence_actions SELECT max(seq_no), 'forged', 'writer', '0', 'hot', '1', '{"assoc": {"base": 1}}'
  FROM coherence_events;
SQL
read -r _ forged_lost _ < <(check)

psql -X -q -d postgres -c "DROP DATABASE $db"

conflicts=$((attempts - actions))
echo "stress: $attempts attempts, $actions appended, $conflicts conflicts, $lost lost conflicts, gapless=$gapless"
status=0
[ "${failed:-0}" -eq 0 ] || { echo "stress: FAIL: $failed transactions failed"; status=1; }
[ "$lost" -eq 0 ] || { echo "stress: FAIL: $lost actions were appended over a change they had not seen"; status=1; }
[ "$gapless" = t ] || { echo "stress: FAIL: seq_nos have gaps"; status=1; }
[ "$actions" -gt 0 ] || { echo "stress: FAIL: nothing was appended"; status=1; }
[ "$conflicts" -gt 0 ] || { echo "stress: FAIL: no conflicts, so the run proved nothing"; status=1; }
[ "$forged_lost" -eq 1 ] || { echo "stress: FAIL: the check missed a forged lost conflict"; status=1; }
exit $status
