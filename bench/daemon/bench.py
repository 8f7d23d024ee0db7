#!/usr/bin/env python3
"""Daemon benchmark: N concurrent stock rsync clients each push F small files to a daemon.

Runs the same workload against stock `rsync --daemon` and `rtsync daemon` (same rsyncd.conf,
loopback only, random free ports) and prints wall time and peak memory (summed RSS of the
daemon's whole process tree, sampled) with the rtsync/stock ratios. Every client must succeed;
failures are reported and make the exit status non-zero.

Usage: bench/daemon/bench.py [--clients 20] [--files 5000] [--rtsync target/release/rtsync]
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CONF = """\
use chroot = yes
uid = root
gid = root
pid file = {dir}/daemon.pid
lock file = {dir}/lock
max connections = 0
[bench]
  path = {dir}/dest
  read only = no
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_kib(root_pid):
    """Summed VmRSS of root_pid and all its descendants."""
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(pid))
        except (OSError, ValueError, IndexError):
            pass
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def wait_port(port, proc):
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"daemon exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.recv(100)
                s.sendall(b"@RSYNCD: 32.0 md5\n#list\n")
                while s.recv(4096):
                    pass
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("daemon did not start")


def run(kind, daemon_cmd, src, clients, rsync):
    work = tempfile.mkdtemp(prefix=f"bench-{kind}-")
    os.mkdir(os.path.join(work, "dest"))
    conf = os.path.join(work, "rsyncd.conf")
    with open(conf, "w") as f:
        f.write(CONF.format(dir=work))
    port = free_port()
    proc = subprocess.Popen(daemon_cmd + ["--no-detach", f"--config={conf}", f"--port={port}",
                                          "--address=127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss_kib(proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        start = time.time()
        procs = [subprocess.Popen([rsync, "-a", f"{src}/", f"rsync://127.0.0.1:{port}/bench/c{i}/"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for i in range(clients)]
        results = [(p.wait(), p.stderr.read().decode(errors="replace")) for p in procs]
        wall = time.time() - start
        done.set()
        sampler.join()
        failures = [(i, rc, err) for i, (rc, err) in enumerate(results) if rc != 0]
        return wall, peak[0], failures
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--rsync", default="/usr/bin/rsync")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--rtsync", default=os.path.join(here, "..", "..", "target", "release", "rtsync"))
    a = ap.parse_args()
    if not os.path.exists(a.rsync):
        raise SystemExit(f"stock rsync not found at {a.rsync}")
    if not os.path.exists(a.rtsync):
        raise SystemExit(f"rtsync not found at {a.rtsync} (cargo build --release -p rtsync)")
    src = tempfile.mkdtemp(prefix="bench-src-")
    try:
        for i in range(a.files):
            d = os.path.join(src, f"d{i // 500:02d}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"f{i:05d}"), "wb") as f:
                f.write(os.urandom(64 + (i * 37) % 4000))
        stock = run("stock", [a.rsync, "--daemon"], src, a.clients, a.rsync)
        ours = run("rtsync", [a.rtsync, "daemon"], src, a.clients, a.rsync)
    finally:
        shutil.rmtree(src, ignore_errors=True)
    print(f"{a.clients} clients x {a.files} files pushed over loopback")
    print(f"{'':8} {'wall s':>8} {'peak MiB':>9} {'failed':>7}")
    for name, (wall, peak, fails) in (("stock", stock), ("rtsync", ours)):
        print(f"{name:8} {wall:8.2f} {peak / 1024:9.1f} {len(fails):7d}")
    print(f"ratio    wall {ours[0] / stock[0]:.2f}  peak memory {ours[1] / max(stock[1], 1):.2f}"
          "  (goal: wall <= 0.8, every client succeeds)")
    for name, (_, _, fails) in (("stock", stock), ("rtsync", ours)):
        for i, rc, err in fails[:3]:
            print(f"{name} client {i} exit {rc}: {err.strip().splitlines()[-1] if err.strip() else ''}")
    return 1 if stock[2] or ours[2] else 0


if __name__ == "__main__":
    sys.exit(main())
