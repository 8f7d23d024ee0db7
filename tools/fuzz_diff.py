#!/usr/bin/env python3
"""Differential fuzzer: rtsync vs stock rsync across roles and option sets.

Builds random trees and stale destinations, runs the same command through stock rsync and
rtsync in each role (local; our client pushing/pulling over a stand-in ssh and to a stock
daemon; a stock client against `rtsync rsync --server` and against `rtsync daemon`) and prints
every difference in exit code, stdout, stderr, destination and source trees. Not a test (it
asserts nothing and runs long): a tool for finding what the differential tests miss.

    RT=target/release/rtsync-as-rsync-link PYTHONHASHSEED=0 python3 tools/fuzz_diff.py [ROLES] [N]

RT must be a link named `rsync` to target/release/rtsync (the binary behaves as rsync then);
ROLES is a comma-separated subset of the roles below; OPTS (environment) limits the option sets,
OPTSET=more runs the second list (rarer options) instead, OPTSET=shapes the third (source
shapes: several sources, no trailing slash, --files-from, -R with /./); TREE=rich adds odd
names (newlines, backslashes, non-UTF-8), fifos, a deep chain and kind swaps to the trees;
PROTO=N adds --protocol=N to every option set.
Daemons listen on 127.0.0.1 only. Work happens under $FUZZ_DIR (default /tmp/rtsync-fuzz).
"""
import os, sys, subprocess, shutil, random, re, stat, time, signal
RT = os.environ.get('RT', 'rsync-under-test')
ST = '/usr/bin/rsync'
WORK = os.environ.get('FUZZ_DIR', '/tmp/rtsync-fuzz')
BASE = WORK + '/w'
SSH = WORK + '/fake-ssh'


def make_fake_ssh():
    """A stand-in for ssh: drops the host and runs the command locally."""
    os.makedirs(WORK, exist_ok=True)
    with open(SSH, 'w') as f:
        f.write('#!/bin/sh\nshift\nexec sh -c "$*"\n')
    os.chmod(SSH, 0o755)
PORT_ST, PORT_RT = 28741, 28742

def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, **kw)

def mktree(root, rng):
    os.makedirs(root, exist_ok=True)
    dirs = [root]
    for i in range(rng.randint(3, 25)):
        d = rng.choice(dirs)
        kind = rng.random()
        name = rng.choice(['a', 'b', 'c', 'dir', 'x y', 'f.txt', 'g.o', 'h~', '.hid', 'z', 'sub', 'k.log', 'é'])+str(rng.randint(0,9))
        p = os.path.join(d, name)
        if os.path.lexists(p):
            continue
        if kind < 0.25:
            os.mkdir(p); dirs.append(p)
        elif kind < 0.85:
            with open(p, 'wb') as f:
                n = rng.choice([0, 1, 100, 700, 5000, 70000, 300000])
                f.write(bytes(rng.getrandbits(8) for _ in range(min(n, 2000))) * (n // 2000 + 1))
            os.chmod(p, rng.choice([0o644, 0o600, 0o755, 0o640]))
            t = 1600000000 + rng.randint(0, 10**7)
            os.utime(p, (t, t))
        elif kind < 0.93:
            os.symlink(rng.choice(['a1', '../x', '/etc/passwd', 'nonexist', 'sub3/f.txt2']), p)
        else:
            files = [os.path.join(dp, f) for dp, dn, fn in os.walk(root) for f in fn if os.path.isfile(os.path.join(dp, f)) and not os.path.islink(os.path.join(dp, f))]
            if files:
                os.link(rng.choice(files), p)

RICH = os.environ.get('TREE') == 'rich'
RICH_NAMES = [b'new\nline', b'back\\slash', b'star*', b'[br]', b'\xff\xferaw', b'-dash', b'sp ace ', b'q?', b'#hash', b'%pct']

def enrich(root, rng):
    """TREE=rich: odd names, fifos, empty dirs, a deep chain, files swapped for other kinds."""
    dirs = [dp for dp, dn, fn in os.walk(root)]
    for i in range(rng.randint(2, 8)):
        d = rng.choice(dirs).encode()
        p = os.path.join(d, rng.choice(RICH_NAMES) + str(rng.randint(0, 9)).encode())
        if os.path.lexists(p):
            continue
        k = rng.random()
        if k < 0.5:
            with open(p, 'wb') as f:
                f.write(b'x' * rng.choice([0, 10, 3000]))
            t = 1600000000 + rng.randint(0, 10**7)
            os.utime(p, (t, t))
        elif k < 0.7:
            os.mkfifo(p)
        elif k < 0.85:
            os.mkdir(p)
        else:
            os.symlink(rng.choice([b'new\nline1', b'../../..', b'.', b'']) or b'x', p)
    deep = os.path.join(root, 'deep')
    if rng.random() < 0.3 and not os.path.lexists(deep):
        os.makedirs(os.path.join(deep, *['d%d' % i for i in range(rng.randint(1, 12))]))

def swap_kinds(root, rng):
    """TREE=rich: some entries change kind (file <-> dir <-> symlink) between the runs."""
    for dp, dn, fn in list(os.walk(root, topdown=False)):
        for n in fn + dn:
            p = os.path.join(dp, n)
            if rng.random() >= 0.08 or not os.path.lexists(p):
                continue
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
                with open(p, 'wb') as f:
                    f.write(b'was a dir\n')
                os.utime(p, (1600000000, 1600000000))
            elif rng.random() < 0.5:
                os.unlink(p)
                os.mkdir(p)
                with open(os.path.join(p, 'inner'), 'wb') as f:
                    f.write(b'inner\n')
                os.utime(os.path.join(p, 'inner'), (1600000000, 1600000000))
            else:
                os.unlink(p)
                os.symlink('swapped', p)

def mutate(root, rng):
    for dp, dn, fn in list(os.walk(root)):
        for f in fn:
            p = os.path.join(dp, f)
            r = rng.random()
            if os.path.islink(p) or not os.path.isfile(p): continue
            if r < 0.2:
                with open(p, 'ab') as fh: fh.write(b'more data\n' * rng.randint(1, 50))
                t = 1700000000 + rng.randint(0, 10**6); os.utime(p, (t, t))
            elif r < 0.3:
                os.unlink(p)
            elif r < 0.4:
                t = 1500000000 + rng.randint(0, 10**7); os.utime(p, (t, t))
            elif r < 0.45:
                os.chmod(p, 0o600)

def snap(root):
    out = []
    if not os.path.exists(root): return ['<absent>']
    for dp, dn, fn in os.walk(root):
        dn.sort()
        for n in sorted(dn + fn):
            p = os.path.join(dp, n)
            rel = os.path.relpath(p, root)
            try:
                st = os.lstat(p)
            except OSError as err:  # (a tree too deep to name, from a symlink loop)
                out.append((rel, 'unreadable', err.errno))
                continue
            e = [rel, stat.S_IFMT(st.st_mode), oct(st.st_mode & 0o7777), st.st_uid, st.st_gid]
            if stat.S_ISLNK(st.st_mode):
                e.append(os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                e += [st.st_size, int(st.st_mtime), st.st_nlink, open(p, 'rb').read().__hash__()]
            elif stat.S_ISDIR(st.st_mode):
                pass
            out.append(tuple(e))
    return out

NUM = re.compile(rb'\d[\d,.]*')
def norm(b, tmp):
    b = b.replace(tmp.encode(), b'TMP')
    lines = []
    for l in b.splitlines():
        if l.startswith((b'sent ', b'total size', b'Total bytes', b'Literal data', b'Matched data', b'File list', b'Total transferred file size')):
            l = NUM.sub(b'N', l)
        l = re.sub(rb'\[(sender|receiver|generator|server|client)=[^\]]*\]', b'[ROLE]', l)
        l = re.sub(rb'at [a-z0-9_]+\.c\(\d+\)', b'at X', l)
        l = re.sub(rb'rsync\[\d+\]', b'rsync[P]', l)
        if l in (b'building file list ... done', b'receiving file list ... done', b'sending incremental file list', b'receiving incremental file list'):
            l = b'HDR'
        lines.append(l)
    return b'\n'.join(lines)

CONF = """pid file = {d}/pid
use chroot = false
uid = root
gid = root
[m]
path = {d}/mod
read only = false
"""

def start_daemon(binary, d, port, sub):
    if os.path.islink(d + '/mod'): os.unlink(d + '/mod')
    os.makedirs(d + '/mod', exist_ok=True)
    open(d + '/conf', 'w').write(CONF.format(d=d))
    if sub:
        cmd = [os.path.join(os.path.dirname(RT), 'rtsync'), 'daemon', '--no-detach', '--config=' + d + '/conf', '--port=%d' % port, '--address=127.0.0.1']
    else:
        cmd = [binary, '--daemon', '--no-detach', '--config=' + d + '/conf', '--port=%d' % port, '--address=127.0.0.1']
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return p

OPTSETS = [
 '-a', '-av', '-ai', '-a --delete', '-ai --delete', '-aH', '-az', '-ac', '-a --inplace', '-a --partial',
 '-a --exclude=*.o', "-a --filter='- *.log'", '-a --exclude=sub*/', '-av --stats', '-a -n -i', '-a -u', '-a --existing',
 '-a --ignore-existing', '-a --size-only', '-a --max-size=1000', '-a --min-size=1k', '-a -b', '-a --backup --suffix=.bak',
 '-a --delete --delete-excluded --exclude=*.o', '-rlt', '-r', '-a --no-whole-file', '-a -W', '-a --del -i', '-a --delete-after',
 '-a --delete-before -i', '-a -L', '-a --copy-unsafe-links', '-a --safe-links', '-a --numeric-ids', '-a -O', '-a --chmod=go-rwx',
 '-a -x', '-a -h --stats', '-a -z --compress-choice=zlib', '-a --checksum-choice=md4', '-a --protocol=30 -i', '-a --protocol=31',
 '-a --remove-source-files', '-a -m', '-a --delete -F', '-ai --itemize-changes --out-format=%n%L', '-a --out-format="%o %f %l %b"',
 '-a -R', '-a --no-implied-dirs -R', '-a --prune-empty-dirs', '-a -y', '-a --append', '-a --append-verify', '-a -i --dry-run --delete',
 '-a --max-delete=1 --delete', '-a -I', '-a --modify-window=1', '-a --timeout=10', '-a -vv', '-a --progress', '-a -8 -i',
 '-aAXi', '-a -S', '-a -S --inplace', '-ai --fuzzy', '-a -k', '-a -K', '-a --delay-updates', '-a --partial-dir=.p -i',
 '-a -b --backup-dir=bk', '-ai --link-dest=../src', '-ai --compare-dest=../src', '-ai --copy-dest=../src', '-ai --chown=1:1',
 '-a --checksum-seed=5 -c', '-a --block-size=1024 --no-whole-file', '-a -zz --compress-level=9', '-a --preallocate', '-ai -D',
 '-ai --chmod=D700,F600', '-ai -H --delete', '-a --delete-during -i', '-a --delete-delay -i', '-a --force -i', '-a --existing --delete -i',
 '-rlpt -i --omit-dir-times', '-a --stats -i --human-readable', '-a --info=progress2', '-a --itemize-changes -c', '-a --no-r -d -i',
]


# A second set (OPTSET=more): rarer options, filters, choices, debug output.
MORE_OPTSETS = [
    '-a --mkpath -i',
    '-a --ignore-times -i',
    '-a -U -i',
    '-a --atimes -i',
    '-a -E -i',
    '-rlt --executability -i',
    '-a --ignore-errors --delete -i',
    '-a -C -i',
    '-a --cvs-exclude --delete -i',
    '-a --include=*/ --include=*.txt* --exclude=* -i',
    '-a --include=sub*/ --exclude=/* -i',
    "-a -f '- /a*' -i",
    "-a -f 'P b*' --delete -i",
    "-a -f 'R *' -f 'H *.o*' --delete -i",
    '-a --delete --exclude=c* -i',
    '-a --delete-excluded --include=a* --exclude=* -i',
    "-a --out-format='%i %n%L %l %U %G'",
    "-a --out-format='%o %f %B %C'",
    '-ai --checksum-choice=xxh64',
    '-ai --checksum-choice=xxh3 -c',
    '-az --compress-choice=lz4 -i',
    '-az --compress-choice=zstd --compress-level=3 -i',
    '-az --skip-compress=txt -i',
    '-ai --bwlimit=100000',
    '-ai --no-implied-dirs',
    '-aiK --keep-dirlinks',
    '-ai --munge-links',
    '-ai --fsync',
    '-ai --usermap=0:1 --groupmap=0:2',
    '-ai --fake-super',
    '-ai --super',
    '-a --sparse -i',
    '-a --whole-file --inplace -i',
    '-a --old-args -i',
    '-a -s -i',
    '-a --list-only',
    '-a --stats -vv',
    '-a -vvv --dry-run',
    '-a --info=flist2,name,stats2',
    '-a --debug=deltasum -i',
    '-a --debug=recv,send -i',
    '-ai --max-delete=0 --delete',
    '-ai --delete --backup --backup-dir=../bk',
    '-ai --delete -b --suffix=~ --exclude=*~',
    '-ai --temp-dir=/tmp',
    '-ai --ignore-missing-args',
    '-ai --size-only --delete',
    '-ai -t --modify-window=-1',
    '-ai --omit-link-times',
    '-ai --copy-links --delete',
    '-ai -L --safe-links',
    '-ai --copy-dirlinks',
    '-ai --hard-links --link-dest=../src',
    '-ai --update --delete',
    '-a -c --delete -v',
    '-a --delete-missing-args -i',
    '-a --no-p -i',
    '-a --no-t -i',
    '-a --no-o --no-g -i',
    '-a --chmod=u+x,g-w -i',
    '-a --8-bit-output -v',
    '-a --human-readable --progress',
    '-rpt -i',
    '-rlD -i',
    '-a -R --delete -i',
    '-ai --trust-sender',
    '-a --partial --delay-updates -i',
    '-a --remove-source-files -i --exclude=*.o*',
    '-a --existing --ignore-existing -i',
    '-ai -y -y',
    '-ai --min-size=500 --max-size=100k --delete',
    '-ai --inplace --no-whole-file --block-size=700',
    '-ai --append --no-whole-file',
    '-a -n -vv --delete',
]


def source_shape(w, shape, rng):
    """The sources (relative to the work dir) for the shape tokens in an option set:
    @noslash `src`, @multi two top-level entries, @dot `src/./DIR` (for -R), @file one file,
    @ff a --files-from list (written to ff.txt) of some entries and a missing one."""
    top = sorted(os.listdir(w + '/src'))
    if '@noslash' in shape:
        return ['src']
    if '@multi' in shape and top:
        return ['src/' + x for x in sorted(rng.sample(top, min(2, len(top))))]
    if '@dot' in shape:
        dirs = [x for x in top if os.path.isdir(w + '/src/' + x) and not os.path.islink(w + '/src/' + x)]
        return ['src/./' + rng.choice(dirs)] if dirs else ['src/./']
    if '@file' in shape:
        files = [x for x in top if os.path.isfile(w + '/src/' + x) and not os.path.islink(w + '/src/' + x)]
        return ['src/' + rng.choice(files)] if files else ['src/']
    if '@ff' in shape:
        every = sorted(os.path.relpath(os.path.join(dp, n), w + '/src')
                       for dp, dn, fn in os.walk(w + '/src') for n in dn + fn)
        pick = sorted(rng.sample(every, min(len(every), rng.randint(1, 6)))) + ['missing-entry']
        with open(w + '/ff.txt', 'w', errors='surrogateescape') as f:
            f.write(''.join(x + '\n' for x in pick if '\n' not in x))
    return ['src/']

# A third set (OPTSET=shapes): source shapes (see source_shape), best with TREE=rich.
SHAPE_OPTSETS = [
    '-a @noslash -i', '-a @multi -i', '-a @multi --delete -i', '-aR @dot -i', '-a @file -i',
    '-a @ff -i', '-a @ff -r -i', '-a @ff --no-relative -i', '-a @ff --delete -i', '-ai @ff -R',
    '-aR @multi -i', '-a @noslash --delete -i', '-a @file --delete -i', '-aiD', '-ai --delete',
    '-ai -H --delete', '-ai --force --delete', '-ai --delete-after', '-ai --inplace', '-ai -8',
    '-av', '-ai --backup --delete', '-ai --no-specials', '-a --specials -i', '-ai --copy-links',
    '-ai -K', '-ai --existing', '-ai --ignore-existing', '-a -vv', '-ai --delay-updates',
    '-ai --partial-dir=.p', '-a -s -i @multi', '-a --old-args -i @noslash', '-ai --remove-source-files',
    '-ai -R @multi --delete', '-ai --files-from=/dev/null', '-a --list-only @multi', '-a --list-only',
]

def build(w, seed, mut_src):
    """The case's source and stale destination trees under W."""
    mktree(w + '/src', random.Random(seed))
    if RICH:
        enrich(w + '/src', random.Random(seed + 5))
    subprocess.run([ST, '-aH', w + '/src/', w + '/dst/'], check=True)
    mutate(w + '/dst', random.Random(seed + 1))
    if mut_src:
        mutate(w + '/src', random.Random(seed + 2))
    if RICH:
        swap_kinds(w + '/dst', random.Random(seed + 6))
        if mut_src:
            swap_kinds(w + '/src', random.Random(seed + 7))
    # Deterministic directory times (unlinks above would make them race the clock).
    drng = random.Random(seed + 3)
    for side in ('src', 'dst'):
        for dp, dn, fn in sorted(os.walk(w + '/' + side, topdown=False)):
            t = 1650000000 + (0 if side == 'src' or drng.random() < 0.7 else 1000)
            os.utime(dp, (t, t), follow_symlinks=False)

def run_case(seed, role, opts):
    rng = random.Random(seed)
    mut_src = rng.random() < 0.5
    tmp = f'{BASE}/cur'
    results = {}
    for who in ('st', 'rt'):
        shutil.rmtree(tmp, ignore_errors=True)
        w = tmp
        build(w, seed, mut_src)
        client = ST
        extra = []
        words = __import__('shlex').split(opts)
        shape = [t for t in words if t.startswith('@')]
        words = [t for t in words if not t.startswith('@')]
        srcs, dst = source_shape(w, shape, random.Random(seed + 9)), 'dst/'
        if '@ff' in shape:
            words.append('--files-from=' + w + '/ff.txt')
        if role == 'local':
            client = RT if who == 'rt' else ST
        elif role in ('push-ssh', 'pull-ssh'):
            client = RT if who == 'rt' else ST
            extra = ['-e', SSH]
            if role == 'push-ssh': dst = 'localhost:' + w + '/dst/'
            else: srcs = ['localhost:' + w + '/' + x for x in srcs]
        elif role in ('stock-push-ssh-rt', 'stock-pull-ssh-rt'):
            client = ST
            extra = ['-e', SSH] + (['--rsync-path=' + RT] if who == 'rt' else [])
            if role.startswith('stock-push'): dst = 'localhost:' + w + '/dst/'
            else: srcs = ['localhost:' + w + '/' + x for x in srcs]
        elif role in ('push-d', 'pull-d', 'stock-push-drt', 'stock-pull-drt'):
            if role in ('push-d', 'pull-d'):
                client = RT if who == 'rt' else ST
                port = PORT_ST
            else:
                client = ST
                port = PORT_RT if who == 'rt' else PORT_ST
            mod = f'{WORK}/d{port}/mod'
            if os.path.islink(mod): os.unlink(mod)
            elif os.path.exists(mod): shutil.rmtree(mod)
            os.symlink(w, mod)
            if role in ('push-d', 'stock-push-drt'): dst = f'rsync://127.0.0.1:{port}/m/dst/'
            else: srcs = [f'rsync://127.0.0.1:{port}/m/' + x for x in srcs]
        cmd = [client] + words + extra + srcs + [dst]
        try:
            p = sh(cmd, timeout=60, cwd=w)
            rc, out, err = p.returncode, norm(p.stdout, w), norm(p.stderr, w)
        except subprocess.TimeoutExpired:
            rc, out, err = 'TIMEOUT', b'', b''
        results[who] = (rc, out, err, snap(w + '/dst'), snap(w + '/src'))
    shutil.rmtree(tmp, ignore_errors=True)
    s, r = results['st'], results['rt']
    diffs = []
    for i, n in enumerate(['rc', 'stdout', 'stderr', 'dst', 'src']):
        if s[i] != r[i]:
            diffs.append(n)
    if diffs:
        print(f'DIFF seed={seed} role={role} opts={opts!r}: {diffs}')
        for i, n in enumerate(['rc', 'stdout', 'stderr']):
            if n in diffs:
                print(f'  stock {n}: {s[i]!r}'[:1500]); print(f'  rt    {n}: {r[i]!r}'[:1500])
        if 'src' in diffs:
            a, b = set(s[4]), set(r[4])
            print('  src only stock:', sorted(a - b, key=str)[:6]); print('  src only rt:', sorted(b - a, key=str)[:6])
        if 'dst' in diffs:
            a, b = set(s[3]), set(r[3])
            print('  only stock:', sorted(a - b, key=str)[:6]); print('  only rt:', sorted(b - a, key=str)[:6])
        sys.stdout.flush()
        return False
    return True

if __name__ == '__main__':
    if os.environ.get('OPTSET') == 'more':
        OPTSETS = MORE_OPTSETS
    elif os.environ.get('OPTSET') == 'shapes':
        OPTSETS = SHAPE_OPTSETS
    if os.environ.get('OPTS'):
        OPTSETS = os.environ['OPTS'].split('|')
    if os.environ.get('PROTO'):
        OPTSETS = [f"{o} --protocol={os.environ['PROTO']}" for o in OPTSETS]
    roles = sys.argv[1].split(',') if len(sys.argv) > 1 else ['local', 'push-ssh', 'pull-ssh', 'stock-push-ssh-rt', 'stock-pull-ssh-rt', 'push-d', 'pull-d', 'stock-push-drt', 'stock-pull-drt']
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    make_fake_ssh()
    d1 = start_daemon(ST, f'{WORK}/d{PORT_ST}', PORT_ST, False)
    d2 = start_daemon(RT, f'{WORK}/d{PORT_RT}', PORT_RT, True)
    try:
        bad = 0
        for opts in OPTSETS:
            for role in roles:
                for k in range(n):
                    seed = hash((opts, role, k)) % 100000
                    if not run_case(seed, role, opts): bad += 1
        print('bad', bad)
    finally:
        d1.kill(); d2.kill()
