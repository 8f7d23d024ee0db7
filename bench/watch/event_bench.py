#!/usr/bin/env python3
"""Event throughput: stock `inotifywait -m -r` against `rtsync inotifywait -m -r`.

The watcher is frozen (SIGSTOP) while N files are created in the watched directory, so that
N events wait in the kernel queue (N must stay below fs.inotify.max_queued_events); then it is
resumed and the time until it has printed the last CREATE is measured, with the CPU time it
used. Medians of --runs runs; ratios to stock.

Usage: bench/watch/event_bench.py [--files N] [--runs R] [--rtsync PATH]
"""
import argparse, os, shutil, signal, statistics, subprocess, tempfile, time

def measure(cmd, root, n):
    p = subprocess.Popen(cmd + ["-m", "-r", "-e", "create", root],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buf = b""
    while b"Watches established." not in buf:
        chunk = p.stderr.read1(4096)
        if not chunk:
            raise SystemExit(f"{cmd} exited early: {buf!r}")
        buf += chunk
    last = f"CREATE last\n".encode()
    p.send_signal(signal.SIGSTOP)
    for i in range(n):
        open(os.path.join(root, f"f{i}"), "w").close()
    open(os.path.join(root, "last"), "w").close()
    cpu0 = cpu_seconds(p.pid)
    start = time.monotonic()
    p.send_signal(signal.SIGCONT)
    out = b""
    while not out.endswith(last):
        chunk = p.stdout.read1(1 << 16)
        if not chunk:
            break
        out += chunk
    elapsed = time.monotonic() - start
    cpu = cpu_seconds(p.pid) - cpu0
    p.terminate()
    p.wait()
    return elapsed, cpu, out.count(b"\n")

def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=15000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rtsync", default=os.path.join(repo, "target/release/rtsync"))
    args = ap.parse_args()
    stock = shutil.which("inotifywait")
    if not stock:
        raise SystemExit("stock inotifywait is required (install inotify-tools)")
    tools = [("stock inotifywait", [stock]), ("rtsync inotifywait", [args.rtsync, "inotifywait"])]
    results = {}
    for name, cmd in tools:
        runs = []
        for _ in range(args.runs):
            tmp = tempfile.mkdtemp(prefix="rtsync-event-bench-")
            try:
                runs.append(measure(cmd, tmp, args.files))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        results[name] = tuple(statistics.median(r[i] for r in runs) for i in range(3))
    base_t, base_c, _ = results["stock inotifywait"]
    print(f"{args.files + 1} queued events, {args.runs} runs each")
    print(f"{'tool':20} {'wall s':>8} {'cpu s':>7} {'lines':>7} {'wall ratio':>11} {'cpu ratio':>10}")
    for name, (t, c, lines) in results.items():
        print(f"{name:20} {t:8.3f} {c:7.2f} {lines:7.0f} {t / base_t:11.2f} {c / max(base_c, 0.01):10.2f}")

if __name__ == "__main__":
    main()
