//! Kernel limits seen through the drop-ins, compared with stock: queue overflow and the watch
//! limit. Each test lowers a sysctl for a moment and restores it, also on failure.

mod inotify_util;

use std::fs;
use std::sync::Mutex;

use inotify_util::{run_plain, Session, Tool};

static SERIAL: Mutex<()> = Mutex::new(());

/// Sets a sysctl and puts the old value back when dropped.
struct Sysctl {
    path: String,
    old: String,
}

impl Sysctl {
    fn set(name: &str, value: u64) -> Sysctl {
        let path = format!("/proc/sys/fs/inotify/{name}");
        let old = fs::read_to_string(&path).expect("read sysctl (tests run as root)");
        fs::write(&path, value.to_string()).expect("write sysctl (tests run as root)");
        Sysctl { path, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        fs::write(&self.path, self.old.trim()).expect("restore sysctl");
    }
}

#[test]
fn queue_overflow_prints_like_stock() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut outs = Vec::new();
    // Q_OVERFLOW is printed only when asked for: it is not part of the default event set.
    let variants: [(&[&str], bool); 3] = [
        (&["-m", "t"], false),
        (&["-m", "-r", "-e", "create", "-e", "q_overflow", "t"], true),
        (
            &["-m", "-r", "-c", "-e", "all_events,q_overflow", "t"],
            true,
        ),
    ];
    for (args, printed) in variants {
        for tool in [Tool::Stock, Tool::Rtsync] {
            let s = {
                let _limit = Sysctl::set("max_queued_events", 10);
                Session::start(tool, "inotifywait", args, "mkdir -p t/sub")
            };
            // Frozen while 30 files appear, the watcher finds a full queue when it wakes.
            s.signal(libc::SIGSTOP);
            s.step("for i in $(seq 30); do touch t/f$i; done");
            s.signal(libc::SIGCONT);
            // Only once the queue is drained does a new event find room (on a loaded
            // machine the watcher may take a while to get there).
            s.settle_stdout();
            s.step("touch t/sub/after");
            outs.push(s.stop(libc::SIGTERM));
        }
        assert_eq!(outs[1], outs[0], "{args:?}");
        assert_eq!(
            outs[0].stdout.contains("Q_OVERFLOW"),
            printed,
            "{:?}",
            outs[0]
        );
        outs.clear();
    }
}

#[test]
fn watch_limit_message_matches_stock() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    inotify_util::sh(dir.path(), "for i in $(seq 20); do mkdir -p t/d$i; done");
    for (tool, args) in [
        ("inotifywait", &["-r", "t"][..]),
        ("inotifywatch", &["-r", "t"][..]),
    ] {
        let (stock, ours) = {
            let _limit = Sysctl::set("max_user_watches", 3);
            run_plain(tool, args, dir.path())
        };
        assert_eq!(ours, stock, "{tool}");
        assert!(stock.stderr.contains("max_user_watches"), "{stock:?}");
        assert_eq!(stock.code, Some(1));
    }
}

#[test]
fn instance_limit_message_matches_stock() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    inotify_util::sh(dir.path(), "mkdir t");
    for tool in ["inotifywait", "inotifywatch"] {
        let (stock, ours) = {
            let _limit = Sysctl::set("max_user_instances", 0);
            run_plain(tool, &["t"], dir.path())
        };
        assert_eq!(ours, stock, "{tool}");
        assert!(stock.stderr.contains("max_user_instances"), "{stock:?}");
    }
}
