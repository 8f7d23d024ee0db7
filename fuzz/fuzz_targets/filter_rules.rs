//! Filter rules as typed by users, read from merge files or sent by a peer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtsync_filter::{FilterSet, NoFiles, Side};

fuzz_target!(|data: &[u8]| {
    let mut set = FilterSet::new();
    let _ = set.add_filter(data, &mut NoFiles);
    let _ = set.check(b"a/b/c.txt", false, Side::Sender);
    let _ = set.check(b"a/b", true, Side::Receiver);
    let _ = rtsync_filter::wire::read_list(&mut &data[..]);
    let _ = rtsync_filter::wildmatch::wildmatch(data, b"some/path/name.txt");
});
