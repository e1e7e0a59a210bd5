#!/usr/bin/env bash
# Streaming replica: on the hot standby of scripts/with-server.sh --standby,
# once it has replayed the primary's WAL, every read function answers what
# the primary answers; an append fails with SQLSTATE 25006 and writes
# nothing; a dry run works and answers what it answers on the primary.
set -euo pipefail
cd "$(dirname "$0")"
common=../common
[ -n "${COHERENCE_STANDBY_PORT:-}" ] || { echo "replica: FAIL: no standby (run under scripts/with-server.sh --standby)"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/coherence-replica.XXXXXX")
trap 'rm -rf "$work"' EXIT
db=coherence_replica
primary=(psql -X -q -v ON_ERROR_STOP=1 -d "$db")
standby=(psql -X -q -v ON_ERROR_STOP=1 -d "$db" -p "$COHERENCE_STANDBY_PORT")
status=0
fail() { echo "replica: FAIL: $*"; status=1; }

# Waits (30 s at most) until the standby has replayed all the primary's WAL.
catch_up() {
	local target
	target=$(psql -X -A -t -d postgres -c "SELECT pg_current_wal_lsn()")
	for _ in $(seq 300); do
		[ "$(psql -X -A -t -d postgres -p "$COHERENCE_STANDBY_PORT" \
			-c "SELECT coalesce(pg_last_wal_replay_lsn() >= '$target', false)")" = t ] && return 0
		sleep 0.1
	done
	echo "replica: FAIL: the standby did not replay up to $target within 30 s"
	exit 1
}

# Compares what every read function answers on both servers.
compare() {
	"${primary[@]}" -f $common/read-all.sql >"$work/primary.out"
	if ! "${standby[@]}" -f $common/read-all.sql >"$work/standby.out" 2>&1; then
		head -5 "$work/standby.out"
		fail "$1: reading on the standby failed"
	elif ! diff -u "$work/primary.out" "$work/standby.out" >"$work/diff"; then
		head -20 "$work/diff"
		fail "$1: the standby answers differently ($(grep -c '^[-+][^-+]' "$work/diff") lines)"
	else
		echo "replica: $1: every read function answers the same on the standby ($(wc -l <"$work/primary.out") lines)"
	fi
}

# Prints the answer of one coherence_rebase call, or its error's SQLSTATE,
# message, detail and hint on one line.
rebase() {
	local port=$1 call=$2
	psql -X -A -t -d $db -p "$port" -v VERBOSITY=verbose -c "SELECT $call" 2>&1 | tr '\n' ' ' | sed 's/ *$//'
	echo
}

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
	-c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
"${primary[@]}" -c "CREATE EXTENSION coherence"
"${primary[@]}" -f $common/populate.sql >"$work/populate.log" 2>&1 || { cat "$work/populate.log"; exit 1; }
catch_up
compare "after 407 events"

# More appends, an effect that replays earlier actions and a checkpoint move
# stream over while the standby is running.
"${primary[@]}" >/dev/null <<'SQL'
SELECT coherence_rebase(coherence_seq_no() + 1, '[
  {"timestamp": "2026-12-02T00:00:00Z", "source": "late", "action": {"reason": "edit", "actor": ["user", "late"],
   "aggregate": ["book", "a3"], "patch": {"assoc": {"late": "✓"}}}, "triggers": [["key", "9"]]},
  {"timestamp": "2026-12-02T00:00:01Z", "source": "keystore", "effect": {"reason": "key-expired", "trigger": ["key", "2"]}}]');
SELECT coherence_advance('projector', coherence_seq_no());
SQL
catch_up
compare "after streaming more events"

head=$("${primary[@]}" -A -t -c "SELECT coherence_seq_no()")
action='{"timestamp": "2026-12-03T00:00:00Z", "source": "standby", "action": {"reason": "edit",
  "actor": ["user", "s"], "aggregate": ["book", "a3"], "patch": {"assoc": {"from": "standby"}}}}'

# An append on the standby: 25006, naming the primary; nothing written.
answer=$(rebase "$COHERENCE_STANDBY_PORT" "coherence_rebase($head + 1, '[$action]')")
echo "replica: append on the standby: $answer"
[[ $answer == "ERROR:  25006:"* ]] || fail "an append on the standby did not fail with SQLSTATE 25006"
[[ ${answer,,} == *primary* ]] || fail "the error of an append on the standby does not say to write on the primary"
answer=$(rebase "$COHERENCE_STANDBY_PORT" "coherence_rebase($head + 1, '[$action]', dry => false)")
[[ $answer == "ERROR:  25006:"* ]] || fail "an append on the standby with dry => false did not fail with SQLSTATE 25006: $answer"
[ "$("${standby[@]}" -A -t -c "SELECT coherence_seq_no()")" = "$head" ] || fail "the standby's seq_no moved"

# Dry runs on the standby answer exactly what they answer on the primary:
# ok, a conflict (stale base on book a3) and an invalid base.
for call in "coherence_rebase($head + 1, '[$action]', dry => true)" \
	"coherence_rebase(400, '[$action]', dry => true)" \
	"coherence_rebase($head + 5, '[$action]', dry => true)"; do
	on_primary=$(rebase "$PGPORT" "$call")
	on_standby=$(rebase "$COHERENCE_STANDBY_PORT" "$call")
	echo "replica: dry run on the standby: ${on_standby:0:150}"
	[[ $on_primary == '{'*'"result": '* ]] || fail "a dry run on the primary failed: $on_primary"
	[ "$on_primary" = "$on_standby" ] || fail "a dry run answers differently on the standby: $on_standby, on the primary: $on_primary"
done
[ "$("${primary[@]}" -A -t -c "SELECT coherence_seq_no()")" = "$head" ] || fail "a dry run wrote on the primary"

psql -X -q -d postgres -c "DROP DATABASE $db"
[ $status -eq 0 ] && echo "replica: ok"
exit $status
