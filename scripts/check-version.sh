#!/usr/bin/env bash
# Checks that the files naming the release version agree with
# coherence.control's default_version: META.json (a semantic version, so 1.2
# is 1.2.0) and debian/changelog. Prints the version.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" coherence.control)
semver=$version
[[ $semver =~ ^[0-9]+\.[0-9]+$ ]] && semver+=.0

meta=$(perl -MJSON::PP -e 'local $/; my $m = decode_json(<STDIN>);
	print "$m->{version} $m->{provides}{coherence}{version}"' <META.json)
changelog=$(sed -n '1s/^coherence (\([^)]*\)).*/\1/p' debian/changelog)

ok=true
[ "$meta" = "$semver $semver" ] ||
	{ echo "META.json: version and provides.coherence.version are $meta, coherence.control says $version: set both to $semver" >&2; ok=false; }
[ "$changelog" = "$version" ] ||
	{ echo "debian/changelog: top entry is $changelog, coherence.control says $version: add an entry for $version (dch -v $version)" >&2; ok=false; }
$ok
echo "$version"
