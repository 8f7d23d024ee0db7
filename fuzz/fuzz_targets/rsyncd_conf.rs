//! rsyncd.conf text: parse errors are typed, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rtsync_daemon::config::Config::parse_str(text, "fuzz.conf");
    }
});
