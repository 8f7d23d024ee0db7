//! The `daemon_cmd` front door.

use std::ffi::OsString;

/// Runs the front door with `args[0]` being the tool's name; returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let _ = args;
    eprintln!("not implemented yet");
    1
}
