//! One transfer in any pairing of rtsync and stock rsync: rtsync's client against stock's
//! daemon and `--server`, stock's client against `rtsync daemon` and `rtsync rsync --server`
//! (the real binary, through a remote shell script that runs the command locally), or a
//! local copy. Tests that check a behaviour "in every role" run the same options through
//! [`Role::run`] and compare with [`stock_reference`]. A test using this module declares
//! `mod daemon_util; mod interop_util; mod roles;`.
#![allow(dead_code)]

pub mod matrix;

use std::path::Path;
use std::process::{Command, Output};

use crate::daemon_util::{self, Daemon, Kind};
use crate::interop_util::{fake_ssh, run_stock, Module, StockDaemon};

/// Who is client, who is server, and which way the files go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `rtsync rsync SRC/ DEST/` in one process.
    Local,
    OursPullStockDaemon,
    OursPushStockDaemon,
    OursPullStockShell,
    OursPushStockShell,
    StockPullsOurDaemon,
    StockPushesOurDaemon,
    StockPullsOurShell,
    StockPushesOurShell,
}

impl Role {
    /// Every role with a wire between the two ends.
    pub const WIRE: [Role; 8] = [
        Role::OursPullStockDaemon,
        Role::OursPushStockDaemon,
        Role::OursPullStockShell,
        Role::OursPushStockShell,
        Role::StockPullsOurDaemon,
        Role::StockPushesOurDaemon,
        Role::StockPullsOurShell,
        Role::StockPushesOurShell,
    ];

    /// The client receives.
    pub fn pulls(self) -> bool {
        matches!(
            self,
            Role::OursPullStockDaemon
                | Role::OursPullStockShell
                | Role::StockPullsOurDaemon
                | Role::StockPullsOurShell
        )
    }

    /// Runs rsync with `opts` from `src/` into `dest/` in this role; `work` (a directory
    /// outside both) holds the remote shell script and the daemon's files. Returns the
    /// client's output; a daemon started for the run is stopped before returning.
    pub fn run(self, opts: &[&str], src: &Path, dest: &Path, work: &Path) -> Output {
        let from = format!("{}/", src.display());
        let to = format!("{}/", dest.display());
        let ssh = fake_ssh(work).display().to_string();
        let ours = |rest: &[String]| rtsync(opts, rest);
        let stock = |rest: &[String]| stock(opts, rest);
        match self {
            Role::Local => ours(&[from, to]),
            Role::OursPullStockDaemon | Role::OursPushStockDaemon => {
                let d = StockDaemon::start(&[Module {
                    name: "mod",
                    path: if self.pulls() { src } else { dest },
                    extra: "",
                }]);
                if self.pulls() {
                    ours(&[d.url("mod/"), to])
                } else {
                    ours(&[from, d.url("mod/")])
                }
            }
            Role::OursPullStockShell => ours(&["-e".into(), ssh, format!("localhost:{from}"), to]),
            Role::OursPushStockShell => ours(&["-e".into(), ssh, from, format!("localhost:{to}")]),
            Role::StockPullsOurDaemon | Role::StockPushesOurDaemon => {
                let d = our_daemon(work, if self.pulls() { src } else { dest });
                if self.pulls() {
                    stock(&[d.url("mod/"), to])
                } else {
                    stock(&[from, d.url("mod/")])
                }
            }
            Role::StockPullsOurShell => stock(&[
                "-e".into(),
                ssh,
                our_rsync_path(),
                format!("localhost:{from}"),
                to,
            ]),
            Role::StockPushesOurShell => stock(&[
                "-e".into(),
                ssh,
                our_rsync_path(),
                from,
                format!("localhost:{to}"),
            ]),
        }
    }
}

/// The reference: stock's client and stock's server doing the transfer over a remote shell,
/// pulling when `pull` (as the role under test does), else pushing.
pub fn stock_reference(pull: bool, opts: &[&str], src: &Path, dest: &Path, work: &Path) -> Output {
    let from = format!("{}/", src.display());
    let to = format!("{}/", dest.display());
    let ssh = fake_ssh(work).display().to_string();
    if pull {
        stock(opts, &["-e".into(), ssh, format!("localhost:{from}"), to])
    } else {
        stock(opts, &["-e".into(), ssh, from, format!("localhost:{to}")])
    }
}

/// `rtsync daemon` serving `root` as the writable module `mod`, as root (owners kept).
fn our_daemon(work: &Path, root: &Path) -> Daemon {
    let dir = work.join(format!("our-daemon-{}", daemon_util::free_port()));
    std::fs::create_dir(&dir).unwrap();
    let conf = format!(
        "use chroot = no\nuid = root\ngid = root\n[mod]\npath = {}\nread only = false\n",
        root.display()
    );
    Daemon::start(Kind::Rtsync, &dir, &conf)
}

fn our_rsync_path() -> String {
    format!("--rsync-path={} rsync", env!("CARGO_BIN_EXE_rtsync"))
}

fn rtsync(opts: &[&str], rest: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rtsync"))
        .arg("rsync")
        .args(opts)
        .args(rest)
        .output()
        .unwrap()
}

fn stock(opts: &[&str], rest: &[String]) -> Output {
    let mut a: Vec<&str> = opts.to_vec();
    a.extend(rest.iter().map(String::as_str));
    run_stock(&a)
}

/// The exit code, with stderr shown when it is not 0 (for the failure message).
pub fn code(out: &Output) -> i32 {
    if !out.status.success() {
        eprintln!("stderr: {}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.code().unwrap_or(-1)
}
