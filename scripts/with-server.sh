#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL server (the one pg_config names): a fresh data
# directory and Unix socket in a temporary directory, a free TCP port on
# 127.0.0.1, run as the postgres OS user when we are root (PostgreSQL refuses
# root). The server is stopped and the directory removed on exit, even when
# the command fails. The command sees PGHOST, PGPORT, PGUSER and PGDATABASE,
# COHERENCE_SERVER_LOG and COHERENCE_DATA_DIR.
#
#   scripts/with-server.sh [--standby] [-c name=value ...] command [args...]
#
# -c passes a server setting (repeatable, given to the standby too); tests add
# fsync=off for speed. --standby also starts a hot standby streaming from the
# server (pg_basebackup -R, same socket directory, another free port) and
# exports COHERENCE_STANDBY_PORT and COHERENCE_STANDBY_LOG.
set -euo pipefail

settings=()
standby=false
while [ $# -gt 0 ]; do
	case $1 in
	-c) settings+=(-c "$2"); shift 2 ;;
	--standby) standby=true; shift ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--standby] [-c name=value ...] command [args...]" >&2; exit 2; }

bindir=$(pg_config --bindir)
dir=$(mktemp -d "${TMPDIR:-/tmp}/coherence-pg.XXXXXX")
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
	chown postgres: "$dir"
	as_owner=(runuser -u postgres --)
fi

# Stops the standby first (it would otherwise retry the primary), then the
# primary, and removes everything.
stop_server() {
	local rc=$?
	local data
	for data in "$dir/standby" "$dir/data"; do
		if [ -f "$data/postmaster.pid" ]; then
			(cd "$dir" && "${as_owner[@]}" "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1) || true
		fi
	done
	rm -rf "$dir"
	exit $rc
}
trap stop_server EXIT
trap 'exit 130' INT TERM

port_is_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
# Prints a free TCP port.
free_port() {
	local port=$((20000 + RANDOM % 20000))
	until port_is_free "$port"; do port=$((port + 1)); done
	echo "$port"
}

# Starts the server in data directory $1 on port $2, logging to $3.
start() {
	"${as_owner[@]}" "$bindir/pg_ctl" -D "$1" -l "$3" -w -t 60 start \
		-o "-k $dir -p $2 -c listen_addresses=127.0.0.1 ${settings[*]}" >/dev/null ||
		{ cat "$3" >&2; exit 1; }
}

cd "$dir"
port=$(free_port)
"${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
	{ cat "$dir/initdb.log" >&2; exit 1; }
# What a hot standby needs of its primary (wal_level replica and
# max_wal_senders are already the defaults); harmless without one.
printf 'hot_standby = on\nwal_keep_size = 256MB\n' >>"$dir/data/postgresql.conf"
start "$dir/data" "$port" "$dir/server.log"

if $standby; then
	standby_port=$(free_port)
	"${as_owner[@]}" "$bindir/pg_basebackup" -h "$dir" -p "$port" -U postgres -D "$dir/standby" -R -X stream \
		-c fast >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; exit 1; }
	start "$dir/standby" "$standby_port" "$dir/standby.log"
	export COHERENCE_STANDBY_PORT=$standby_port COHERENCE_STANDBY_LOG=$dir/standby.log
else
	# A server started inside another one's command has no standby.
	unset COHERENCE_STANDBY_PORT COHERENCE_STANDBY_LOG
fi
cd - >/dev/null

export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres
export COHERENCE_SERVER_LOG=$dir/server.log COHERENCE_DATA_DIR=$dir/data
"$@"
