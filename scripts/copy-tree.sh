#!/usr/bin/env bash
# Copies the source tree into DIR: tracked files and untracked ones that git
# does not ignore, as they are in the working tree, so builds elsewhere see
# uncommitted work but none of this tree's build output.
#
#   scripts/copy-tree.sh DIR
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
git -C "$top" ls-files -z --cached --others --exclude-standard |
	(cd "$top" && while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) |
	tar -C "$top" --null -T - -cf - | tar -C "$1" -xf -
