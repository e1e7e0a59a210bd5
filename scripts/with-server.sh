#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL 15 server: a fresh data
# directory and Unix socket in a temporary directory, a free TCP port on
# 127.0.0.1, run as the postgres OS user when we are root (PostgreSQL refuses
# root). The server is stopped and the directory removed on exit, even when
# the command fails. The command sees PGHOST, PGPORT, PGUSER and PGDATABASE.
#
#   scripts/with-server.sh [-c name=value ...] command [args...]
#
# -c passes a server setting (repeatable); tests add fsync=off for speed.
set -euo pipefail

settings=()
while [ "${1:-}" = -c ]; do
	settings+=(-c "$2")
	shift 2
done
[ $# -gt 0 ] || { echo "usage: $0 [-c name=value ...] command [args...]" >&2; exit 2; }

bindir=$(pg_config --bindir)
dir=$(mktemp -d "${TMPDIR:-/tmp}/coherence-pg.XXXXXX")
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$dir"
	as_owner=(runuser -u postgres --)
fi

stop_server() {
	local rc=$?
	if [ -f "$dir/data/postmaster.pid" ]; then
		(cd "$dir" && "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1) || true
	fi
	rm -rf "$dir"
	exit $rc
}
trap stop_server EXIT
trap 'exit 130' INT TERM

port_is_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
port=$((20000 + RANDOM % 20000))
until port_is_free "$port"; do port=$((port + 1)); done

cd "$dir"
"${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
	{ cat "$dir/initdb.log" >&2; exit 1; }
"${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
	-o "-k $dir -p $port -c listen_addresses=127.0.0.1 ${settings[*]}" >/dev/null ||
	{ cat "$dir/server.log" >&2; exit 1; }
cd - >/dev/null

export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres
export COHERENCE_SERVER_LOG=$dir/server.log
"$@"
