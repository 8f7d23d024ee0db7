#!/usr/bin/env python3
"""Small-file latency on loopback: one changed small file pushed (and pulled) through a stock
rsync daemon, by the stock client, the stock client with TCP_NODELAY, and rtsync's client.

Usage: bench/net/latency.py [--rtsync target/release/rtsync] [--iterations 30]

Prints median and 90th percentile wall time per case, process start included. The point is
DESIGN.md's latency trap: a client that leaves Nagle on (or writes in many small pieces)
pays two ~40 ms delayed-ACK stalls per transfer; rtsync sets TCP_NODELAY and coalesces.
Only loopback is used.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_daemon(rsync, root, modules):
    conf = os.path.join(root, "rsyncd.conf")
    with open(conf, "w") as f:
        f.write("use chroot = no\nreverse lookup = no\n")
        if os.geteuid() == 0:
            f.write("uid = root\ngid = root\n")
        f.write(f"log file = {root}/rsyncd.log\n")
        for name, path in modules:
            f.write(f"[{name}]\npath = {path}\nread only = false\n")
    port = free_port()
    proc = subprocess.Popen(
        [rsync, "--daemon", "--no-detach", f"--config={conf}", f"--port={port}",
         "--address=127.0.0.1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.02)
    proc.kill()
    sys.exit("stock rsync daemon did not start")


def timed(cmd, iterations, before):
    samples = []
    for i in range(iterations):
        before(i)
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples.append((time.perf_counter() - t) * 1000)
        if r.returncode != 0:
            sys.exit(f"{cmd} failed: {r.stderr.decode(errors='replace')}")
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9) - 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rsync", default="/usr/bin/rsync")
    ap.add_argument("--rtsync", default="target/release/rtsync")
    ap.add_argument("--iterations", type=int, default=30)
    a = ap.parse_args()
    if not shutil.which(a.rsync):
        sys.exit(f"stock rsync not found: {a.rsync}")
    work = tempfile.mkdtemp(prefix="rtsync-latency-")
    src = os.path.join(work, "src")
    dst = os.path.join(work, "dst")
    os.makedirs(src)
    os.makedirs(dst)
    f = os.path.join(src, "small.txt")
    daemon, port = start_daemon(a.rsync, work, [("dst", dst), ("src", src)])

    def touch(i):
        with open(f, "w") as fh:
            fh.write(f"change {i} {time.time()}\n")

    push_url = f"rsync://127.0.0.1:{port}/dst/"
    pull_url = f"rsync://127.0.0.1:{port}/src/small.txt"
    pulled = os.path.join(work, "pulled.txt")
    cases = [
        ("push, stock client", [a.rsync, "-a", f, push_url]),
        ("push, stock client + TCP_NODELAY", [a.rsync, "-a", "--sockopts=TCP_NODELAY", f, push_url]),
        ("pull, stock client", [a.rsync, "-a", pull_url, pulled]),
    ]
    if os.path.exists(a.rtsync):
        cases += [
            ("push, rtsync client", [a.rtsync, "rsync", "-a", f, push_url]),
            ("pull, rtsync client", [a.rtsync, "rsync", "-a", pull_url, pulled]),
        ]
    else:
        print(f"(rtsync binary {a.rtsync} not found: build it with cargo build --release)")
    try:
        print(f"{'case':40} {'median ms':>10} {'p90 ms':>10}")
        for name, cmd in cases:
            med, p90 = timed(cmd, a.iterations, touch)
            print(f"{name:40} {med:10.1f} {p90:10.1f}")
    finally:
        daemon.kill()
        daemon.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
