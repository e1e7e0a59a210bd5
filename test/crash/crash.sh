#!/usr/bin/env bash
# Crash: on its own throwaway server (fsync and synchronous_commit on), 3
# rounds of 8 writers appending and 2 readers (coherence_stream and
# coherence_event) recording what they get, a kill -9 of the postmaster a few
# seconds in, and a restart. Then every append whose COMMIT returned and every
# event a reader saw must be stored as it was answered, seq_nos gapless, no
# reader ever saw n + 1 before n, and every index and heap passes amcheck.
# A 4th round has the writers SET synchronous_commit = off: their appends may
# be lost (a suffix of the log), but never one that a reader was shown.
set -euo pipefail
cd "$(dirname "$0")"

# The kill must never hit a shared server: run under a server of our own.
if [ -z "${COHERENCE_CRASH_SERVER:-}" ]; then
	COHERENCE_CRASH_SERVER=1 exec ../../scripts/with-server.sh -c fsync=on -c synchronous_commit=on \
		-c max_connections=40 -c wal_writer_delay=1s "$PWD/crash.sh"
fi

writers=8
rounds=4
bindir=$(pg_config --bindir)
as_owner=()
[ "$(id -u)" -ne 0 ] || as_owner=(runuser -u postgres --)
work=$(mktemp -d "${TMPDIR:-/tmp}/coherence-crash.XXXXXX")
trap 'rm -rf "$work"' EXIT
export PGDATABASE=coherence_crash
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $PGDATABASE"
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION coherence" -c "CREATE EXTENSION amcheck"

# psql scripts long enough to outlast the load: each client runs until its
# connection dies with the server.
for script in writer stream-reader event-reader; do
	awk '{ line[NR] = $0 } END { for (i = 0; i < 20000; i++) for (j = 1; j <= NR; j++) print line[j] }' \
		$script.sql >"$work/$script.sql"
done

# Waits up to $1 seconds for the given processes to exit; false if some live on.
wait_gone() {
	local timeout=$1 pid
	shift
	for _ in $(seq $((timeout * 10))); do
		for pid in "$@"; do kill -0 "$pid" 2>/dev/null && break; pid=; done
		[ -z "${pid:-}" ] && return 0
		sleep 0.1
	done
	return 1
}

status=0
fail() { echo "crash: FAIL: $*"; status=1; }

for round in $(seq $rounds); do
	kind=writer seconds=$((round < 2 ? 2 : 3)) commit=on
	[ $round -lt 4 ] || kind=async-writer seconds=2 commit=off
	clients=()
	for writer in $(seq $writers); do
		PGOPTIONS="-c synchronous_commit=$commit" psql -X -q -A -t -v ON_ERROR_STOP=1 -v writer=$writer -v round=$round \
			-f "$work/writer.sql" >"$work/$kind-$round-$writer.out" 2>"$work/$kind-$round-$writer.err" &
		clients+=($!)
	done
	# Readers start a little before the head, so they read across the last
	# crash as well as what this round appends.
	from=$(psql -X -A -t -c "SELECT greatest(coherence_seq_no() - 100, 1)")
	psql -X -q -A -t -v ON_ERROR_STOP=1 -v next="$from" -f "$work/stream-reader.sql" \
		>"$work/stream-$round-$from.out" 2>"$work/stream-$round.err" &
	clients+=($!)
	psql -X -q -A -t -v ON_ERROR_STOP=1 -v next="$from" -f "$work/event-reader.sql" \
		>"$work/events-$round.out" 2>"$work/events-$round.err" &
	clients+=($!)

	sleep $seconds
	running=0
	for pid in "${clients[@]}"; do ! kill -0 "$pid" 2>/dev/null || running=$((running + 1)); done
	[ $running -eq ${#clients[@]} ] || { fail "round $round: only $running of ${#clients[@]} clients were still running at the kill"; cat "$work"/*-$round*.err; }

	# kill -9 of the postmaster; its orphaned children end when they notice
	# (or are killed after 20 s, as a crash would).
	postmaster=$(head -1 "$COHERENCE_DATA_DIR/postmaster.pid")
	mapfile -t children < <(pgrep -P "$postmaster")
	kill -9 "$postmaster"
	wait_gone 20 "$postmaster" "${children[@]}" || { echo "crash: killing leftover server processes"; kill -9 "${children[@]}" 2>/dev/null || true; }
	wait_gone 20 "${clients[@]}" || { echo "crash: killing leftover clients"; kill -9 "${clients[@]}" 2>/dev/null || true; }
	wait "${clients[@]}" 2>/dev/null || true

	(cd "$COHERENCE_DATA_DIR" && "${as_owner[@]}" "$bindir/pg_ctl" -D "$COHERENCE_DATA_DIR" -l "$COHERENCE_SERVER_LOG" \
		-w -t 60 restart -m immediate >"$work/restart.log" 2>&1) || { cat "$work/restart.log" "$COHERENCE_SERVER_LOG"; exit 1; }
	grep -q "database system was interrupted\|not properly shut down" "$COHERENCE_SERVER_LOG" ||
		fail "round $round: the server log shows no crash recovery"

	# Load what every client recorded in every round so far, and check.
	{
		echo "CREATE TEMP TABLE lines (file text, line text);"
		for out in "$work"/*.out; do
			echo "\\copy lines (line) FROM '$out' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
			echo "UPDATE lines SET file = '$(basename "$out")' WHERE file IS NULL;"
		done
		cat verify.sql
	} | psql -X -q -v ON_ERROR_STOP=1 >"$work/verify.out" || { cat "$work/verify.out"; exit 1; }
	declare -A found=()
	while read -r name count; do found[$name]=$count; done <"$work/verify.out"
	head=$(psql -X -A -t -c "SELECT coherence_seq_no()")
	acked_now=$(cat "$work"/$kind-$round-*.out | grep -c '"result": "ok"' || true)
	echo "crash: round $round: synchronous_commit=$commit, killed after $seconds s; $head events stored," \
		"$acked_now appends acknowledged this round; in all ${found[acked_events]} durably acknowledged events," \
		"${found[async_acked_lost]} asynchronously acknowledged lost, ${found[conflicts]} conflicts," \
		"${found[streamed_rows]} rows streamed, ${found[seen_events]} events read"
	for check in gaps neither_or_both acked_lost_or_changed streamed_lost_or_changed seen_lost_or_changed \
		event_reader_missing stream_reader_skipped unchecked_indexes heap_corruption; do
		[ "${found[$check]}" = 0 ] || fail "round $round: $check: ${found[$check]}"
	done
	[ "$acked_now" -gt 0 ] || fail "round $round: no append was acknowledged, so the round proved nothing"
	[ -s "$work/stream-$round-$from.out" ] && [ -s "$work/events-$round.out" ] || fail "round $round: a reader read nothing"
	unset found
done

# The log goes on after the crashes: the next append gets the next seq_no.
next=$(psql -X -A -t -v ON_ERROR_STOP=1 -c "SELECT coherence_rebase(coherence_seq_no() + 1, '[{\"source\": \"crash\",
	\"action\": {\"reason\": \"after\", \"actor\": [\"a\", \"1\"], \"aggregate\": [\"after\", \"1\"], \"patch\": {\"assoc\": {\"x\": 1}}}}]')
	#>> '{events,0,seq_no}'")
[ "$next" = $((head + 1)) ] || fail "the append after the crashes got seq_no $next, not $((head + 1))"
grep -q "terminated by signal" "$COHERENCE_SERVER_LOG" && fail "a backend crashed: $(grep "terminated by signal" "$COHERENCE_SERVER_LOG" | head -1)"
[ $status -eq 0 ] && echo "crash: ok"
exit $status
