//! Raw inotify event buffers: the decoder bounds every length field.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rtsync_watch::sys::decode_events(data);
});
