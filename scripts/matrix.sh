#!/usr/bin/env bash
# make test-matrix: the rows of the version matrix that are not this machine.
#
#   scripts/matrix.sh [row ...]      rows: trixie testing packages (default: all)
#
#   trixie    Debian 13, PostgreSQL 17, libpqxx 7: `make test` and `make deb`
#             in a chroot
#   testing   Debian testing, PostgreSQL 18, libpqxx 8: the same
#   packages  `make deb` here, then scripts/deb-test.sh in a clean Debian 12
#             chroot: install, pg_createcluster, walkthrough, remove, nothing left
#
# (Debian 12 with PostgreSQL 15 and libpqxx 6.4 is this machine: `make test`.)
#
# Root file systems come from `debootstrap --variant=minbase` with this
# machine's Debian mirror and are cached in $COHERENCE_MATRIX_CACHE (default
# /var/cache/coherence/matrix), brought up to date with apt-get when reused.
# The cache holds only Debian packages: each row runs on a throwaway overlay
# over it, with a copy of the source tree (tracked and unignored files, so no
# build output of this machine) in /src. Each chroot lives in its own mount
# and PID namespaces, so its mounts vanish and its processes die when the row
# ends, however it ends.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cache=${COHERENCE_MATRIX_CACHE:-/var/cache/coherence/matrix}
self=$top/scripts/matrix.sh

# Inside fresh namespaces (see run_in_root): mounts the overlay of the cached
# root file system, the suite's cache of downloaded packages, /proc, /dev and
# a private /dev/shm, copies the source tree in (as a one-commit git
# repository, for make deb and make dist), and runs the command in the chroot
# with a clean environment.
if [ "${1:-}" = --inside ]; then
	lower=$2 work=$3 archives=$4
	shift 4
	root=$work/root
	mount -t overlay overlay -o "lowerdir=$lower,upperdir=$work/upper,workdir=$work/work" "$root"
	mount --bind "$archives" "$root/var/cache/apt/archives"
	mount -t proc proc "$root/proc"
	mount --bind /dev "$root/dev"
	mount --bind /dev/pts "$root/dev/pts"
	mount -t tmpfs -o mode=1777 shm "$root/dev/shm"
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	"$top/scripts/copy-tree.sh" "$root/src"
	git -C "$root/src" init -q
	git -C "$root/src" add -A
	git -C "$root/src" -c user.name=matrix -c user.email=matrix@localhost commit -q -m "the tree under test"
	[ ! -d "$top/build/deb" ] || cp -a "$top/build/deb" "$root/src/debs"
	exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		LANG=C.UTF-8 TERM="${TERM:-dumb}" /bin/bash -c "cd /src && $*"
fi

[ "$(id -u)" -eq 0 ] || { echo "matrix: run as root (debootstrap, chroot, mounts)" >&2; exit 1; }

# The Debian mirror this machine's apt uses (the chroots reach only that),
# and its security archive.
mirror() {
	[ -z "${MIRROR:-}" ] || { echo "$MIRROR"; return; }
	apt-get indextargets --format '$(REPO_URI) $(RELEASE)' |
		awk '$2 !~ /-(security|updates|backports)$/ { print $1; exit }'
}
security_mirror() {
	local uri
	uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' | awk '$2 ~ /-security$/ { print $1; exit }')
	echo "${uri:-$(mirror | sed 's,/debian/*$,/debian-security/,')}"
}

# The apt sources of an installed Debian release: the suite, its updates
# and security updates (testing has neither).
sources() {
	echo "deb $(mirror) $1 main"
	case $1 in
	testing | unstable | sid) ;;
	*) echo "deb $(mirror) $1-updates main"
	   echo "deb $(security_mirror) $1-security main" ;;
	esac
}

# Runs a shell command in a throwaway overlay over the cached root file
# system of a suite; packages it downloads are kept for the next run.
run_in_root() {
	local suite=$1 command=$2 work
	work=$(mktemp -d /var/tmp/coherence-matrix.XXXXXX)
	mkdir "$work/upper" "$work/work" "$work/root"
	local rc=0
	mkdir -p "$cache/$suite.archives"
	unshare --mount --pid --fork --propagation private \
		"$self" --inside "$cache/$suite" "$work" "$cache/$suite.archives" "$command" || rc=$?
	rm -rf --one-file-system "$work"
	return $rc
}

# Runs a shell command as root directly in the cached root file system (for
# apt-get), in its own namespaces like run_in_root.
run_in_cache() {
	local root=$cache/$1 command=$2
	unshare --mount --pid --fork --propagation private /bin/bash -euc '
		root=$1; shift
		mount -t proc proc "$root/proc"
		mount --bind /dev "$root/dev"
		mount --bind /dev/pts "$root/dev/pts"
		cp /etc/resolv.conf "$root/etc/resolv.conf"
		exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
			DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 /bin/bash -euc "$1"' - "$root" "$command"
}

# Makes the cached root file system of a suite, or brings it up to date.
# Services never start in it, PostgreSQL creates no default cluster, and apt
# checks release dates as this machine's apt does (the archive this machine
# reaches may serve a testing whose Valid-Until has passed). With --deps it
# also gets what scripts/deps.sh installs, packaging tools included; the
# clean Debian 12 of the package test stays minbase. apt's output goes to
# $cache/<suite>.log.
refresh_root() {
	local suite=$1 deps=${2:-} root=$cache/$1 log=$cache/$1.log started=$SECONDS
	if [ ! -d "$root" ]; then
		echo "matrix: debootstrap $suite from $(mirror)"
		rm -rf --one-file-system "$root.new"
		debootstrap --variant=minbase "$suite" "$root.new" "$(mirror)" >"$log" 2>&1 ||
			{ tail -20 "$log" >&2; return 1; }
		printf '#!/bin/sh\nexit 101\n' >"$root.new/usr/sbin/policy-rc.d"
		chmod +x "$root.new/usr/sbin/policy-rc.d"
		mkdir -p "$root.new/etc/postgresql-common/createcluster.d"
		echo 'create_main_cluster = false' >"$root.new/etc/postgresql-common/createcluster.d/matrix.conf"
		mv "$root.new" "$root"
		echo "matrix: debootstrap $suite took $((SECONDS - started))s"
	fi
	sources "$suite" >"$root/etc/apt/sources.list"
	local valid_until=true
	eval "$(apt-config shell valid_until Acquire::Check-Valid-Until)"
	printf 'APT::Install-Recommends "false";\nAcquire::Check-Valid-Until "%s";\n' "$valid_until" \
		>"$root/etc/apt/apt.conf.d/90matrix"
	local update='apt-get update -qq && apt-get upgrade -y -qq'
	if [ "$deps" = --deps ]; then
		cp "$top/scripts/deps.sh" "$root/tmp/deps.sh"
		update+=' && /tmp/deps.sh && /tmp/deps.sh --deb && rm /tmp/deps.sh'
	fi
	run_in_cache "$suite" "$update && apt-get clean" >>"$log" 2>&1 ||
		{ tail -20 "$log" >&2; echo "matrix: apt-get failed in $suite, see $log" >&2; return 1; }
	echo "matrix: $suite root file system ready in $((SECONDS - started))s"
}

# Runs one row while holding the cache of its suite: exclusively while
# apt-get changes it, shared while the row reads it. Adds the row's verdict
# and time to the results.
row() {
	local name=$1 suite=$2 started=$SECONDS rc=0 lock deps=--deps
	if [ "$name" = packages ]; then
		make -s -C "$top" deb || rc=$?
		deps=
	fi
	mkdir -p "$cache"
	exec {lock}>"$cache/$suite.lock"
	flock "$lock"
	[ $rc -ne 0 ] || refresh_root "$suite" $deps || rc=$?
	flock -s "$lock"
	if [ $rc -eq 0 ]; then
		case $name in
		packages) run_in_root "$suite" 'scripts/deb-test.sh /src/debs' || rc=$? ;;
		*) run_in_root "$suite" 'echo "matrix: $(. /etc/os-release; echo "$PRETTY_NAME"), $(pg_config --version), libpqxx $(pkg-config --modversion libpqxx)"; make test && make deb' || rc=$? ;;
		esac
	fi
	exec {lock}>&-
	local verdict=passed
	[ $rc -eq 0 ] || verdict="FAILED (exit $rc)"
	results+=("$(printf '%-9s %-8s %s in %dm%02ds' "$name" "$suite" "$verdict" $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)))")
	return $rc
}

"$top/scripts/deps.sh" --matrix
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(trixie testing packages)
results=()
failed=0
for name in "${rows[@]}"; do
	case $name in
	trixie | testing) row "$name" "$name" || failed=1 ;;
	packages) row packages bookworm || failed=1 ;;
	*) echo "matrix: unknown row $name (trixie, testing, packages)" >&2; exit 2 ;;
	esac
done
echo "== matrix"
printf '%s\n' "${results[@]}"
exit $failed
