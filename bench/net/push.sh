#!/usr/bin/env bash
# Push benchmark against a stock `rsync --daemon` on loopback: rtsync client vs stock client,
# side by side in one run.
#   1. initial push of 100k small files (-a)
#   2. a 1 GiB file with 1 MiB changed in the middle (-a --no-whole-file; the daemon holds the
#      old version)
# Prints wall time, the client's peak RSS and CPU time, and the rtsync/stock ratios (goal: <= 0.8).
# In case 1 the receiving stock daemon does the same work whichever client feeds it (same syscall
# counts under `strace -c -f`) and the client's own CPU time is a few percent of the wall time:
# the wall-time ratio there is bound near 1 by the daemon; the client cpu ratio shows the client.
# The receiving daemon's file creation dominates case 1 and is noisy on a shared machine:
# RUNS=N alternates which client goes first and reports the median time and the largest RSS.
# Usage: bench/net/push.sh [WORKDIR]   (FILES=100000, BIG_MIB=1024, RUNS=1 and CASES="small big"
# can be overridden)
set -euo pipefail
cd "$(dirname "$0")/../.."
FILES=${FILES:-100000}
BIG_MIB=${BIG_MIB:-1024}
RUNS=${RUNS:-1}
CASES=${CASES:-small big}
WORK=${1:-$(mktemp -d /tmp/rtsync-bench-net.XXXXXX)}
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
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.txt" % i), "wb") as f:
        f.write(os.urandom(64 + (i * 37) % 4000))
PY
fi
if [ ! -f "$WORK/big.orig" ]; then
  echo "creating a $BIG_MIB MiB file..."
  head -c $((BIG_MIB << 20)) /dev/urandom > "$WORK/big.orig"
  cp "$WORK/big.orig" "$WORK/big"
  dd if=/dev/urandom of="$WORK/big" bs=1M count=1 seek=$((BIG_MIB / 2)) conv=notrunc status=none
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/mod"
cat > "$WORK/rsyncd.conf" <<CONF
pid file = $WORK/rsyncd.pid
use chroot = no
[m]
  path = $WORK/mod
  read only = no
  uid = root
  gid = root
CONF
rsync --daemon --no-detach --config="$WORK/rsyncd.conf" --port="$PORT" --address=127.0.0.1 &
DAEMON=$!
trap 'kill $DAEMON 2>/dev/null || true' EXIT
sleep 0.5
URL="rsync://127.0.0.1:$PORT/m"

measure() {
  local tf; tf=$(mktemp)
  /usr/bin/time -o "$tf" -f '%e %M %U %S' "$@" >/dev/null 2>&1 || echo "warning: $1 exited non-zero" >&2
  # wall seconds, peak RSS (KiB), and the client's own CPU seconds (user + system)
  tail -1 "$tf" | awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }'; rm -f "$tf"
}
report() {
  python3 - "$@" <<'PY'
import sys
name, st, sm, sc, rt, rm, rc = sys.argv[1], *map(float, sys.argv[2:])
print(f"{name:40s} stock {st:7.2f}s {sm/1024:7.1f}MiB {sc:6.2f}s cpu "
      f"| rtsync {rt:7.2f}s {rm/1024:7.1f}MiB {rc:6.2f}s cpu "
      f"| time ratio {rt/max(st,1e-3):.2f}  mem ratio {rm/max(sm,1):.2f}  "
      f"client cpu ratio {rc/max(sc,1e-2):.2f}")
PY
}
# Each case prepares the daemon side for client $1, run $2, and prints the target directory.
# A small-files run gets a fresh directory, removed only at the end: deleting 100k files
# just before creating 100k more slows ext4's inode allocation (recently deleted inodes are
# skipped) for minutes, which would penalise whichever client runs next.
case_small() {
  echo "small-$1-$2"
}
case_big() {
  mkdir -p "$WORK/mod/big-$1"; cp "$WORK/big.orig" "$WORK/mod/big-$1/big"
  touch -d '2001-01-01' "$WORK/mod/big-$1/big"
  echo "big-$1"
}
# Runs case $1 for both clients RUNS times, alternating the order; prints the four values.
compare() {
  local case=$1; shift
  local stock_cmd=$1 ours_cmd=$2 i st sm sc rt rm rc dest
  local sts=() sms=() scs=() rts=() rms=() rcs=()
  for ((i = 0; i < RUNS; i++)); do
    for who in $( ((i % 2)) && echo "ours stock" || echo "stock ours"); do
      dest=$("case_$case" "$who" "$i")
      if [ "$who" = stock ]; then
        read -r st sm sc <<<"$(measure $stock_cmd "$URL/$dest/")"
        sts+=("$st"); sms+=("$sm"); scs+=("$sc")
      else
        read -r rt rm rc <<<"$(measure $ours_cmd "$URL/$dest/")"
        rts+=("$rt"); rms+=("$rm"); rcs+=("$rc")
      fi
    done
  done
  python3 - "${sts[*]}" "${sms[*]}" "${scs[*]}" "${rts[*]}" "${rms[*]}" "${rcs[*]}" <<'PY'
import statistics, sys
t = lambda s: statistics.median(map(float, s.split()))
m = lambda s: max(map(float, s.split()))
a = sys.argv
print(t(a[1]), m(a[2]), t(a[3]), t(a[4]), m(a[5]), t(a[6]))
PY
}
echo
if [[ " $CASES " == *" small "* ]]; then
  report "push $FILES small files, initial" \
    $(compare small "rsync -a $WORK/small/" "$RTSYNC rsync -a $WORK/small/")
  diff -r "$WORK/mod/small-stock-0" "$WORK/mod/small-ours-0" >/dev/null && echo "small files: identical results"
  rm -rf "$WORK"/mod/small-*
fi
if [[ " $CASES " == *" big "* ]]; then
  report "push $BIG_MIB MiB, 1 MiB changed, --no-whole-file" \
    $(compare big "rsync -a --no-whole-file $WORK/big" "$RTSYNC rsync -a --no-whole-file $WORK/big")
  cmp "$WORK/mod/big-stock/big" "$WORK/mod/big-ours/big" && echo "big file: identical results"
fi
