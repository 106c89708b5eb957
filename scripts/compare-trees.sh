#!/usr/bin/env bash
# compare-trees.sh A B: fails unless the two directory trees are identical: the same paths, the same
# types, modes and symlink targets, and byte-identical files. Used by `make repro`.
set -euo pipefail
a=$1 b=$2
list() { (cd "$1" && find . -printf '%p %y %m %l\n' | LC_ALL=C sort); }
if ! diff <(list "$a") <(list "$b") >/tmp/compare-trees.$$; then
  echo "repro: $a and $b differ in their paths, types, modes or links:" >&2
  head -40 /tmp/compare-trees.$$ >&2
  rm -f /tmp/compare-trees.$$
  exit 1
fi
rm -f /tmp/compare-trees.$$
n=0
while IFS= read -r -d '' f; do
  if ! cmp -s "$a/$f" "$b/$f"; then
    echo "repro: $f DIFFERS" >&2
    n=$((n + 1))
  fi
done < <(cd "$a" && find . -type f -print0)
if [ "$n" -ne 0 ]; then
  echo "repro: $n files differ between $a and $b" >&2
  exit 1
fi
echo "repro: $a and $b are identical ($(cd "$a" && find . -type f | wc -l) files)"
