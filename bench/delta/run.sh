#!/usr/bin/env bash
# Delta engine throughput vs stock rsync on the same files.
#
#   bench/delta/run.sh [MiB=1024] [changed KiB=1024] [checksum=xxh128]
#
# Runs the rtsync-delta example (signature + match + patch, sequentially, one core) and then
# stock `rsync --no-whole-file` (temp file + rename, like our patch writing a full output) updating a copy of the basis to the new file (its generator,
# sender and receiver run as three processes). Prints both and the ratio. Needs ~3x MiB of
# free space in $BENCH_DIR (default: a temporary directory, removed afterwards).
set -euo pipefail
mib=${1:-1024}
kib=${2:-1024}
kind=${3:-xxh128}
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${BENCH_DIR:-$(mktemp -d)}
trap '[ -z "${BENCH_DIR:-}" ] && rm -rf "$dir"' EXIT

cargo build --release -q --manifest-path "$root/Cargo.toml" -p rtsync-delta --example delta_bench
echo "== rtsync-delta"
BENCH_DIR=$dir "$root/target/release/examples/delta_bench" "$mib" "$kib" "$kind" | tee "$dir/ours.txt"
ours=$(awk '/^total/ {print $2}' "$dir/ours.txt")

echo "== stock $(rsync --version | head -1)"
mkdir -p "$dir/src" "$dir/dst"
mv "$dir/delta_bench.new" "$dir/src/f"
mv "$dir/delta_bench.basis" "$dir/dst/f"
touch -d 2000-01-01 "$dir/dst/f"
start=$(date +%s.%N)
rsync --no-whole-file --checksum-choice="$kind" --stats "$dir/src/f" "$dir/dst/f" |
    grep -E 'Literal data|Matched data'
end=$(date +%s.%N)
stock=$(echo "$end - $start" | bc -l)
cmp "$dir/src/f" "$dir/dst/f"
printf 'stock rsync total %.2f s\n' "$stock"
printf 'ratio stock/rtsync-delta: %.2fx\n' "$(echo "$stock / $ours" | bc -l)"
