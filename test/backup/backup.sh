#!/usr/bin/env bash
# Backup: a store with actions, effects, triggers, snapshots and checkpoints
# goes through pg_dump in custom and plain format and is restored into fresh
# databases; every read function and every row of every coherence table must
# be identical there, and the next append must continue the log gapless.
# Runs against the server in PGHOST/PGPORT (scripts/with-server.sh).
set -euo pipefail
cd "$(dirname "$0")"
common=../common
work=$(mktemp -d "${TMPDIR:-/tmp}/coherence-backup.XXXXXX")
trap 'rm -rf "$work"' EXIT
bindir=$(pg_config --bindir)
psql=(psql -X -q -v ON_ERROR_STOP=1)

# Prints every row of every coherence table (the extension's members), in
# key order, so that two stores can be compared with diff.
tables() {
	"${psql[@]}" -d "$1" -A -t <<'SQL'
SET TimeZone = 'UTC';
SELECT format('-- %s: %s rows', c.relname, (xpath('/row/n/text()',
         query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, false, '')))[1]::text)
       || coalesce(E'\n' || (xpath('/row/rows/text()', query_to_xml(format(
         'SELECT string_agg(t::text, E''\n'' ORDER BY t::text) AS rows FROM %I.%I t', n.nspname, c.relname),
         false, false, '')))[1]::text, '')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND c.relname LIKE 'coherence\_%'
 ORDER BY c.relname;
SQL
}

# Prints the store as the read functions and the tables show it.
state() {
	"${psql[@]}" -d "$1" -f $common/read-all.sql
	tables "$1"
}

status=0
fail() { echo "backup: FAIL: $*"; status=1; }

"${psql[@]}" -d postgres -c "SET client_min_messages = warning" \
	-c "DROP DATABASE IF EXISTS coherence_backup" -c "DROP DATABASE IF EXISTS coherence_restored_custom" \
	-c "DROP DATABASE IF EXISTS coherence_restored_plain" -c "CREATE DATABASE coherence_backup"
"${psql[@]}" -d coherence_backup -c "CREATE EXTENSION coherence"
"${psql[@]}" -d coherence_backup -f $common/populate.sql >"$work/populate.log" 2>&1 || { cat "$work/populate.log"; exit 1; }
state coherence_backup >"$work/original.out"

# The store must hold what the test is about, or it proves nothing.
read -r events effects triggers snapshots checkpoints < <("${psql[@]}" -d coherence_backup -A -t -F ' ' -c "
	SELECT (SELECT count(*) FROM coherence_events), (SELECT count(*) FROM coherence_effects),
	       (SELECT count(*) FROM coherence_triggers), (SELECT count(*) FROM coherence_snapshots),
	       (SELECT count(*) FROM coherence_checkpoints)")
echo "backup: store of $events events, $effects effects, $triggers trigger links, $snapshots snapshots, $checkpoints checkpoints"
[ "$effects" -gt 0 ] && [ "$triggers" -gt 0 ] && [ "$snapshots" -gt 0 ] && [ "$checkpoints" -eq 2 ] ||
	fail "the store lacks effects, triggers, snapshots or checkpoints"

"$bindir/pg_dump" -d coherence_backup -Fc -f "$work/dump.custom"
"$bindir/pg_dump" -d coherence_backup -Fp -f "$work/dump.sql"

for format in custom plain; do
	db=coherence_restored_$format
	"${psql[@]}" -d postgres -c "CREATE DATABASE $db TEMPLATE template0"
	if [ $format = custom ]; then
		"$bindir/pg_restore" --exit-on-error -d $db "$work/dump.custom" >"$work/restore.log" 2>&1
	else
		"${psql[@]}" -d $db -f "$work/dump.sql" >"$work/restore.log" 2>&1
	fi || { cat "$work/restore.log"; fail "$format: the restore failed"; continue; }

	state $db >"$work/$format.out"
	if diff -u "$work/original.out" "$work/$format.out" >"$work/$format.diff"; then
		echo "backup: $format: every read function and table row identical"
	else
		head -20 "$work/$format.diff"
		fail "$format: the restored store differs from the original ($(grep -c '^[-+][^-+]' "$work/$format.diff") lines)"
	fi

	# The log goes on where it stopped: the next append gets events + 1, a
	# stale base on a restored aggregate conflicts with its stored action, and
	# every index of the restored tables is sound.
	answers=$("${psql[@]}" -d $db -A -t -F ' ' <<SQL
CREATE EXTENSION IF NOT EXISTS amcheck;
SELECT coherence_rebase(coherence_seq_no() + 1, '[{"source": "restore", "action": {"reason": "check",
  "actor": ["user", "dba"], "aggregate": ["book", "after-restore"], "patch": {"assoc": {"ok": true}}}}]')
  #>> '{events,0,seq_no}' AS next;
SELECT coalesce(coherence_rebase(2, '[{"source": "restore", "action": {"reason": "check",
  "actor": ["user", "dba"], "aggregate": ["book", "Neuromancer"], "patch": {"assoc": {"ok": true}}}}]')
  #>> '{conflict,theirs,seq_no}', 'none') AS theirs;
SELECT count(*) FROM coherence_events;
SELECT count(bt_index_check(i.indexrelid, true)) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relname LIKE 'coherence\_%';
SQL
	) || { fail "$format: appending after the restore failed"; continue; }
	read -r next theirs count indexes <<<"$(echo $answers)"
	[ "$next" = $((events + 1)) ] || fail "$format: the next append got seq_no $next, not $((events + 1))"
	[ "$theirs" = 4 ] || fail "$format: a stale base on book Neuromancer conflicted with seq_no '$theirs', not 4"
	[ "$count" = $((events + 1)) ] || fail "$format: $count events after one more append, not $((events + 1))"
	echo "backup: $format: next append got seq_no $next, stale base conflicted with $theirs, $indexes indexes pass amcheck"
done

"${psql[@]}" -d postgres -c "DROP DATABASE coherence_backup" \
	-c "DROP DATABASE IF EXISTS coherence_restored_custom" -c "DROP DATABASE IF EXISTS coherence_restored_plain"
[ $status -eq 0 ] && echo "backup: ok"
exit $status
