#!/usr/bin/env bash
# Local-copy benchmark: rtsync rsync vs stock rsync, side by side in one run.
#   1. initial copy of 100k small files (-a)
#   2. the no-change re-run (-a)
#   3. a 1 GiB file with 1 MiB changed in the middle (-a --no-whole-file)
# Prints wall time and peak RSS for each tool and the rtsync/stock ratios (< 1.0: rtsync wins).
# Usage: bench/local.sh [WORKDIR]   (FILES=100000 and BIG_MIB=1024 can be overridden)
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-100000}
BIG_MIB=${BIG_MIB:-1024}
WORK=${1:-$(mktemp -d /tmp/rtsync-bench-local.XXXXXX)}
command -v rsync >/dev/null || { echo "stock rsync is required (apt-get install rsync)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time is required (apt-get install time)" >&2; exit 1; }
cargo build --release -q
RTSYNC=$PWD/target/release/rtsync

mkdir -p "$WORK"
echo "work dir: $WORK"
if [ ! -d "$WORK/small" ]; then
  echo "creating $FILES small files..."
  python3 - "$WORK/small" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
per_dir = 1000
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // per_dir))
    if i % per_dir == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.txt" % i), "wb") as f:
        f.write(os.urandom(64 + (i * 37) % 4000))
PY
fi
if [ ! -f "$WORK/big/file" ]; then
  echo "creating a $BIG_MIB MiB file..."
  mkdir -p "$WORK/big"
  head -c $((BIG_MIB << 20)) /dev/urandom > "$WORK/big/file"
fi

# measure LABEL CMD... -> prints "seconds maxrss_kib"
measure() {
  local tf; tf=$(mktemp)
  /usr/bin/time -o "$tf" -f '%e %M' "$@" >/dev/null 2>&1 || echo "warning: $1 exited non-zero" >&2
  tail -1 "$tf"; rm -f "$tf"
}

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

report() {
  local name=$1 s=$2 r=$3
  read -r st sm <<<"$s"; read -r rt rm <<<"$r"
  python3 - "$name" "$st" "$sm" "$rt" "$rm" <<'PY'
import sys
name, st, sm, rt, rm = sys.argv[1], *map(float, sys.argv[2:])
print(f"{name:34s} stock {st:7.2f}s {sm/1024:7.1f}MiB | rtsync {rt:7.2f}s {rm/1024:7.1f}MiB "
      f"| time ratio {rt/max(st,1e-3):.2f}  mem ratio {rm/max(sm,1):.2f}")
PY
}

run_case() {
  local name=$1; shift
  local setup=$1; shift
  # Same preparation before each tool, same arguments; destination in the work dir.
  eval "$setup stock"; drop_caches
  local s; s=$(measure rsync "$@" "$WORK/dst-stock/")
  eval "$setup ours"; drop_caches
  local r; r=$(measure "$RTSYNC" rsync "$@" "$WORK/dst-ours/")
  report "$name" "$s" "$r"
}

fresh() { rm -rf "$WORK/dst-$1"; }
keep() { :; }
big_old() {
  # The destination holds the old version (the source has 1 MiB changed in the middle).
  rm -rf "$WORK/dst-$1"; mkdir -p "$WORK/dst-$1"
  cp "$WORK/big/file.orig" "$WORK/dst-$1/file"
  touch -d '2001-01-01' "$WORK/dst-$1/file"
}

echo
run_case "100k small files, initial copy" fresh -a "$WORK/small/"
run_case "100k small files, no-change re-run" keep -a "$WORK/small/"
cp "$WORK/big/file" "$WORK/big/file.orig"
dd if=/dev/urandom of="$WORK/big/file" bs=1M count=1 seek=$((BIG_MIB / 2)) conv=notrunc status=none
run_case "1 GiB, 1 MiB changed, --no-whole-file" big_old -a --no-whole-file "$WORK/big/file"
mv "$WORK/big/file.orig" "$WORK/big/file"
