//! Shared helpers for the inotify-tools differential tests: run the stock tool and rtsync's
//! drop-in on identical trees with identical scripted operations, and capture what they print.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which implementation to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// inotify-tools as installed in /usr/bin.
    Stock,
    /// This repository's binary, as `rtsync <tool>`.
    Rtsync,
}

/// Pause after each scripted step so that the watcher (stock or ours) has handled it before
/// the next one; stock inotifywait needs this to add watches on new directories.
pub const STEP_PAUSE: Duration = Duration::from_millis(150);

/// The command for `tool` (`inotifywait` or `inotifywatch`). A missing stock tool fails loudly.
pub fn command(tool: Tool, name: &str) -> Command {
    match tool {
        Tool::Stock => {
            let path = PathBuf::from("/usr/bin").join(name);
            assert!(
                path.exists(),
                "stock {name} is required for this test but {} is missing (install inotify-tools)",
                path.display()
            );
            let mut c = Command::new(path);
            // getopt's messages start with argv[0]; give stock the bare name that ours has.
            c.arg0(name);
            c
        }
        Tool::Rtsync => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_rtsync"));
            c.arg(name);
            c
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// Exit code, or `None` when killed by a signal.
    pub code: Option<i32>,
    /// The signal that ended the process, if any.
    pub signal: Option<i32>,
}

fn collector(mut r: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    let h = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    (buf, h)
}

/// A watcher process running in its own scratch directory.
pub struct Session {
    /// The scratch directory; the watched tree is usually `t` inside it.
    pub dir: tempfile::TempDir,
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

/// Runs a shell snippet in `dir`, failing the test if it fails.
pub fn sh(dir: &Path, script: &str) {
    let st = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .status()
        .expect("run sh");
    assert!(st.success(), "script failed: {script}");
}

impl Session {
    /// Prepares a scratch directory with `setup`, starts `tool name args…` in it and waits until
    /// it says its watches are set up (or, when it was told to be quiet, a moment).
    pub fn start(tool: Tool, name: &str, args: &[&str], setup: &str) -> Session {
        let dir = tempfile::tempdir().expect("tempdir");
        sh(dir.path(), setup);
        Self::start_in(dir, tool, name, args)
    }

    /// Like [`Session::start`] in an existing directory.
    pub fn start_in(dir: tempfile::TempDir, tool: Tool, name: &str, args: &[&str]) -> Session {
        let mut child = command(tool, name)
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn watcher");
        let (out, h1) = collector(child.stdout.take().unwrap());
        let (err, h2) = collector(child.stderr.take().unwrap());
        let s = Session {
            dir,
            child,
            out,
            err,
            readers: vec![h1, h2],
        };
        let quiet = args
            .iter()
            .any(|a| *a == "-q" || *a == "-qq" || *a == "--quiet");
        if quiet {
            std::thread::sleep(Duration::from_millis(700));
        } else {
            s.wait_stderr(&["Watches established.", "now collecting statistics."]);
        }
        s
    }

    fn wait_stderr(&self, any_of: &[&str]) {
        let start = Instant::now();
        loop {
            let text = String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned();
            if any_of.iter().any(|m| text.contains(m)) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "watcher never got ready; stderr so far: {text:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (bounded) until the watcher has printed something and then nothing more for a
    /// while: it has drained what the kernel queued for it.
    pub fn settle_stdout(&self) {
        let start = Instant::now();
        let mut seen = 0;
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let len = self.out.lock().unwrap().len();
            if (len > 0 && len == seen) || start.elapsed() > Duration::from_secs(30) {
                return;
            }
            seen = len;
        }
    }

    /// The scratch directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs one scripted step in the scratch directory, then pauses.
    pub fn step(&self, script: &str) {
        sh(self.path(), script);
        std::thread::sleep(STEP_PAUSE);
    }

    /// Sends a signal to the watcher.
    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Stops the watcher with `sig` after a last pause, and collects its output.
    pub fn stop(self, sig: i32) -> Outcome {
        std::thread::sleep(Duration::from_millis(300));
        self.signal(sig);
        self.finish()
    }

    /// Waits (bounded) for the watcher to exit on its own, and collects its output.
    pub fn finish(mut self) -> Outcome {
        let start = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                break st;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("watcher did not exit");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for h in self.readers.drain(..) {
            h.join().unwrap();
        }
        let stdout = String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned();
        let stderr = String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned();
        Outcome {
            stdout,
            stderr,
            code: status.code(),
            signal: status.signal(),
        }
    }
}

/// One differential case: a tree, a command line, a script of steps, how to stop.
pub struct Case<'a> {
    /// `inotifywait` or `inotifywatch`.
    pub tool: &'a str,
    /// Arguments after the tool name (relative paths, resolved in the scratch directory).
    pub args: &'a [&'a str],
    /// Shell run before the watcher starts.
    pub setup: &'a str,
    /// Shell steps run while it watches.
    pub steps: &'a [&'a str],
    /// Signal to stop it with, or `None` to let it exit by itself.
    pub stop: Option<i32>,
}

/// Runs a case under `tool`.
pub fn run_case(case: &Case<'_>, tool: Tool) -> Outcome {
    let s = Session::start(tool, case.tool, case.args, case.setup);
    for step in case.steps {
        s.step(step);
    }
    match case.stop {
        Some(sig) => s.stop(sig),
        None => s.finish(),
    }
}

/// Runs a case under stock and rtsync and asserts identical stdout, stderr and exit status.
pub fn assert_same(name: &str, case: &Case<'_>) -> Outcome {
    let stock = run_case(case, Tool::Stock);
    let ours = run_case(case, Tool::Rtsync);
    assert_eq!(
        ours, stock,
        "case {name}: rtsync (left) differs from stock (right)"
    );
    ours
}

/// Runs a command (no watching involved) under both and returns both outcomes.
pub fn run_plain(name: &str, args: &[&str], dir: &Path) -> (Outcome, Outcome) {
    let run = |tool| {
        let o = command(tool, name)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        Outcome {
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            code: o.status.code(),
            signal: o.status.signal(),
        }
    };
    (run(Tool::Stock), run(Tool::Rtsync))
}
