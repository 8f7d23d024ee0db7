//! `rtsync daemon` against stock `rsync --daemon`: the same rsyncd.conf, the same stock client
//! commands, and the same stdout, stderr and exit codes, for everything that happens before a
//! file transfer starts (listing, motd, module selection, access control, authentication,
//! `max connections`, read only / write only / refuse options, chroot failures).

mod daemon_util;

use std::path::Path;
use std::time::Duration;

use daemon_util::*;

const CONF: &str = "\
# The same file serves both daemons; {dir} is each daemon's own scratch directory.
use chroot = no
motd file = {dir}/motd
pid file = {dir}/pid

[pub]
  path = {dir}/mod
  comment = public area
[upload]
  path = {dir}/mod
  read only = no
  write only = yes
  comment = drop box
[refuse]
  path = {dir}/mod
  read only = no
  refuse options = delete c
[hidden]
  path = {dir}/mod
  list = no
[refusedd]
  path = {dir}/mod
  read only = no
  refuse options = delete-during
[local1]
  path = {dir}/mod
  hosts allow = 127.0.0.1
[deny2]
  path = {dir}/mod
  hosts deny = 127.0.0.2/32
[hiddendeny]
  path = {dir}/mod
  list = no
  hosts allow = 10.0.0.0/255.0.0.0
[secure]
  path = {dir}/mod
  comment = needs a password
  auth users = alice, bob:deny, @nogroup:ro
  secrets file = {dir}/secrets
[lax]
  path = {dir}/mod
  auth users = alice
  secrets file = {dir}/secrets.open
  strict modes = no
[strict]
  path = {dir}/mod
  auth users = alice
  secrets file = {dir}/secrets.open
[nochroot]
  path = {dir}/does-not-exist
  use chroot = yes
[nopath]
  comment = no path here
[prex]
  path = {dir}/mod
  read only = no
  pre-xfer exec = echo \"hook says no to $RSYNC_MODULE_NAME for $RSYNC_REQUEST ($RSYNC_ARG0 $RSYNC_ARG1)\"; exit 3
[postx]
  path = {dir}/mod
  post-xfer exec = echo \"$RSYNC_EXIT_STATUS $RSYNC_MODULE_NAME $RSYNC_HOST_ADDR $RSYNC_USER_NAME\" > {dir}/post.out
";

/// One client run: arguments (`URL:x` → the daemon's URL for x, `DIR:x` → its directory),
/// environment, and the exit code both must give (a sanity check that the case tests what it
/// says; the comparison with stock is the real assertion).
struct Case {
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    code: i32,
}

const CASES: &[Case] = &[
    Case {
        name: "list",
        args: &["URL:"],
        env: &[],
        code: 0,
    },
    Case {
        name: "list at protocol 30",
        args: &["--protocol=30", "URL:"],
        env: &[],
        code: 0,
    },
    Case {
        name: "list at protocol 31",
        args: &["--protocol=31", "URL:"],
        env: &[],
        code: 0,
    },
    Case {
        name: "list, no motd",
        args: &["--no-motd", "URL:"],
        env: &[],
        code: 0,
    },
    Case {
        name: "unknown module",
        args: &["-a", "DIR:src/", "URL:nope/"],
        env: &[],
        code: 5,
    },
    Case {
        name: "unknown module pull",
        args: &["-a", "URL:nope/", "DIR:out/"],
        env: &[],
        code: 5,
    },
    Case {
        name: "push to read only",
        args: &["-a", "DIR:src/", "URL:pub/"],
        env: &[],
        code: 1,
    },
    Case {
        name: "push to read only at 30",
        args: &["--protocol=30", "-a", "DIR:src/", "URL:pub/"],
        env: &[],
        code: 10,
    },
    Case {
        name: "pull from write only",
        args: &["-a", "URL:upload/", "DIR:out/"],
        env: &[],
        code: 1,
    },
    Case {
        name: "pull from write only -z",
        args: &["-az", "URL:upload/", "DIR:out/"],
        env: &[],
        code: 1,
    },
    Case {
        name: "refused --delete",
        args: &["-a", "--delete", "DIR:src/", "URL:refuse/"],
        env: &[],
        code: 4,
    },
    Case {
        name: "refused -c",
        args: &["-ac", "DIR:src/", "URL:refuse/"],
        env: &[],
        code: 4,
    },
    Case {
        name: "refused --delete-during covers --del",
        args: &["-a", "--delete", "-M--del", "DIR:src/", "URL:refusedd/"],
        env: &[],
        code: 4,
    },
    Case {
        name: "invalid --max-size",
        args: &["-a", "-M--max-size=1x", "DIR:src/", "URL:refusedd/"],
        env: &[],
        code: 4,
    },
    Case {
        name: "oversized --min-size on a pull",
        args: &[
            "-a",
            "-M--min-size=99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999",
            "URL:pub/",
            "DIR:out/",
        ],
        env: &[],
        code: 10,
    },
    Case {
        name: "hidden module still usable",
        args: &["-a", "DIR:src/", "URL:hidden/"],
        env: &[],
        code: 1,
    },
    Case {
        name: "hosts allow, allowed",
        args: &["-a", "DIR:src/", "URL:local1/"],
        env: &[],
        code: 1,
    },
    Case {
        name: "hosts allow, from 127.0.0.2",
        args: &["--address=127.0.0.2", "-a", "DIR:src/", "URL:local1/"],
        env: &[],
        code: 5,
    },
    Case {
        name: "hosts deny, from 127.0.0.2",
        args: &["--address=127.0.0.2", "-a", "DIR:src/", "URL:deny2/"],
        env: &[],
        code: 5,
    },
    Case {
        name: "hosts deny, from 127.0.0.1",
        args: &["-a", "DIR:src/", "URL:deny2/"],
        env: &[],
        code: 1,
    },
    Case {
        name: "denied and unlisted",
        args: &["-a", "DIR:src/", "URL:hiddendeny/"],
        env: &[],
        code: 5,
    },
    Case {
        name: "auth ok",
        args: &["-a", "DIR:src/", "URL:alice@secure/"],
        env: &[("RSYNC_PASSWORD", "alicepw")],
        code: 1,
    },
    Case {
        name: "auth ok at protocol 30 (md5)",
        args: &["--protocol=30", "-a", "DIR:src/", "URL:alice@secure/"],
        env: &[("RSYNC_PASSWORD", "alicepw")],
        code: 10,
    },
    Case {
        name: "auth ok at protocol 31",
        args: &["--protocol=31", "-a", "DIR:src/", "URL:alice@secure/"],
        env: &[("RSYNC_PASSWORD", "alicepw")],
        code: 1,
    },
    Case {
        name: "auth wrong password",
        args: &["-a", "DIR:src/", "URL:alice@secure/"],
        env: &[("RSYNC_PASSWORD", "wrong")],
        code: 5,
    },
    Case {
        name: "auth denied user",
        args: &["-a", "DIR:src/", "URL:bob@secure/"],
        env: &[("RSYNC_PASSWORD", "bobpw")],
        code: 5,
    },
    Case {
        name: "auth unknown user",
        args: &["-a", "DIR:src/", "URL:mallory@secure/"],
        env: &[("RSYNC_PASSWORD", "x")],
        code: 5,
    },
    Case {
        name: "auth by group",
        args: &["-a", "DIR:src/", "URL:nobody@secure/"],
        env: &[("RSYNC_PASSWORD", "grouppw")],
        code: 1,
    },
    Case {
        name: "auth pull, then write only check passes",
        args: &["-a", "URL:alice@secure/", "DIR:out/"],
        env: &[("RSYNC_PASSWORD", "wrong")],
        code: 5,
    },
    Case {
        name: "strict modes off accepts open secrets",
        args: &["-a", "DIR:src/", "URL:alice@lax/"],
        env: &[("RSYNC_PASSWORD", "alicepw")],
        code: 1,
    },
    Case {
        name: "strict modes refuses open secrets",
        args: &["-a", "DIR:src/", "URL:alice@strict/"],
        env: &[("RSYNC_PASSWORD", "alicepw")],
        code: 5,
    },
    Case {
        name: "chroot failed",
        args: &["-a", "DIR:src/", "URL:nochroot/"],
        env: &[],
        code: 5,
    },
    Case {
        name: "no path",
        args: &["-a", "DIR:src/", "URL:nopath/"],
        env: &[],
        code: 5,
    },
    Case {
        name: "pre-xfer exec refuses",
        args: &["-a", "DIR:src/", "URL:prex/"],
        env: &[],
        code: 4,
    },
    Case {
        name: "pre-xfer exec refuses a pull",
        args: &["-a", "URL:prex/sub", "DIR:out/"],
        env: &[],
        code: 10,
    },
    Case {
        name: "refused option on a pull",
        args: &["-ac", "URL:refuse/", "DIR:out/"],
        env: &[],
        code: 10,
    },
    Case {
        name: "post-xfer exec module",
        args: &["-a", "DIR:src/", "URL:postx/"],
        env: &[],
        code: 1,
    },
];

fn prepare(dir: &Path) {
    make_tree(dir);
    write_secrets(dir, "alice:alicepw\nbob:bobpw\n@nogroup:grouppw\n", 0o600);
    let open = dir.join("secrets.open");
    std::fs::write(&open, "alice:alicepw\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn expand(args: &[&str], d: &Daemon) -> Vec<String> {
    args.iter()
        .map(|a| {
            if let Some(rest) = a.strip_prefix("URL:") {
                match rest.split_once('@') {
                    Some((user, path)) => format!("rsync://{user}@127.0.0.1:{}/{path}", d.port),
                    None => d.url(rest),
                }
            } else if let Some(rest) = a.strip_prefix("DIR:") {
                d.dir.join(rest).display().to_string()
            } else if let Some((opt, rest)) = a.split_once("=DIR:") {
                format!("{opt}={}", d.dir.join(rest).display())
            } else {
                a.to_string()
            }
        })
        .collect()
}

/// Replaces each daemon's own directory by a placeholder so outputs compare.
fn neutral(o: &Outcome, d: &Daemon) -> Outcome {
    let dir = d.dir.display().to_string();
    let port = format!(":{}", d.port);
    let fix = |s: &str| s.replace(&dir, "{dir}").replace(&port, ":{port}");
    normalize(&Outcome {
        stdout: fix(&o.stdout),
        stderr: fix(&o.stderr),
        code: o.code,
    })
}

/// Runs every case against a stock and an rtsync daemon sharing `conf` (each in its own
/// directory, set up by `setup`), asserting identical outcomes; returns both daemons running.
fn compare_cases(
    conf: &str,
    cases: &[Case],
    setup: &dyn Fn(&Path),
) -> (Daemon, Daemon, Vec<tempfile::TempDir>) {
    let dirs = vec![tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for d in &dirs {
        prepare(d.path());
        setup(d.path());
    }
    let stock = Daemon::start(Kind::Stock, dirs[0].path(), conf);
    let ours = Daemon::start(Kind::Rtsync, dirs[1].path(), conf);
    let mut failures = Vec::new();
    for case in cases {
        let want = client(
            &expand(case.args, &stock),
            case.env,
            Duration::from_secs(60),
        );
        let got = client(&expand(case.args, &ours), case.env, Duration::from_secs(60));
        let (want, got) = (neutral(&want, &stock), neutral(&got, &ours));
        assert_eq!(
            want.code,
            Some(case.code),
            "stock behaves unexpectedly in {:?}: {want:?}",
            case.name
        );
        if want != got {
            failures.push(format!(
                "{}:\n  stock: {want:?}\n  ours:  {got:?}",
                case.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "differences from stock:\n{}",
        failures.join("\n")
    );
    (stock, ours, dirs)
}

#[test]
fn client_sees_what_stock_shows() {
    let (stock, ours, _dirs) = compare_cases(CONF, CASES, &|_| {});
    // post-xfer exec ran after the session, with its exit status and environment.
    let post = |d: &Daemon| {
        let path = d.dir.join("post.out");
        for _ in 0..200 {
            if let Ok(t) = std::fs::read_to_string(&path) {
                if !t.is_empty() {
                    return t;
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        String::new()
    };
    let want = post(&stock);
    assert_eq!(
        want,
        "1 postx 127.0.0.1 \n",
        "stock log: {:?} stderr: {:?} alive: {}",
        stock.log_messages(),
        std::fs::read_to_string(stock.dir.join("daemon.stderr")),
        std::process::Command::new("pgrep")
            .arg("-f")
            .arg(format!("port={}", stock.port))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    );
    assert_eq!(post(&ours), want);
}

const CONF2: &str = "\
reverse lookup = no
motd file = {dir}/motd
use chroot = no
&include {dir}/conf.d
&merge {dir}/extra.inc
[baduid]
  path = {dir}/mod
  uid = no-such-user-here
[badgid]
  path = {dir}/mod
  gid = no-such-group-here
[badlock]
  path = {dir}/mod
  max connections = 2
  lock file = {dir}/no/such/dir/lock
[strong]
  path = {dir}/mod
  auth users = alice
  secrets file = {dir}/secrets
  auth digest = sha256
[nosecrets]
  path = {dir}/mod
  auth users = alice
  secrets file = {dir}/missing-secrets
[denyname]
  path = {dir}/mod
  hosts deny = localhost
[allowwild]
  path = {dir}/mod
  hosts allow = *.example.invalid
[rwuser]
  path = {dir}/mod
  read only = no
  auth users = carol:ro
  secrets file = {dir}/secrets
";

const CASES2: &[Case] = &[
    Case {
        name: "listing with includes",
        args: &["URL:"],
        env: &[],
        code: 0,
    },
    Case {
        name: "included module",
        args: &["-a", "DIR:src/", "URL:inc1/"],
        env: &[],
        code: 1,
    },
    Case {
        name: "included file's defaults stay inside it",
        args: &["-a", "DIR:src/", "URL:inc2/"],
        env: &[],
        code: 5,
    },
    Case {
        name: "invalid uid",
        args: &["-a", "DIR:src/", "URL:baduid/"],
        env: &[],
        code: 5,
    },
    Case {
        name: "invalid gid",
        args: &["-a", "DIR:src/", "URL:badgid/"],
        env: &[],
        code: 5,
    },
    Case {
        name: "lock file cannot open",
        args: &["-a", "DIR:src/", "URL:badlock/"],
        env: &[],
        code: 5,
    },
    Case {
        name: "auth digest floor met",
        args: &["-a", "DIR:src/", "URL:alice@strong/"],
        env: &[("RSYNC_PASSWORD", "alicepw")],
        code: 1,
    },
    Case {
        name: "auth digest floor met at protocol 31",
        args: &["--protocol=31", "-a", "DIR:src/", "URL:alice@strong/"],
        env: &[("RSYNC_PASSWORD", "alicepw")],
        code: 1,
    },
    Case {
        name: "secrets file missing",
        args: &["-a", "DIR:src/", "URL:alice@nosecrets/"],
        env: &[("RSYNC_PASSWORD", "alicepw")],
        code: 5,
    },
    Case {
        name: "deny by host name without reverse lookup",
        args: &["-a", "DIR:src/", "URL:denyname/"],
        env: &[],
        code: 5,
    },
    Case {
        name: "allow by wildcard without reverse lookup",
        args: &["-a", "DIR:src/", "URL:allowwild/"],
        env: &[],
        code: 5,
    },
    Case {
        name: ":ro grant on a writable module",
        args: &["-a", "DIR:src/", "URL:carol@rwuser/"],
        env: &[("RSYNC_PASSWORD", "carolpw")],
        code: 1,
    },
    Case {
        name: "early input",
        args: &["--early-input=DIR:motd", "-a", "DIR:src/", "URL:inc1/"],
        env: &[],
        code: 1,
    },
];

#[test]
fn includes_lookups_and_setup_errors_match_stock() {
    let setup = |dir: &Path| {
        let d = dir.join("conf.d");
        std::fs::create_dir_all(&d).unwrap();
        let here = dir.display().to_string();
        std::fs::write(
            d.join("1.conf"),
            format!("comment = from include\n[inc1]\n  path = {here}/mod\n"),
        )
        .unwrap();
        std::fs::write(
            d.join("2.conf"),
            format!("hosts allow = 10.9.9.9\n[inc2]\n  path = {here}/mod\n"),
        )
        .unwrap();
        std::fs::write(d.join("skip.txt"), "[never]\n").unwrap();
        std::fs::write(
            dir.join("extra.inc"),
            "[merged]\n  path = /tmp\n  comment = merged in\n",
        )
        .unwrap();
        write_secrets(dir, "alice:alicepw\ncarol:carolpw\n", 0o600);
    };
    compare_cases(CONF2, CASES2, &setup);
}

#[test]
fn log_file_lines_match_stock() {
    let stock_dir = tempfile::tempdir().unwrap();
    let ours_dir = tempfile::tempdir().unwrap();
    prepare(stock_dir.path());
    prepare(ours_dir.path());
    let stock = Daemon::start(Kind::Stock, stock_dir.path(), CONF);
    let ours = Daemon::start(Kind::Rtsync, ours_dir.path(), CONF);
    for d in [&stock, &ours] {
        client(&expand(&["URL:nope/"], d), &[], Duration::from_secs(30));
        client(
            &expand(&["--address=127.0.0.2", "URL:local1/"], d),
            &[],
            Duration::from_secs(30),
        );
        client(
            &expand(&["URL:alice@secure/"], d),
            &[("RSYNC_PASSWORD", "wrong")],
            Duration::from_secs(30),
        );
    }
    // Compare the per-connection lines (the start-up line names the implementation).
    let pick = |d: &Daemon| -> Vec<String> {
        d.log_messages()
            .into_iter()
            .filter(|m| !m.contains("starting, listening") && !m.contains("module-list request"))
            .filter(|m| !m.starts_with("connect from"))
            .collect()
    };
    let (want, got) = (pick(&stock), pick(&ours));
    assert!(
        want.iter().any(|m| m.starts_with("unknown module 'nope'")),
        "{want:?}"
    );
    assert_eq!(want, got);
}

#[test]
fn max_connections_is_enforced_across_connections() {
    let conf = "use chroot = no\nlock file = {dir}/lock\n[limited]\n  path = {dir}/mod\n  max connections = 1\n";
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        make_tree(dir.path());
        let d = Daemon::start(kind, dir.path(), conf);
        // Hold the only slot: a client that stops after the daemon's OK.
        let (mut holder, greeting) = RawClient::connect(d.port);
        assert!(greeting.starts_with("@RSYNCD: 32.0"), "{greeting}");
        holder.send(b"@RSYNCD: 32.0 md5\nlimited\n");
        assert_eq!(holder.until("@RSYNCD: OK"), "@RSYNCD: OK\n");
        let push = expand(&["-a", "DIR:src/", "URL:limited/"], &d);
        let full = client(&push, &[], Duration::from_secs(30));
        assert_eq!(full.code, Some(5), "{kind:?}: {full:?}");
        assert!(
            full.stderr
                .contains("@ERROR: max connections (1) reached -- try again later"),
            "{kind:?}: {full:?}"
        );
        drop(holder);
        // Once the holder's process has gone, the slot is free again (read only refusal: 1).
        let mut freed = None;
        for _ in 0..200 {
            let o = client(&push, &[], Duration::from_secs(30));
            if o.code != Some(5) {
                freed = Some(o);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(freed.map(|o| o.code), Some(Some(1)), "{kind:?}");
    }
}

#[test]
fn silent_and_garbage_clients_are_dropped_without_disturbing_others() {
    let conf = "use chroot = no\ntimeout = 1\n[pub]\n  path = {dir}/mod\n  comment = c\n";
    let stock_dir = tempfile::tempdir().unwrap();
    make_tree(stock_dir.path());
    // Stock's listing is the reference: without the 1 s timeout, which a loaded machine can
    // hit before the listing is out (the module list does not depend on it).
    let stock = Daemon::start(
        Kind::Stock,
        stock_dir.path(),
        &conf.replace("timeout = 1\n", ""),
    );
    let want = client(&expand(&["URL:"], &stock), &[], Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path());
    let d = Daemon::start(Kind::Rtsync, dir.path(), conf);
    // A silent client is disconnected (the read returns at EOF, not at our own 30 s limit).
    let (mut silent, _) = RawClient::connect(d.port);
    // A garbage client gets stock's startup error.
    let (mut garbage, _) = RawClient::connect(d.port);
    garbage.send(b"\x16\x03\x01 not rsync at all\n");
    assert_eq!(garbage.rest(), "@ERROR: protocol startup error\n");
    // Meanwhile a normal client is served as stock serves it.
    let got = client(&expand(&["URL:"], &d), &[], Duration::from_secs(30));
    assert_eq!(neutral(&got, &d), neutral(&want, &stock));
    assert_eq!(silent.rest(), "");
}

#[test]
fn old_and_malformed_greetings() {
    let conf = "use chroot = no\n[pub]\n  path = {dir}/mod\n";
    let cases: &[&[u8]] = &[
        b"@RSYNCD: 32\n",
        b"@RSYNCD: 32.0\n",
        b"@RSYNCD: 31.0\n#bogus\n",
        b"@RSYNCD: 31.0\n\n",
        b"@RSYNCD: 31.0\n#list\n",
    ];
    let mut results = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        make_tree(dir.path());
        let d = Daemon::start(kind, dir.path(), conf);
        let mut out = Vec::new();
        for input in cases {
            let (mut c, greeting) = RawClient::connect(d.port);
            assert_eq!(greeting, "@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n");
            c.send(input);
            out.push(c.rest());
        }
        results.push(out);
    }
    assert!(
        results[0][2].contains("Unknown command"),
        "{:?}",
        results[0]
    );
    assert_eq!(results[0], results[1]);
}

#[test]
fn connect_prog_and_remote_shell_modes() {
    let conf = "use chroot = no\nmotd file = {dir}/motd\n[pub]\n  path = {dir}/mod\n  comment = over a pipe\n";
    let mut outs = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        make_tree(dir.path());
        let conf_path = write_conf(dir.path(), conf);
        let prog = match kind {
            Kind::Stock => format!(
                "{} --config={} --daemon",
                stock_rsync().display(),
                conf_path.display()
            ),
            Kind::Rtsync => format!(
                "{} daemon --config={}",
                rtsync_bin().display(),
                conf_path.display()
            ),
        };
        let listing = client(
            &["rsync://localhost/".into()],
            &[("RSYNC_CONNECT_PROG", &prog)],
            Duration::from_secs(30),
        );
        let push = client(
            &[
                "-a".into(),
                format!("{}/src/", dir.path().display()),
                "rsync://localhost/pub/".into(),
            ],
            &[("RSYNC_CONNECT_PROG", &prog)],
            Duration::from_secs(30),
        );
        // Over a remote shell: the "shell" runs the daemon in --server --daemon mode.
        let rsh = dir.path().join("rsh");
        let daemon = match kind {
            Kind::Stock => stock_rsync().display().to_string(),
            Kind::Rtsync => format!("{} daemon", rtsync_bin().display()),
        };
        script::write_script(
            &rsh,
            &format!(
                "#!/bin/sh\nshift; shift\nexec {daemon} --config={} \"$@\"\n",
                conf_path.display()
            ),
        );
        let shell = client(
            &[format!("--rsh={}", rsh.display()), "localhost::".into()],
            &[],
            Duration::from_secs(30),
        );
        outs.push((listing, push.code, shell));
    }
    assert_eq!(outs[0].0.code, Some(0));
    assert!(outs[0].0.stdout.contains("over a pipe"));
    assert_eq!(outs[0], outs[1]);
}

#[test]
fn detaches_and_writes_pid_file() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path());
    let conf = write_conf(
        dir.path(),
        "use chroot = no\npid file = {dir}/daemon.pid\n[pub]\n  path = {dir}/mod\n",
    );
    let port = free_port();
    let status = std::process::Command::new(rtsync_bin())
        .args([
            "daemon",
            &format!("--config={}", conf.display()),
            &format!("--port={port}"),
            "--address=127.0.0.1",
        ])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the launching process exits 0 once the daemon is detached"
    );
    let pid_path = dir.path().join("daemon.pid");
    let mut pid = None;
    for _ in 0..200 {
        if let Ok(t) = std::fs::read_to_string(&pid_path) {
            if let Ok(p) = t.trim().parse::<i32>() {
                pid = Some(p);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let pid = pid.expect("pid file written");
    // SAFETY: probing and then stopping the daemon we started.
    assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "daemon {pid} is running");
    let mut listed = client(
        &[format!("rsync://127.0.0.1:{port}/")],
        &[],
        Duration::from_secs(30),
    );
    for _ in 0..100 {
        if listed.code == Some(0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        listed = client(
            &[format!("rsync://127.0.0.1:{port}/")],
            &[],
            Duration::from_secs(30),
        );
    }
    assert_eq!(listed.code, Some(0), "{listed:?}");
    assert!(listed.stdout.contains("pub"));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    for _ in 0..200 {
        if !pid_path.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(!pid_path.exists(), "pid file removed on SIGTERM");
}

#[test]
fn daemon_front_door_options() {
    let bad = std::process::Command::new(rtsync_bin())
        .args(["daemon", "--bogus"])
        .output()
        .unwrap();
    let stock = std::process::Command::new(stock_rsync())
        .args(["--daemon", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), stock.status.code());
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr),
        String::from_utf8_lossy(&stock.stderr)
    );
    let missing = std::process::Command::new(rtsync_bin())
        .args(["daemon", "--no-detach", "--config=/nonexistent/rsyncd.conf"])
        .output()
        .unwrap();
    let stock_missing = std::process::Command::new(stock_rsync())
        .args([
            "--daemon",
            "--no-detach",
            "--config=/nonexistent/rsyncd.conf",
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), stock_missing.status.code());
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        String::from_utf8_lossy(&stock_missing.stderr)
    );
}

#[test]
fn trickling_client_is_cut_off_like_stock() {
    // A client that never goes silent long enough for an idle timeout still cannot stretch the
    // handshake: both daemons bound it as a whole.
    let conf = "use chroot = no\ntimeout = 1\n[pub]\n  path = {dir}/mod\n";
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        make_tree(dir.path());
        let d = Daemon::start(kind, dir.path(), conf);
        let (mut c, _) = RawClient::connect(d.port);
        c.stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut closed = false;
        for _ in 0..200 {
            use std::io::{Read, Write};
            if c.stream.write_all(b"@").is_err() {
                closed = true;
                break;
            }
            let mut buf = [0u8; 64];
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                _ => {
                    closed = true;
                    break;
                }
            }
        }
        assert!(closed, "{kind:?} kept a trickling client");
    }
}

#[test]
fn second_daemon_on_a_locked_pid_file_fails_like_stock() {
    let mut results = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        make_tree(dir.path());
        let first = Daemon::start(
            kind,
            dir.path(),
            "pid file = {dir}/daemon.pid\n[pub]\n  path = {dir}/mod\n",
        );
        let second = daemon_command(kind)
            .arg("--no-detach")
            .arg(format!("--config={}", first.conf.display()))
            .arg(format!("--port={}", free_port()))
            .arg("--address=127.0.0.1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&second.stderr)
            .replace(&dir.path().display().to_string(), "{dir}");
        results.push((second.status.code(), stderr));
        drop(first);
    }
    assert_eq!(results[0].0, Some(11), "{results:?}");
    assert_eq!(results[0], results[1]);
}

/// A source tree with the kinds of entries a transfer must carry.
fn rich_tree(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("d/e")).unwrap();
    std::fs::write(root.join("plain"), "plain text\n").unwrap();
    std::fs::write(root.join("d/e/deep"), vec![b'x'; 70_000]).unwrap();
    std::fs::write(root.join("secret"), "only owner\n").unwrap();
    std::fs::set_permissions(root.join("secret"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(root.join("tool"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(root.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("plain", root.join("link")).unwrap();
    let t = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    for f in ["plain", "d/e/deep", "secret", "tool"] {
        std::fs::File::options()
            .write(true)
            .open(root.join(f))
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    // The link's own time too, so two trees made a second apart are alike.
    let link = std::ffi::CString::new(root.join("link").display().to_string()).unwrap();
    let ts = [libc::timespec {
        tv_sec: 1_600_000_000,
        tv_nsec: 0,
    }; 2];
    // SAFETY: a valid path and two timespecs.
    unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            link.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
}

#[test]
fn transfers_through_chrooted_modules_match_stock() {
    // Modules owned by nobody, served as nobody inside a chroot (root's defaults).
    transfers_match_stock("yes");
}

#[test]
fn transfers_through_unconfined_modules_match_stock() {
    // No chroot: every path is resolved beneath the module root instead.
    transfers_match_stock("no");
}

fn transfers_match_stock(use_chroot: &str) {
    let conf = format!(
        "use chroot = {use_chroot}\n[up]\n  path = {{dir}}/up\n  read only = no\n[down]\n  path = {{dir}}/down\n"
    );
    let conf = conf.as_str();
    let mut results = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        make_tree(dir.path());
        for m in ["up", "down"] {
            std::fs::create_dir(dir.path().join(m)).unwrap();
        }
        rich_tree(&dir.path().join("src2"));
        rich_tree(&dir.path().join("down"));
        // Readable to the module user (an unreadable file is reported differently by the
        // transfer engine for now; that belongs to the wire crate's tests).
        std::fs::remove_file(dir.path().join("down/secret")).unwrap();
        let up = dir.path().join("up");
        let c = std::ffi::CString::new(up.display().to_string()).unwrap();
        // SAFETY: chown on a directory we created.
        assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        let d = Daemon::start(kind, dir.path(), conf);
        let push = client(
            &expand(&["-a", "DIR:src2/", "URL:up/"], &d),
            &[],
            Duration::from_secs(60),
        );
        let pull = client(
            &expand(&["-a", "URL:down/", "DIR:pulled/"], &d),
            &[],
            Duration::from_secs(60),
        );
        results.push((
            neutral(&push, &d),
            snapshot(&up),
            neutral(&pull, &d),
            snapshot(&dir.path().join("pulled")),
        ));
    }
    assert_eq!(results[0].0.code, Some(0), "stock push: {:?}", results[0].0);
    assert!(
        results[0]
            .1
            .iter()
            .any(|l| l.starts_with("d/e/deep file") && l.contains("uid=65534")),
        "{:?}",
        results[0].1
    );
    assert_eq!(results[0].2.code, Some(0), "stock pull: {:?}", results[0].2);
    assert_eq!(results[0].0, results[1].0, "push outcome");
    assert!(
        results[0].1 == results[1].1,
        "pushed tree: {}",
        diff_lines(&results[0].1, &results[1].1)
    );
    assert!(
        results[0].3 == results[1].3,
        "pulled tree: {}",
        diff_lines(&results[0].3, &results[1].3)
    );
    assert_eq!(results[0].2, results[1].2, "pull outcome");
}

#[test]
fn pushes_to_filtered_modules_match_stock() {
    // The module's rules refuse uploads by name: `ERROR: daemon refused to receive file`,
    // the rest is written, exit code 23.
    let conf = "use chroot = yes\n[filtered]\n  path = {dir}/mod\n  read only = no\n  \
                exclude = b.txt\n  filter = - sub2/\n";
    let mut results = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        make_tree(dir.path());
        std::fs::create_dir_all(dir.path().join("src/sub2/in")).unwrap();
        std::fs::write(dir.path().join("src/sub2/in/c"), "c\n").unwrap();
        for f in ["src/a.txt", "src/sub/b.txt", "mod/m.txt", "src/sub2/in/c"] {
            let t = std::time::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
            let file = std::fs::File::options()
                .write(true)
                .open(dir.path().join(f))
                .unwrap();
            file.set_modified(t).unwrap();
        }
        let c = std::ffi::CString::new(dir.path().join("mod").display().to_string()).unwrap();
        // SAFETY: chown on a directory we created.
        assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        let d = Daemon::start(kind, dir.path(), conf);
        let push = client(
            &expand(&["-a", "DIR:src/", "URL:filtered/"], &d),
            &[],
            Duration::from_secs(60),
        );
        // Stock leaves an empty mode-0700 `sub2` behind for the refused directory; we
        // create nothing for it. Its contents must be absent on both.
        let tree: Vec<String> = snapshot(&dir.path().join("mod"))
            .into_iter()
            .filter(|l| !l.starts_with("sub2 dir "))
            .collect();
        results.push((neutral(&push, &d), tree));
    }
    assert_eq!(
        results[0].0.code,
        Some(23),
        "stock push: {:?}",
        results[0].0
    );
    assert!(
        results[0]
            .0
            .stderr
            .contains("ERROR: daemon refused to receive file \"sub/b.txt\""),
        "{:?}",
        results[0].0
    );
    assert_eq!(results[0].0, results[1].0, "push outcome");
    assert!(
        results[0].1 == results[1].1,
        "pushed tree: {}",
        diff_lines(&results[0].1, &results[1].1)
    );
}

#[test]
fn pulls_from_filtered_modules_match_stock() {
    // The module's own rules hide files from every client, whatever the client asks for.
    let conf = "use chroot = yes\n[down]\n  path = {dir}/down\n  exclude = tool e/\n  \
                filter = - secret\n";
    let mut results = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        make_tree(dir.path());
        rich_tree(&dir.path().join("down"));
        let d = Daemon::start(kind, dir.path(), conf);
        let pull = client(
            &expand(&["-a", "URL:down/", "DIR:pulled/"], &d),
            &[],
            Duration::from_secs(60),
        );
        let listing = client(&expand(&["URL:down/"], &d), &[], Duration::from_secs(60));
        results.push((
            neutral(&pull, &d),
            snapshot(&dir.path().join("pulled")),
            neutral(&listing, &d),
        ));
    }
    assert_eq!(results[0].0.code, Some(0), "stock pull: {:?}", results[0].0);
    assert!(
        !results[0]
            .1
            .iter()
            .any(|l| l.contains("tool") || l.contains("secret")),
        "the module filter hides files: {:?}",
        results[0].1
    );
    assert_eq!(results[0].0, results[1].0, "pull outcome");
    assert!(
        results[0].1 == results[1].1,
        "pulled tree: {}",
        diff_lines(&results[0].1, &results[1].1)
    );
    assert_eq!(results[0].2.code, results[1].2.code, "listing exit code");
}

#[test]
fn module_chmod_rules_match_stock() {
    // `incoming chmod` shapes what a push creates, `outgoing chmod` the modes a pull lists.
    let conf = "use chroot = yes\n[up]\n  path = {dir}/mod\n  read only = no\n  \
                incoming chmod = Fgo-rwx,Dg-w\n[down]\n  path = {dir}/src\n  \
                outgoing chmod = Fa+x,Do-rx\n";
    let mut results = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        make_tree(dir.path());
        // Fixed times: make_tree's are those of the run.
        for f in ["src/a.txt", "src/sub/b.txt", "mod/m.txt"] {
            let t = std::time::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
            let file = std::fs::File::options()
                .write(true)
                .open(dir.path().join(f))
                .unwrap();
            file.set_modified(t).unwrap();
        }
        // Writable by the module user (nobody).
        let c = std::ffi::CString::new(dir.path().join("mod").display().to_string()).unwrap();
        // SAFETY: chown on a directory we created.
        assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        let d = Daemon::start(kind, dir.path(), conf);
        let push = client(
            &expand(&["-a", "DIR:src/", "URL:up/"], &d),
            &[],
            Duration::from_secs(60),
        );
        let pull = client(
            &expand(&["-a", "URL:down/", "DIR:pulled/"], &d),
            &[],
            Duration::from_secs(60),
        );
        results.push((
            neutral(&push, &d),
            snapshot(&dir.path().join("mod")),
            neutral(&pull, &d),
            snapshot(&dir.path().join("pulled")),
        ));
    }
    assert_eq!(results[0].0.code, Some(0), "stock push: {:?}", results[0].0);
    assert_eq!(results[0].2.code, Some(0), "stock pull: {:?}", results[0].2);
    assert_eq!(results[0].0, results[1].0, "push outcome");
    assert!(
        results[0].1 == results[1].1,
        "pushed tree: {}",
        diff_lines(&results[0].1, &results[1].1)
    );
    assert_eq!(results[0].2, results[1].2, "pull outcome");
    assert!(
        results[0].3 == results[1].3,
        "pulled tree: {}",
        diff_lines(&results[0].3, &results[1].3)
    );
}

#[test]
fn module_listing_shows_directory_sizes_like_stock() {
    let conf = "use chroot = yes\n[down]\n  path = {dir}/src\n";
    let mut results = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        make_tree(dir.path());
        // Fixed times: the listing prints them.
        for f in ["src/a.txt", "src/sub/b.txt", "src/sub", "src"] {
            let t = std::time::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
            let file = std::fs::File::open(dir.path().join(f)).unwrap();
            file.set_modified(t).unwrap();
        }
        let d = Daemon::start(kind, dir.path(), conf);
        let listing = client(&expand(&["URL:down/"], &d), &[], Duration::from_secs(60));
        results.push(neutral(&listing, &d));
    }
    assert_eq!(results[0].code, Some(0), "stock listing: {:?}", results[0]);
    assert!(results[0].stdout.contains("4,096"), "{:?}", results[0]);
    assert_eq!(results[0], results[1], "listing");
}

#[test]
fn pulling_an_unreadable_file_reports_it_like_stock() {
    let conf = "use chroot = yes\n[down]\n  path = {dir}/down\n";
    let mut results = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        make_tree(dir.path());
        rich_tree(&dir.path().join("down"));
        let d = Daemon::start(kind, dir.path(), conf);
        let pull = client(
            &expand(&["-a", "URL:down/", "DIR:pulled/"], &d),
            &[],
            Duration::from_secs(60),
        );
        results.push(neutral(&pull, &d));
    }
    assert_eq!(results[0].code, Some(23), "stock: {:?}", results[0]);
    assert_eq!(results[1].code, results[0].code, "{:?}", results[1]);
    for r in &results {
        assert!(
            r.stderr.contains("send_files failed to open") && r.stderr.contains("(13)"),
            "{r:?}"
        );
    }
}

#[test]
fn transfer_log_lines_match_stock() {
    let conf = "use chroot = no\nlog file = {dir}/xfer.log\n[rw]\n  path = {dir}/mod\n  read only = no\n  uid = root\n  gid = root\n";
    let mut logs = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path());
        let d = Daemon::start_with(kind, dir.path(), conf, &[]);
        for args in [
            &["-a", "URL:rw/", "DIR:pulled/"][..],
            &["-a", "DIR:pulled/", "URL:rw/pushed/"],
        ] {
            let o = client(&expand(args, &d), &[], Duration::from_secs(30));
            assert_eq!(o.code, Some(0), "{kind:?} {args:?}: {o:?}");
        }
        let text = std::fs::read_to_string(dir.path().join("xfer.log")).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .filter_map(|l| l.split_once("] ").map(|(_, m)| m.to_string()))
            .filter(|m| {
                m.contains("file list") || m.starts_with("rsync on") || m.starts_with("rsync to")
            })
            .collect();
        logs.push(lines);
    }
    assert!(
        logs[0].iter().any(|m| m == "building file list")
            && logs[0].iter().any(|m| m == "receiving file list"),
        "{:?}",
        logs[0]
    );
    assert_eq!(logs[1], logs[0]);
}

/// Sets every file and symlink below `root` to one fixed mtime, so trees made at different
/// moments compare.
fn fix_times(root: &Path) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p.clone());
            }
            let c = std::ffi::CString::new(p.display().to_string()).unwrap();
            let ts = [libc::timespec {
                tv_sec: 1_600_000_000,
                tv_nsec: 0,
            }; 2];
            // SAFETY: a valid path and two timespecs.
            unsafe {
                libc::utimensat(
                    libc::AT_FDCWD,
                    c.as_ptr(),
                    ts.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
        }
    }
}

/// One client run of a tree scenario, and the directory whose tree is compared after it.
struct TreeRun {
    args: &'static [&'static str],
    tree: &'static str,
}

/// Runs `runs` in order against a stock and an rtsync daemon (each in a directory prepared
/// by `setup`), and asserts the same exit codes and resulting trees. Messages are not
/// compared (stock names module paths in its own way). Returns stock's exit codes.
fn compare_tree_runs(conf: &str, setup: &dyn Fn(&Path), runs: &[TreeRun]) -> Vec<Option<i32>> {
    let mut results = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path());
        fix_times(dir.path());
        let d = Daemon::start(kind, dir.path(), conf);
        let mut got = Vec::new();
        for run in runs {
            let out = client(&expand(run.args, &d), &[], Duration::from_secs(60));
            got.push((out.code, snapshot(&dir.path().join(run.tree)), out));
        }
        results.push(got);
    }
    for (i, run) in runs.iter().enumerate() {
        let (want, have) = (&results[0][i], &results[1][i]);
        assert_eq!(
            want.0, have.0,
            "{:?}: exit codes differ\n  stock: {:?}\n  ours:  {:?}",
            run.args, want.2, have.2
        );
        assert!(
            want.1 == have.1,
            "{:?}: trees differ: {}\n  stock: {:?}\n  ours:  {:?}",
            run.args,
            diff_lines(&want.1, &have.1),
            want.2,
            have.2
        );
    }
    results[0].iter().map(|r| r.0).collect()
}

/// A module with symlinks that stay inside it (`../` included) and ones that lead out.
fn symlinked_module(dir: &Path) {
    let m = dir.join("mod");
    for d in ["mod/sub", "mod/targetdir", "mod/y", "mod/x", "outside/od"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(m.join("target.txt"), "in module\n").unwrap();
    std::fs::write(m.join("targetdir/f.txt"), "in module dir\n").unwrap();
    std::fs::write(m.join("y/real.txt"), "real\n").unwrap();
    std::fs::write(dir.join("outside/secret"), "SECRET\n").unwrap();
    std::fs::write(dir.join("outside/od/s"), "SECRET2\n").unwrap();
    for (target, link) in [
        ("../target.txt", "sub/in_file"),
        ("../targetdir", "sub/in_dir"),
        ("../../outside/secret", "sub/esc_file"),
        ("../../outside/od", "sub/esc_dir"),
        ("../y", "x/jump"),
    ] {
        std::os::unix::fs::symlink(target, m.join(link)).unwrap();
    }
}

#[test]
fn symlink_following_pulls_stay_in_the_module_like_stock() {
    // -L, -k and --copy-unsafe-links follow symlinks that stay in the module (`..` too) and
    // refuse ones that lead out (exit 23); a source may pass through an in-module symlink.
    let conf =
        "use chroot = no\n[m]\n  path = {dir}/mod\n  read only = yes\n  uid = 0\n  gid = 0\n\
                [open]\n  path = {dir}/mod\n  uid = 0\n  gid = 0\n  insecure links = yes\n";
    let runs = [
        TreeRun {
            args: &["-aL", "URL:m/sub/", "DIR:d1/"],
            tree: "d1",
        },
        TreeRun {
            args: &["-ak", "URL:m/sub/", "DIR:d2/"],
            tree: "d2",
        },
        TreeRun {
            args: &["-a", "--copy-unsafe-links", "URL:m/sub/", "DIR:d3/"],
            tree: "d3",
        },
        TreeRun {
            args: &["-a", "URL:m/x/jump/", "DIR:d4/"],
            tree: "d4",
        },
        TreeRun {
            args: &["-aL", "URL:m/x/", "DIR:d5/"],
            tree: "d5",
        },
        TreeRun {
            args: &["-a", "URL:m/sub/esc_dir/", "DIR:d6/"],
            tree: "d6",
        },
        TreeRun {
            args: &["-aL", "URL:m/", "DIR:d7/"],
            tree: "d7",
        },
        TreeRun {
            args: &["-aL", "URL:open/sub/", "DIR:d8/"],
            tree: "d8",
        },
    ];
    let codes = compare_tree_runs(conf, &symlinked_module, &runs);
    assert_eq!(
        codes,
        [23, 23, 23, 0, 0, 23, 23, 0].map(Some),
        "stock behaves unexpectedly"
    );
}

#[test]
fn pushes_follow_in_module_destination_symlinks_like_stock() {
    // The destination may be reached through an in-module symlink; with -K a symlink to a
    // directory in the module stands for that directory. Module excludes are by name: an
    // excluded destination is refused, a path through a symlink is not.
    let conf =
        "use chroot = no\n[mod]\n  path = {dir}/mod\n  read only = no\n  uid = 0\n  gid = 0\n  \
                exclude = /secret/ /pub/blocked\n";
    let setup = |dir: &Path| {
        for d in ["mod/secret", "mod/pub", "src/blink2", "src/dir2/q", "one"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("mod/secret/f0"), "OLD\n").unwrap();
        std::fs::write(dir.join("mod/pub/blocked"), "OLD BLOCKED\n").unwrap();
        std::fs::write(dir.join("src/f0"), "NEW\n").unwrap();
        std::fs::write(dir.join("src/blink2/blocked"), "NEW BLOCKED\n").unwrap();
        std::fs::write(dir.join("src/dir2/q/x"), "deep\n").unwrap();
        std::fs::write(dir.join("one/hosts"), "hosts\n").unwrap();
        std::os::unix::fs::symlink("secret/", dir.join("mod/blink")).unwrap();
        std::os::unix::fs::symlink("pub/", dir.join("mod/blink2")).unwrap();
        std::os::unix::fs::symlink("pub", dir.join("mod/dir2")).unwrap();
        std::os::unix::fs::symlink("../..", dir.join("mod/up")).unwrap();
    };
    let runs = [
        TreeRun {
            args: &["-a", "DIR:src/f0", "URL:mod/blink/"],
            tree: "mod",
        },
        TreeRun {
            args: &["-a", "--keep-dirlinks", "DIR:src/", "URL:mod/"],
            tree: "mod",
        },
        TreeRun {
            args: &["-a", "DIR:one/hosts", "URL:mod/secret/x2"],
            tree: "mod",
        },
        TreeRun {
            args: &["-a", "DIR:one/hosts", "URL:mod/up/"],
            tree: "mod",
        },
    ];
    let codes = compare_tree_runs(conf, &setup, &runs);
    assert_eq!(codes, [0, 0, 3, 3].map(Some), "stock behaves unexpectedly");
}

#[test]
fn modules_under_a_private_parent_are_served_like_stock() {
    // The module user cannot search the module's parent: the root entered before the
    // privilege drop is where every path starts.
    let conf =
        "use chroot = no\n[m]\n  path = {dir}/private/mod\n  uid = nobody\n  gid = nogroup\n";
    let setup = |dir: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir.join("private/mod/sub")).unwrap();
        std::fs::write(dir.join("private/mod/sub/file"), "private\n").unwrap();
        std::os::unix::fs::symlink("sub/file", dir.join("private/mod/link")).unwrap();
        std::fs::set_permissions(dir.join("private"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
    };
    let runs = [
        TreeRun {
            args: &["-rt", "URL:m/", "DIR:d1/"],
            tree: "d1",
        },
        TreeRun {
            args: &["-rLt", "URL:m/", "DIR:d2/"],
            tree: "d2",
        },
    ];
    let codes = compare_tree_runs(conf, &setup, &runs);
    assert_eq!(codes, [0, 0].map(Some), "stock behaves unexpectedly");
}

#[test]
fn hook_values_that_a_shell_could_act_on_are_refused_like_stock() {
    // A `%RSYNC_*%` value holding a shell metacharacter is never put into an exec hook (the
    // session ends, the log says why); an ordinary one is quoted for where it lands. The
    // module path with a space is refused even though the operator wrote it.
    let conf = "use chroot = no\n\
                [ok]\n  path = {dir}/mod\n  pre-xfer exec = printf '%s|' %RSYNC_MODULE_NAME% \"%RSYNC_MODULE_NAME%\" '%RSYNC_MODULE_NAME%' > {dir}/ok.out\n\
                [spaced]\n  path = {dir}/my mod\n  pre-xfer exec = printf %s %RSYNC_MODULE_PATH% > {dir}/spaced.out\n\
                [early]\n  path = {dir}/mod\n  early exec = sh -c 'touch {dir}/early.out-%RSYNC_HOST_ADDR%'\n";
    let mut results = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        make_tree(dir.path());
        std::fs::create_dir_all(dir.path().join("my mod")).unwrap();
        let d = Daemon::start(kind, dir.path(), conf);
        let ok = client(
            &expand(&["-r", "URL:ok/", "DIR:o1/"], &d),
            &[],
            Duration::from_secs(60),
        );
        let spaced = client(
            &expand(&["-r", "URL:spaced/", "DIR:o2/"], &d),
            &[],
            Duration::from_secs(60),
        );
        let early = client(
            &expand(&["-r", "URL:early/", "DIR:o3/"], &d),
            &[],
            Duration::from_secs(60),
        );
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).ok();
        let refused = d
            .log_messages()
            .iter()
            .filter(|l| l.contains("holds a shell metacharacter"))
            .cloned()
            .collect::<Vec<_>>();
        results.push((
            ok.code,
            read("ok.out"),
            spaced.code,
            read("spaced.out"),
            early.code,
            read("early.out-127.0.0.1"),
        ));
        if kind == Kind::Rtsync {
            // Stock logs the refusal where `log file` points; we log it too.
            assert_eq!(refused.len(), 1, "{refused:?}");
        }
    }
    assert_eq!(results[0].0, Some(0), "stock: {:?}", results[0]);
    assert_ne!(results[0].2, Some(0), "stock: {:?}", results[0]);
    assert_eq!(results[0], results[1]);
}

#[test]
fn early_input_reaches_the_early_exec_hook_like_stock() {
    // `--early-input` bytes are the `early exec` command's standard input; our client sends
    // them as stock's does, and our daemon hands them over as stock's does.
    let conf =
        "use chroot = no\n[early]\n  path = {dir}/mod\n  early exec = cat > {dir}/early.out\n";
    let mut got = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        for ours_client in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            make_tree(dir.path());
            std::fs::write(dir.path().join("input"), b"EARLY\0PAYLOAD\n").unwrap();
            let d = Daemon::start(kind, dir.path(), conf);
            let args = expand(
                &["--early-input=DIR:input", "-r", "URL:early/", "DIR:out/"],
                &d,
            );
            let code = if ours_client {
                std::process::Command::new(rtsync_bin())
                    .arg("rsync")
                    .args(&args)
                    .output()
                    .unwrap()
                    .status
                    .code()
            } else {
                client(&args, &[], Duration::from_secs(60)).code
            };
            let out = std::fs::read(dir.path().join("early.out")).ok();
            got.push((kind, ours_client, code, out));
        }
    }
    for g in &got {
        assert_eq!(
            (g.2, g.3.as_deref()),
            (Some(0), Some(&b"EARLY\0PAYLOAD\n"[..])),
            "{got:?}"
        );
    }
}

#[test]
fn daemon_over_a_remote_shell_and_source_wildcards_like_stock() {
    // `-e SHELL host::` starts `rsync --server --daemon .` through the shell (with
    // `--rsync-path` words such as `--config`); a daemon expands wildcards in sources.
    let conf = "use chroot = no\n[pub]\n  path = {dir}/mod\n  comment = via a shell\n[hidden]\n  path = {dir}/mod\n  list = no\n";
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path());
    std::fs::write(dir.path().join("mod/n.txt"), "n\n").unwrap();
    std::fs::write(dir.path().join("mod/other"), "o\n").unwrap();
    let conf_path = write_conf(dir.path(), conf);
    let rsh = dir.path().join("rsh");
    script::write_script(&rsh, "#!/bin/sh\nshift\nexec sh -c \"$*\"\n");
    let mut outs = Vec::new();
    for daemon in [
        stock_rsync().display().to_string(),
        format!("{} rsync", rtsync_bin().display()),
    ] {
        for ours in [false, true] {
            let path = format!("--rsync-path={daemon} --config={}", conf_path.display());
            let run = |args: &[&str]| {
                let mut argv = vec![format!("--rsh={}", rsh.display()), path.clone()];
                argv.extend(args.iter().map(|a| a.to_string()));
                if ours {
                    let o = std::process::Command::new(rtsync_bin())
                        .arg("rsync")
                        .args(&argv)
                        .output()
                        .unwrap();
                    (
                        o.status.code(),
                        String::from_utf8_lossy(&o.stdout).into_owned(),
                    )
                } else {
                    let o = client(&argv, &[], Duration::from_secs(30));
                    (o.code, o.stdout)
                }
            };
            let listing = run(&["localhost::"]);
            let globbed = run(&["--list-only", "localhost::pub/*.txt"]);
            let names: Vec<String> = globbed
                .1
                .lines()
                .filter_map(|l| l.rsplit(' ').next().map(String::from))
                .collect();
            outs.push((daemon.clone(), ours, listing, globbed.0, names));
        }
    }
    assert_eq!(outs[0].2 .0, Some(0), "{outs:?}");
    assert!(outs[0].2 .1.contains("via a shell"), "{outs:?}");
    assert_eq!(outs[0].4, ["m.txt", "n.txt"], "{outs:?}");
    for o in &outs[1..] {
        assert_eq!(
            (&o.2, o.3, &o.4),
            (&outs[0].2, outs[0].3, &outs[0].4),
            "{outs:?}"
        );
    }
}

#[test]
fn module_paths_through_foreign_symlinks_are_refused_like_stock() {
    // Without chroot, a module path through a symlink another user owns is not entered;
    // one through root's own symlink is.
    let conf = "use chroot = no\n[planted]\n  path = {dir}/plant\n[own]\n  path = {dir}/own\n";
    let mut outs = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        make_tree(dir.path());
        std::fs::write(dir.path().join("mod/canary"), "x\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("mod"), dir.path().join("plant")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("mod"), dir.path().join("own")).unwrap();
        let c = std::ffi::CString::new(dir.path().join("plant").display().to_string()).unwrap();
        // SAFETY: changing the owner of the link we just made.
        assert_eq!(unsafe { libc::lchown(c.as_ptr(), 65534, 65534) }, 0);
        let d = Daemon::start(kind, dir.path(), conf);
        let planted = client(&expand(&["URL:planted/"], &d), &[], Duration::from_secs(30));
        let own = client(&expand(&["URL:own/"], &d), &[], Duration::from_secs(30));
        outs.push((
            planted.code,
            planted.stdout.contains("canary"),
            own.code,
            own.stdout.contains("canary"),
        ));
    }
    assert_eq!(outs[0], (Some(5), false, Some(0), true), "stock: {outs:?}");
    assert_eq!(outs[0], outs[1]);
}

#[test]
fn name_converter_maps_ids_like_stock() {
    // A module's `name converter` answers every name/id lookup of the session: names the
    // client sends (push) and ids the daemon lists (pull).
    let conf = "use chroot = no\nnumeric ids = no\n[conv]\n  path = {dir}/mod\n  read only = no\n  uid = 0\n  gid = 0\n  \
                name converter = {dir}/conv.sh\n";
    let setup = |dir: &Path| {
        make_tree(dir);
        script::write_script(
            &dir.join("conv.sh"),
            "#!/bin/sh\nwhile read k v; do case $k in usr) echo 4242;; grp) echo 4343;; \
             uid|gid) echo nobody;; esac; done\n",
        );
        for f in ["src", "src/a.txt", "src/sub", "src/sub/b.txt"] {
            let c = std::ffi::CString::new(dir.join(f).display().to_string()).unwrap();
            // SAFETY: chown on a file we created.
            assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        }
    };
    let runs = [
        TreeRun {
            args: &["-rtog", "DIR:src/", "URL:conv/in/"],
            tree: "mod/in",
        },
        TreeRun {
            args: &["-rtog", "URL:conv/in/", "DIR:back/"],
            tree: "back",
        },
    ];
    let codes = compare_tree_runs(conf, &setup, &runs);
    assert_eq!(codes, [0, 0].map(Some), "stock behaves unexpectedly");
}

#[test]
fn refused_option_is_logged() {
    // A refused option is reported to the client and written to the daemon log, in stock's
    // words ("rsync: The server is configured to refuse --NAME", as stock 3.5.0 logs it with
    // a `log file`; its --log-file run here does not show the line, so ours is checked alone).
    let conf = "use chroot = no\n[mod]\n  path = {dir}\n  refuse options = compress-threads\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), b"x").unwrap();
    let d = Daemon::start(Kind::Rtsync, dir.path(), conf);
    let to = dir.path().join("got");
    for spelling in ["--compress-threads=2", "--zt=2"] {
        let args = [
            "-z".to_string(),
            format!("-M{spelling}"),
            d.url("mod/f"),
            to.display().to_string(),
        ];
        let out = client(&args, &[], Duration::from_secs(20));
        assert_ne!(out.code, Some(0), "accepted {spelling}");
    }
    let mut refusals: Vec<String> = d
        .log_messages()
        .into_iter()
        .filter(|l| l.contains("configured to refuse"))
        .collect();
    refusals.sort();
    assert_eq!(
        refusals,
        [
            "rsync: The server is configured to refuse --compress-threads",
            "rsync: The server is configured to refuse --zt",
        ]
    );
}

#[test]
fn compress_threads_is_accepted_like_stock() {
    // A client may ask the daemon's sender for Zstandard worker threads (-M--zt); stock
    // accepts it, and so must we (our compressor has no worker threads to set).
    let conf = "use chroot = no\n[mod]\n  path = {dir}\n";
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"data\n").unwrap();
        let d = Daemon::start(kind, dir.path(), conf);
        for spelling in ["-M--compress-threads=2", "-M--zt=2"] {
            let to = dir.path().join(format!("got{}", spelling.len()));
            let args = [
                "-z".to_string(),
                spelling.to_string(),
                d.url("mod/f"),
                to.display().to_string(),
            ];
            let out = client(&args, &[], Duration::from_secs(20));
            assert_eq!(out.code, Some(0), "{kind:?} {spelling}: {}", out.stderr);
            assert_eq!(std::fs::read(&to).unwrap(), b"data\n");
        }
    }
}

const REFUSE_CONF: &str = "\
use chroot = no
uid = 0
gid = 0
[rdel]
  path = {dir}/mod
  read only = no
  refuse options = delete
[rdelwild]
  path = {dir}/mod
  read only = no
  refuse options = delete* !delete-missing-args
[rwhen]
  path = {dir}/mod
  read only = no
  refuse options = delete-before del
[rbefore]
  path = {dir}/mod
  read only = no
  refuse options = delete-before
[rcomp]
  path = {dir}/mod
  read only = no
  refuse options = compress
[rinplace]
  path = {dir}/mod
  read only = no
  refuse options = inplace
[rpartial]
  path = {dir}/mod
  read only = no
  refuse options = partial
[rarch]
  path = {dir}/mod
  read only = no
  refuse options = t o
[rprogress]
  path = {dir}/mod
  read only = no
  refuse options = progress
[rnoiconv]
  path = {dir}/mod
  read only = no
  refuse options = no-iconv
[rnega]
  path = {dir}/mod
  read only = no
  refuse options = * !a !e !delete-during
";

/// `refuse options` refuses what stock refuses: the named options, and the options that imply
/// them (every delete implies `delete`, `--append` implies `inplace`, a compression choice
/// implies `compress`, `-a` its parts, `-P` `--partial` and `--progress` …), with the same
/// message and exit code; options that imply nothing refused still work.
#[test]
fn refuse_options_cover_implied_options_like_stock() {
    macro_rules! case {
        ($name:expr, $code:expr, [$($a:expr),*]) => {
            Case { name: $name, args: &[$($a),*], env: &[], code: $code }
        };
    }
    let cases: &[Case] = &[
        case!(
            "delete-missing-args under delete",
            4,
            [
                "-r",
                "--delete-missing-args",
                "DIR:src/a.txt",
                "DIR:src/nope",
                "URL:rdel/"
            ]
        ),
        case!(
            "delete-after under delete",
            4,
            ["-r", "--delete-after", "DIR:src/", "URL:rdel/"]
        ),
        case!(
            "delete-delay under delete",
            4,
            ["-r", "--delete-delay", "DIR:src/", "URL:rdel/"]
        ),
        case!(
            "delete-excluded under delete",
            4,
            ["-r", "--delete-excluded", "DIR:src/", "URL:rdel/"]
        ),
        case!(
            "delete pull under delete (a client receiver keeps it)",
            0,
            ["-r", "--delete", "URL:rdel/", "DIR:out1/"]
        ),
        case!(
            "remove-source-files pull under delete",
            10,
            ["-r", "--remove-source-files", "URL:rdel/", "DIR:out2/"]
        ),
        case!(
            "remove-source-files push under delete",
            0,
            ["-r", "--remove-source-files", "DIR:src/sub/", "URL:rdel/"]
        ),
        case!(
            "plain push under delete",
            0,
            ["-r", "DIR:src/", "URL:rdel/"]
        ),
        case!(
            "delete-missing-args, negated but implying delete",
            4,
            [
                "-r",
                "--delete-missing-args",
                "DIR:src/a.txt",
                "URL:rdelwild/"
            ]
        ),
        case!(
            "delete under wildcard",
            4,
            ["-r", "--delete", "DIR:src/", "URL:rdelwild/"]
        ),
        case!(
            "delete-after under wildcard",
            4,
            ["-r", "--delete-after", "DIR:src/", "URL:rdelwild/"]
        ),
        case!(
            "untimed delete, both timings refused",
            4,
            ["-r", "--delete", "DIR:src/", "URL:rwhen/"]
        ),
        case!(
            "untimed delete-excluded, both timings refused",
            4,
            ["-r", "--delete-excluded", "DIR:src/", "URL:rwhen/"]
        ),
        case!(
            "untimed delete, before refused",
            0,
            ["-r", "--delete", "DIR:src/", "URL:rbefore/"]
        ),
        case!(
            "compress-choice under compress",
            4,
            ["-r", "--zc=zlib", "DIR:src/", "URL:rcomp/"]
        ),
        case!(
            "new-compress under compress",
            4,
            ["-r", "-M--new-compress", "DIR:src/", "URL:rcomp/"]
        ),
        case!(
            "compress-choice none under compress",
            0,
            ["-r", "-M--zc=none", "DIR:src/", "URL:rcomp/"]
        ),
        case!(
            "-z then --no-compress under compress",
            4,
            ["-r", "-M-z", "-M--no-compress", "DIR:src/", "URL:rcomp/"]
        ),
        case!(
            "append under inplace",
            4,
            ["-r", "--append", "DIR:src/", "URL:rinplace/"]
        ),
        case!(
            "append-verify under inplace",
            4,
            ["-r", "--append-verify", "DIR:src/", "URL:rinplace/"]
        ),
        case!(
            "inplace under partial",
            4,
            ["-r", "--inplace", "DIR:src/", "URL:rpartial/"]
        ),
        case!(
            "partial-dir . under partial",
            4,
            ["-r", "-M--partial-dir=.", "DIR:src/", "URL:rpartial/"]
        ),
        case!(
            "partial-dir under partial",
            0,
            ["-r", "--partial-dir=.pd", "DIR:src/", "URL:rpartial/"]
        ),
        case!(
            "delay-updates under partial",
            0,
            ["-r", "--delay-updates", "DIR:src/", "URL:rpartial/"]
        ),
        case!(
            "-P under partial",
            4,
            ["-r", "-M-P", "DIR:src/", "URL:rpartial/"]
        ),
        case!(
            "-P under progress",
            4,
            ["-r", "-M-P", "DIR:src/", "URL:rprogress/"]
        ),
        case!("-a under t o", 4, ["-r", "-M-a", "DIR:src/", "URL:rarch/"]),
        case!("-t under t o", 4, ["-rt", "DIR:src/", "URL:rarch/"]),
        case!("-rl under t o", 0, ["-rl", "DIR:src/", "URL:rarch/"]),
        case!(
            "no --iconv under no-iconv",
            4,
            ["-r", "DIR:src/", "URL:rnoiconv/"]
        ),
        case!(
            "everything but -a, delete-during implying delete",
            4,
            ["-rlt", "--delete-during", "DIR:src/", "URL:rnega/"]
        ),
        case!("everything but -a", 0, ["-rlt", "DIR:src/", "URL:rnega/"]),
        case!(
            "everything but -a, -z refused",
            4,
            ["-rz", "DIR:src/", "URL:rnega/"]
        ),
        case!(
            "everything but -a, delete refused",
            4,
            ["-r", "--delete-after", "DIR:src/", "URL:rnega/"]
        ),
    ];
    compare_cases(REFUSE_CONF, cases, &|_| {});
}

/// A module with per-directory rule files: `.rsync-filter`s, a `.cvsignore`, one the module's
/// own rules hide, and one that is a symlink leading out of the module.
fn merge_file_module(dir: &Path) {
    let m = dir.join("mod");
    for d in ["sub/deep", "cvs", "hidden", "escape"] {
        std::fs::create_dir_all(m.join(d)).unwrap();
    }
    let files: &[(&str, &str)] = &[
        (".rsync-filter", "- *.o\n"),
        ("a.c", "c\n"),
        ("a.o", "o\n"),
        ("sub/.rsync-filter", "- *.tmp\n"),
        ("sub/x.tmp", "t\n"),
        ("sub/y.txt", "y\n"),
        ("sub/z.o", "o\n"),
        ("sub/deep/.rsync-filter", "+ *.tmp\n- *.txt\n"),
        ("sub/deep/keep.tmp", "t\n"),
        ("sub/deep/drop.txt", "d\n"),
        ("cvs/.cvsignore", "ign*\n"),
        ("cvs/ignored.txt", "i\n"),
        ("cvs/kept.txt", "k\n"),
        ("cvs/core", "core\n"),
        ("hidden/.rsync-filter", "- *\n"),
        ("hidden/shown.txt", "s\n"),
        ("escape/shown.txt", "s\n"),
    ];
    for (name, text) in files {
        std::fs::write(m.join(name), text).unwrap();
    }
    std::fs::write(dir.join("outside.rules"), "- *\n").unwrap();
    std::os::unix::fs::symlink("../../outside.rules", m.join("escape/.rsync-filter")).unwrap();
}

#[test]
fn pulls_read_per_directory_rule_files_inside_the_module_like_stock() {
    // A daemon's sender reads the per-directory rule files a client names (-F, `: NAME`,
    // -C's .cvsignore) inside the module, not one the module's rules hide or one that leads
    // out of the module.
    let conf = "use chroot = no\nuid = 0\ngid = 0\n[mod]\n  path = {dir}/mod\n  \
                exclude = /hidden/.rsync-filter\n";
    let runs = [
        TreeRun {
            args: &["-a", "-F", "URL:mod/", "DIR:o1/"],
            tree: "o1",
        },
        TreeRun {
            args: &["-a", "--filter=: .rsync-filter", "URL:mod/sub/", "DIR:o2/"],
            tree: "o2",
        },
        TreeRun {
            args: &["-a", "-C", "URL:mod/cvs/", "DIR:o3/"],
            tree: "o3",
        },
        TreeRun {
            args: &["-a", "-FF", "--no-i-r", "URL:mod/", "DIR:o4/"],
            tree: "o4",
        },
        TreeRun {
            args: &[
                "-rt",
                "--filter=dir-merge .rsync-filter",
                "URL:mod/escape",
                "DIR:o5/",
            ],
            tree: "o5",
        },
    ];
    let codes = compare_tree_runs(conf, &merge_file_module, &runs);
    assert_eq!(codes, [Some(0); 5], "stock behaves unexpectedly");
}

/// A client that sends a receiving daemon one file-list entry whose owner name carries a
/// newline (protocol 30, two-byte flags, `-o`), then waits a moment; returns what the
/// daemon sent back.
fn push_owner_name_with_newline(port: u16) -> Vec<u8> {
    use rtsync_wire::varint::{put_i32, put_varint, put_varlong};
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut greeting = Vec::new();
    let mut b = [0u8; 1];
    while s.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
        greeting.push(b[0]);
    }
    s.write_all(b"@RSYNCD: 30.0\nrecv\n").unwrap();
    let mut ok = Vec::new();
    while s.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
        ok.push(b[0]);
    }
    assert_eq!(ok, b"@RSYNCD: OK", "{}", String::from_utf8_lossy(&ok));
    s.write_all(b"--server\0-oe.LsfC\0.\0recv/\0\0").unwrap();
    let mut setup = [0u8; 5]; // compat flags (one byte) and the checksum seed
    s.read_exact(&mut setup).unwrap();
    // XMIT_EXTENDED_FLAGS | XMIT_TOP_DIR, and (second byte) XMIT_USER_NAME_FOLLOWS.
    let mut list = vec![0x05u8, 0x04];
    list.push(1);
    list.push(b'f');
    put_varlong(&mut list, 0, 3);
    put_varlong(&mut list, 1_600_000_000, 4);
    put_i32(&mut list, 0o100644);
    put_varint(&mut list, 1);
    let name = b"bad\nname";
    list.push(name.len() as u8);
    list.extend_from_slice(name);
    list.push(0); // end of the list
    let mut frame = ((7u32 << 24) | list.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&list);
    s.write_all(&frame).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut back = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = s.read(&mut buf) {
        back.extend_from_slice(&buf[..n]);
    }
    back
}

#[test]
fn name_converter_refuses_names_with_control_characters_like_stock() {
    // A sender's user name with a newline would inject a second request into the converter's
    // pipe: the receiving daemon refuses it as it reads the list ("invalid name-converter
    // token") and never passes it on.
    let conf = "use chroot = no\nuid = 0\ngid = 0\n[recv]\n  path = {dir}/mod\n  \
                read only = no\n  numeric ids = no\n  name converter = {dir}/conv\n";
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("mod")).unwrap();
        let conv = dir.path().join("conv");
        let conv_log = dir.path().join("conv.log");
        script::write_script(
            &conv,
            &format!(
                "#!/bin/sh\nwhile IFS= read -r line; do echo \"$line\" >> {}; echo 123; done\n",
                conv_log.display()
            ),
        );
        let d = Daemon::start(kind, dir.path(), conf);
        let back = push_owner_name_with_newline(d.port);
        // (Stock tells the client; we write it to the daemon's log.)
        let token = b"invalid name-converter token: bad";
        let mut refused = back.windows(token.len()).any(|w| w == token);
        for _ in 0..100 {
            refused |= d
                .log_messages()
                .iter()
                .any(|l| l.contains("invalid name-converter token: bad"));
            if refused {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let requests = std::fs::read_to_string(&conv_log).unwrap_or_default();
        let stderr = std::fs::read_to_string(dir.path().join("daemon.stderr")).unwrap_or_default();
        assert!(
            refused,
            "{kind:?}: log {:?} stderr {stderr:?}",
            d.log_messages()
        );
        assert!(
            !requests.lines().any(|l| l.contains("name")),
            "{kind:?}: converter asked {requests:?}"
        );
    }
}

/// `-R` pulls name files from the module's top; a `./` the client writes also sends the
/// module's root (as stock's implied `.`), one it does not write does not.
#[test]
fn relative_pulls_start_where_the_client_says_like_stock() {
    let conf = "use chroot = no\n[pub]\n  path = {dir}/mod\n";
    let cases: &[Case] = &[
        Case {
            name: "-R from the top",
            args: &["-iR", "URL:pub/m.txt", "DIR:o1/"],
            env: &[],
            code: 0,
        },
        Case {
            name: "-R with ./",
            args: &["-iR", "URL:pub/./m.txt", "DIR:o2/"],
            env: &[],
            code: 0,
        },
    ];
    compare_cases(conf, cases, &|_| {});
}

/// `--daemon --bwlimit=KIB`: a session is held to the daemon's rate (or the client's lower
/// one) and still transfers everything; a value that is not an integer is refused as stock
/// refuses it.
#[test]
fn daemon_bwlimit_sessions_transfer_whole_like_stock() {
    for bad in ["--bwlimit=1K", "--bwlimit=abc", "--bwlimit=1.5"] {
        let ours = std::process::Command::new(rtsync_bin())
            .args(["daemon", "--no-detach", bad])
            .output()
            .unwrap();
        let stock = std::process::Command::new(stock_rsync())
            .args(["--daemon", "--no-detach", bad])
            .output()
            .unwrap();
        assert_eq!(ours.status.code(), stock.status.code(), "{bad}");
        assert_eq!(
            String::from_utf8_lossy(&ours.stderr),
            String::from_utf8_lossy(&stock.stderr),
            "{bad}"
        );
    }
    let conf = "use chroot = no\npid file = {dir}/pid\n[rw]\n  path = {dir}/mod\n  read only = no\n  uid = root\n  gid = root\n";
    let runs: &[&[&str]] = &[
        &["-a", "URL:rw/", "DIR:pulled/"],
        &["-a", "--bwlimit=100000", "URL:rw/", "DIR:pulled2/"],
        &["-a", "--bwlimit=2000", "URL:rw/", "DIR:pulled3/"],
        &["-a", "DIR:pulled/", "URL:rw/pushed/"],
    ];
    let mut trees = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path());
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        std::fs::write(dir.path().join("mod/big.bin"), data).unwrap();
        fix_times(dir.path());
        let d = Daemon::start_with(kind, dir.path(), conf, &["--bwlimit=3000"]);
        let mut got = Vec::new();
        for args in runs {
            let o = client(&expand(args, &d), &[], Duration::from_secs(60));
            got.push(o.code);
        }
        assert!(got.iter().all(|c| *c == Some(0)), "{kind:?}: {got:?}");
        trees.push([
            snapshot(&dir.path().join("pulled")),
            snapshot(&dir.path().join("pulled2")),
            snapshot(&dir.path().join("pulled3")),
            snapshot(&dir.path().join("mod/pushed")),
            snapshot(&dir.path().join("mod")),
        ]);
    }
    for (i, (want, have)) in trees[0].iter().zip(&trees[1]).enumerate() {
        assert!(want == have, "tree {i}: {}", diff_lines(want, have));
    }
    assert!(trees[1][0].iter().any(|l| l.contains("big.bin")));
}

/// With --files-from the sender works in the source directory: a missing name is shown
/// from there (`"/sub/missing" (in m)`), as stock's daemon shows it, relative or not. The
/// names that are there are sent (stock 3.5.0's daemon calls them vanished: not copied).
#[test]
fn files_from_names_a_missing_entry_from_the_source_directory() {
    const FF_CONF: &str = "pid file = {dir}/pid\nuse chroot = false\nuid = root\ngid = root\n[m]\npath = {dir}/mod\nread only = false\n";
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for d in &dirs {
        std::fs::create_dir_all(d.path().join("mod/sub/deeper")).unwrap();
        std::fs::write(d.path().join("mod/sub/deeper/f"), b"listed\n").unwrap();
        std::fs::write(d.path().join("list"), b"deeper/f\nmissing\n").unwrap();
    }
    let stock = Daemon::start(Kind::Stock, dirs[0].path(), FF_CONF);
    let ours = Daemon::start(Kind::Rtsync, dirs[1].path(), FF_CONF);
    for relative in [true, false] {
        let mut seen = Vec::new();
        for d in [&stock, &ours] {
            let mut args = vec![
                "-a".to_string(),
                format!("--files-from={}", d.dir.join("list").display()),
            ];
            if !relative {
                args.push("--no-relative".into());
            }
            let dest = d.dir.join(format!("dest-{relative}"));
            args.extend([d.url("m/sub/"), format!("{}/", dest.display())]);
            let out = client(&args, &[], Duration::from_secs(60));
            assert_eq!(
                out.code,
                Some(23),
                "{:?} relative {relative}: {}",
                d.kind,
                out.stderr
            );
            let line = out
                .stderr
                .lines()
                .find(|l| l.contains("link_stat"))
                .unwrap_or_default()
                .to_string();
            seen.push(line);
            if d.kind == Kind::Rtsync {
                let sent = if relative { "deeper/f" } else { "f" };
                assert!(
                    dest.join(sent).is_file(),
                    "relative {relative}: {}",
                    out.stderr
                );
            }
        }
        assert!(
            seen[0].contains("\"/sub/missing\" (in m)"),
            "stock: {}",
            seen[0]
        );
        assert_eq!(seen[0], seen[1], "relative {relative}");
    }
}

/// A listener told to stop (SIGTERM) ends as stock's does: its closing `sent 0 bytes …` line in
/// the log, its pid file removed, exit code 0.
#[test]
fn a_terminated_listener_logs_and_exits_like_stock() {
    let mut seen = Vec::new();
    for kind in [Kind::Stock, Kind::Rtsync] {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path());
        let mut d = Daemon::start(kind, dir.path(), CONF);
        let listing = client(&[d.url("")], &[], Duration::from_secs(30));
        assert_eq!(listing.code, Some(0), "{kind:?}: {listing:?}");
        let code = d.terminate();
        let log: Vec<String> = d
            .log_messages()
            .into_iter()
            // (The starting line names the implementation.)
            .filter(|l| !l.contains(" starting, listening on port "))
            .collect();
        seen.push((code, log, dir.path().join("pid").exists()));
    }
    assert_eq!(seen[0].0, Some(0), "stock: {:?}", seen[0]);
    assert_eq!(
        seen[0].1.last().map(String::as_str),
        Some("sent 0 bytes  received 0 bytes  total size 0"),
        "stock: {:?}",
        seen[0]
    );
    assert!(!seen[0].2, "stock's pid file stays: {:?}", seen[0]);
    assert_eq!(seen[1], seen[0], "ours against stock's");
}
