#!/usr/bin/env bash
# make test: installs what is missing, builds everything with warnings as
# errors, installs it, and runs every test against one throwaway server and
# its hot standby: pg_regress suites, isolation specs, stress, backup,
# replica, fuzz and crash tests (the crash test on a server of its own) and
# the C++ tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

export PG_CFLAGS="-Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers"
make -s
if [ "$(id -u)" -eq 0 ]; then make -s install; else sudo make -s install; fi

scripts/with-server.sh --standby -c fsync=off -c max_connections=100 scripts/run-tests.sh
