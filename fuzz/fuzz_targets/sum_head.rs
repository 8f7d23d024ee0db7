//! Sum headers and signatures from the wire: validated, bounded, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtsync_delta::{ChecksumKind, Signature, SumHead};

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let int = |i: usize| i32::from_le_bytes(data[i * 4..i * 4 + 4].try_into().unwrap());
    let kind = ChecksumKind::ALL[data[16] as usize % ChecksumKind::ALL.len()];
    let Ok(head) = SumHead::from_wire(int(0), int(1), int(2), int(3), 31, kind.digest_len()) else {
        return;
    };
    let _ = head.file_len();
    if let Ok(sig) = Signature::read_sums(head, &data[17..]) {
        assert!(sig.is_complete());
        let mut out = Vec::new();
        sig.write_sums(&mut out).unwrap();
        assert_eq!(out, data[17..17 + out.len()]);
    }
});
