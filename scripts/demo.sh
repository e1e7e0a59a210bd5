#!/usr/bin/env bash
# make demo: installs what is missing, builds and installs the extension and
# the C++ client, then, on a throwaway server, runs the walkthrough example
# (built like a user would, with pkg-config), shows `coherence tail`
# catching an event that another connection appends, and runs the
# read-models example (a projector, execute, an expiring key) on a database
# of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

# Second stage: runs under scripts/with-server.sh with PG* set.
if [ "${1:-}" = --on-server ]; then
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT

	echo "== CREATE EXTENSION coherence"
	psql -X -q -c "CREATE EXTENSION coherence"

	echo "== Building client/examples/walkthrough.cpp against the installed library:"
	echo "   g++ -std=c++17 walkthrough.cpp \$(pkg-config --cflags --libs coherence-client)"
	g++ -std=c++17 client/examples/walkthrough.cpp $(pkg-config --cflags --libs coherence-client) -o "$work/walkthrough"

	echo "== The walkthrough"
	echo
	"$work/walkthrough"
	echo

	echo "== coherence tail, following live while another connection appends"
	from=$(( $(coherence head) + 1 ))
	coherence tail --from "$from" >"$work/tail.out" 2>"$work/tail.err" &
	tail_pid=$!
	sleep 1
	echo "$ coherence append -   # on another connection"
	coherence append - <<-'JSON'
	[{"source": "bookstore",
	  "action": {"reason": "update", "actor": ["user", "carol"], "aggregate": ["book", "Count Zero"],
	             "patch": {"assoc": {"genre": "SciFi"}}}}]
	JSON
	# Wait for tail to print the event (at most 10 s), then stop it as a user
	# would with Ctrl-C.
	for _ in $(seq 100); do
		[ -s "$work/tail.out" ] && break
		sleep 0.1
	done
	kill -INT "$tail_pid"
	wait "$tail_pid"
	echo "$ coherence tail --from $from   # what it printed before Ctrl-C"
	cat "$work/tail.out"
	cat "$work/tail.err" >&2
	[ -s "$work/tail.out" ] || { echo "demo: tail printed nothing" >&2; exit 1; }
	echo

	# The example starts from an empty store, so it gets its own database.
	echo "== Read models: client/examples/read_models.cpp on a fresh database"
	createdb coherence_read_models
	psql -X -q -d coherence_read_models -c "CREATE EXTENSION coherence"
	g++ -std=c++17 client/examples/read_models.cpp $(pkg-config --cflags --libs coherence-client) -o "$work/read_models"
	echo
	"$work/read_models" "dbname=coherence_read_models"
	exit 0
fi

scripts/deps.sh
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "== Building and installing the extension and the client"
make -s
"${sudo[@]}" make -s install >/dev/null
exec scripts/with-server.sh "$0" --on-server
