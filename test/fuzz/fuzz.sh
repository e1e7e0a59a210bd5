#!/usr/bin/env bash
# Fuzz of coherence_rebase's input validator: random and mutated histories
# (FUZZ_HISTORIES, default 20000; FUZZ_SEED reproduces a run), each tried as
# a dry run and as an append. Every call must answer ok, conflict or
# invalid-seq-no, or fail with a class 22 error from the validator (23505 for
# reused event ids); the dry run and the append must agree; nothing is written
# but what an ok append answers; no backend crashes. Runs against the server
# in PGHOST/PGPORT (scripts/with-server.sh), whose log is COHERENCE_SERVER_LOG.
# FUZZ_TRACE=on logs every input there before it is tried.
set -euo pipefail
cd "$(dirname "$0")"

histories=${FUZZ_HISTORIES:-20000}
seed=${FUZZ_SEED:-$((RANDOM * 32768 + RANDOM))}
db=coherence_fuzz
work=$(mktemp -d "${TMPDIR:-/tmp}/coherence-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
psql=(psql -X -q -v ON_ERROR_STOP=1 -d "$db")
[ -f "${COHERENCE_SERVER_LOG:-}" ] || { echo "fuzz: FAIL: no server log (run under scripts/with-server.sh)"; exit 1; }
echo "fuzz: $histories histories, seed $seed (FUZZ_SEED=$seed reproduces this run)"

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
	-c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
"${psql[@]}" -c "CREATE EXTENSION coherence" -c "CREATE EXTENSION amcheck" -f generators.sql -f driver.sql
log_start=$(stat -c %s "$COHERENCE_SERVER_LOG")

# The judge itself must be able to fail: forged outcomes that break the
# contract are each caught.
caught=$("${psql[@]}" -A -t <<'SQL'
SELECT count(fuzz.judge(head, after, base, history, '{}', answer, state, message, dry_answer, dry_state, dry_message))
  FROM (VALUES
	-- an internal error
	(5, 5, 6, '[]'::jsonb, NULL::jsonb, 'XX000', 'cache lookup failed', NULL::jsonb, 'XX000', 'cache lookup failed'),
	-- a class 22 error that is not the validator's
	(5, 5, 6, '[]', NULL, '22P02', 'invalid input syntax', NULL, '22P02', 'invalid input syntax'),
	-- a dry run that accepts what the append refuses
	(5, 5, 6, '[{}]', NULL, '22023', 'coherence: x', '{"result": "ok", "events": [{"seq_no": 6}]}', '00000', NULL),
	-- an error that wrote
	(5, 6, 6, '[{}]', NULL, '22023', 'coherence: x', NULL, '22023', 'coherence: x'),
	-- ok at the wrong seq_no
	(5, 6, 6, '[{}]', '{"result": "ok", "events": [{"seq_no": 7}]}', '00000', NULL,
	 '{"result": "ok", "events": [{"seq_no": 7}]}', '00000', NULL),
	-- a conflict with an event before the base
	(5, 5, 4, '[{}]', '{"result": "conflict", "events": [], "conflict": {"ours": {"seq_no": 6}, "theirs": {"seq_no": 3}}}',
	 '00000', NULL, '{"result": "conflict", "events": [], "conflict": {"ours": {"seq_no": 6}, "theirs": {"seq_no": 3}}}', '00000', NULL),
	-- invalid-seq-no on a valid base
	(5, 5, 6, '[{}]', '{"result": "invalid-seq-no", "next_seq_no": 6}', '00000', NULL,
	 '{"result": "invalid-seq-no", "next_seq_no": 6}', '00000', NULL))
	forged (head, after, base, history, answer, state, message, dry_answer, dry_state, dry_message);
SQL
)
[ "$caught" = 7 ] || fail "the judge caught only $caught of 7 forged broken outcomes"

status=0
fail() { echo "fuzz: FAIL: $*"; status=1; }
start=$SECONDS
# Snapshots every few actions, so appends write them too.
"${psql[@]}" -c "SET coherence.snapshot_interval = 3" -c "SET fuzz.trace = ${FUZZ_TRACE:-off}" \
	-c "CALL fuzz.run($seed / 1073741824.0 - 1, $histories)" 2>"$work/session.err" || fail "the fuzz session died"
echo "fuzz: $((SECONDS - start)) s"
# The session hears nothing but its own errors' echo: a WARNING (a lock
# released twice, a leaked resource) is a finding too.
if [ -s "$work/session.err" ]; then
	sort "$work/session.err" | uniq -c | sort -rn | head -10
	fail "the session got $(grep -c WARNING "$work/session.err") warnings and $(grep -c ERROR "$work/session.err") errors"
fi

"${psql[@]}" -A -t -F ' ' -c "SELECT outcome, count(*) FROM fuzz.calls GROUP BY 1 ORDER BY 2 DESC" | sed 's/^/fuzz: outcome /'
"${psql[@]}" -x -c "SELECT * FROM fuzz.failures ORDER BY attempt LIMIT 10"
read -r calls failures gaps orphans indexes < <("${psql[@]}" -A -t -F ' ' <<'SQL'
SELECT (SELECT count(*) FROM fuzz.calls), (SELECT count(*) FROM fuzz.failures),
       (SELECT coalesce(max(seq_no), 0) - count(*) FROM coherence_events),
       (SELECT count(*) FROM coherence_events e LEFT JOIN coherence_actions a USING (seq_no)
          LEFT JOIN coherence_effects f USING (seq_no) WHERE (a.seq_no IS NULL) = (f.seq_no IS NULL)),
       (SELECT count(bt_index_check(i.indexrelid, true)) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
         WHERE c.relname LIKE 'coherence\_%');
SQL
)
[ "$calls" -eq "$histories" ] || fail "only $calls of $histories histories were tried"
[ "$failures" -eq 0 ] || fail "$failures calls broke the contract (first ones above)"
[ "$gaps" -eq 0 ] || fail "seq_nos have $gaps gaps"
[ "$orphans" -eq 0 ] || fail "$orphans events are neither or both an action and an effect"
echo "fuzz: $indexes indexes pass amcheck"
if tail -c +"$((log_start + 1))" "$COHERENCE_SERVER_LOG" | grep -E "terminated by signal|PANIC" >&2; then
	fail "the server log shows a crash"
fi

psql -X -q -d postgres -c "DROP DATABASE $db"
[ $status -eq 0 ] && echo "fuzz: ok"
exit $status
