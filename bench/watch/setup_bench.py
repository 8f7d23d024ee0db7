#!/usr/bin/env python3
"""Set-up cost of watching a large tree: stock `inotifywait -r` against `rtsync inotifywait -r`
and the rtsync-watch library (`watchtree` example), side by side.

Measures, per tool, the wall time from spawn until "Watches established." appears on stderr
and the peak resident memory (VmHWM) at that point; prints medians and ratios to stock.

Usage: bench/watch/setup_bench.py [--dirs N] [--runs R] [--rtsync PATH] [--watchtree PATH]
Build first: cargo build --release -p rtsync; cargo build --release -p rtsync-watch --example watchtree
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

def make_tree(root, n):
    # Three levels: 10 x 100 x (n / 1000) leaves, plus the inner directories.
    per = max(1, n // 1000)
    count = 0
    for a in range(10):
        for b in range(100):
            base = os.path.join(root, f"a{a}", f"b{b}")
            for c in range(per):
                os.makedirs(os.path.join(base, f"c{c}"))
                count += 1
    return count + 10 + 1000 + 1

def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1

def measure(cmd):
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = b""
    while b"Watches established." not in seen:
        chunk = p.stderr.read1(4096)
        if not chunk:
            raise SystemExit(f"{cmd[0]} exited early: {seen.decode(errors='replace')}")
        seen += chunk
    elapsed = time.monotonic() - start
    rss = peak_rss_kib(p.pid)
    p.terminate()
    p.wait()
    return elapsed, rss

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser()
    ap.add_argument("--dirs", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rtsync", default=os.path.join(repo, "target/release/rtsync"))
    ap.add_argument("--watchtree", default=os.path.join(repo, "target/release/examples/watchtree"))
    args = ap.parse_args()
    stock = shutil.which("inotifywait")
    if not stock:
        raise SystemExit("stock inotifywait is required (install inotify-tools)")
    tmp = tempfile.mkdtemp(prefix="rtsync-watch-bench-")
    try:
        root = os.path.join(tmp, "tree")
        ndirs = make_tree(root, args.dirs)
        limit = int(open("/proc/sys/fs/inotify/max_user_watches").read())
        if limit < ndirs + 1000:
            raise SystemExit(f"fs.inotify.max_user_watches={limit} is below {ndirs}; raise it")
        tools = [
            ("stock inotifywait -r", [stock, "-r", root]),
            ("rtsync inotifywait -r", [args.rtsync, "inotifywait", "-r", root]),
            ("rtsync-watch Watcher", [args.watchtree, root]),
        ]
        print(f"tree: {ndirs} directories; {args.runs} runs each (after one warm-up run)")
        results = {}
        for name, cmd in tools:
            if not os.path.exists(cmd[0]):
                print(f"{name}: {cmd[0]} missing, skipped")
                continue
            measure(cmd)  # warm the dentry cache the same way for everyone
            runs = [measure(cmd) for _ in range(args.runs)]
            results[name] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        base_t, base_m = results["stock inotifywait -r"]
        print(f"{'tool':24} {'setup s':>9} {'peak RSS KiB':>13} {'time ratio':>11} {'mem ratio':>10}")
        for name, (t, m) in results.items():
            print(f"{name:24} {t:9.3f} {m:13.0f} {t / base_t:11.2f} {m / base_m:10.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
