#!/usr/bin/env bash
# Push benchmark against a stock `rsync --daemon` on loopback: rtsync client vs stock client,
# side by side in one run.
#   1. initial push of 100k small files (-a)
#   2. a 1 GiB file with 1 MiB changed in the middle (-a --no-whole-file; the daemon holds the
#      old version)
# Prints wall time and the client's peak RSS, and the rtsync/stock ratios (goal: <= 0.8).
# Usage: bench/net/push.sh [WORKDIR]   (FILES=100000 and BIG_MIB=1024 can be overridden)
set -euo pipefail
cd "$(dirname "$0")/../.."
FILES=${FILES:-100000}
BIG_MIB=${BIG_MIB:-1024}
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
  /usr/bin/time -o "$tf" -f '%e %M' "$@" >/dev/null 2>&1 || echo "warning: $1 exited non-zero" >&2
  tail -1 "$tf"; rm -f "$tf"
}
report() {
  python3 - "$@" <<'PY'
import sys
name, st, sm, rt, rm = sys.argv[1], *map(float, sys.argv[2:])
print(f"{name:40s} stock {st:7.2f}s {sm/1024:7.1f}MiB | rtsync {rt:7.2f}s {rm/1024:7.1f}MiB "
      f"| time ratio {rt/max(st,1e-3):.2f}  mem ratio {rm/max(sm,1):.2f}")
PY
}
case_small() {
  rm -rf "$WORK/mod/small-$1"
}
case_big() {
  mkdir -p "$WORK/mod/big-$1"; cp "$WORK/big.orig" "$WORK/mod/big-$1/big"
  touch -d '2001-01-01' "$WORK/mod/big-$1/big"
}
echo
case_small stock; read -r st sm <<<"$(measure rsync -a "$WORK/small/" "$URL/small-stock/")"
case_small ours;  read -r rt rm <<<"$(measure "$RTSYNC" rsync -a "$WORK/small/" "$URL/small-ours/")"
report "push 100k small files, initial" "$st" "$sm" "$rt" "$rm"
case_big stock; read -r st sm <<<"$(measure rsync -a --no-whole-file "$WORK/big" "$URL/big-stock/")"
case_big ours;  read -r rt rm <<<"$(measure "$RTSYNC" rsync -a --no-whole-file "$WORK/big" "$URL/big-ours/")"
report "push 1 GiB, 1 MiB changed, --no-whole-file" "$st" "$sm" "$rt" "$rm"
cmp "$WORK/mod/big-stock/big" "$WORK/mod/big-ours/big" && echo "big file: identical results"
diff -r "$WORK/mod/small-stock" "$WORK/mod/small-ours" >/dev/null && echo "small files: identical results"
