//! Executable scripts for tests that run threads in parallel. A file this process writes
//! can be briefly held open for writing by a child another thread forks at that moment
//! (until the child execs), and executing it then fails with "Text file busy". So the
//! script is written by a short-lived `sh` of its own: no descriptor to it ever exists here.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Writes `text` to `path` as an executable (0755) script.
pub fn write_script(path: &Path, text: &str) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("cat > \"$1\" && chmod 755 \"$1\"")
        .arg("sh")
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("run sh to write a script");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "writing {path:?}");
}
