//! File lists from a peer: every option combination, bounded, validated, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtsync_wire::flist::{FlistDecoder, FlistOptions};

fuzz_target!(|data: &[u8]| {
    let Some((&bits, rest)) = data.split_first() else {
        return;
    };
    let bit = |n: u8| bits & (1 << n) != 0;
    let opts = FlistOptions {
        protocol: if bit(0) { 30 } else { 31 },
        varint_flags: bit(1),
        safe_flist: bit(2),
        id0_names: bit(3),
        preserve_uid: bit(4),
        preserve_gid: bit(4),
        preserve_links: bit(5),
        preserve_devices: bit(6),
        preserve_specials: bit(6),
        preserve_hard_links: bit(7),
        checksum_len: bit(2).then_some(16),
        numeric_ids: bit(3),
    };
    if let Ok(list) = FlistDecoder::new(opts).read_list(&mut &rest[..]) {
        for e in &list.entries {
            // What a decoder accepts never climbs out of the destination.
            assert!(!e.name.starts_with(b"/"));
            assert!(!e.name.split(|&c| c == b'/').any(|c| c == b".."));
        }
    }
});
