//! Decoders never panic: arbitrary bytes give events or a typed error, and what the kernel
//! could produce round-trips.

use proptest::prelude::*;
use rtsync_watch::sys::decode_events;
use rtsync_watch::DecodeError;

fn encode(wd: i32, mask: u32, cookie: u32, name: &[u8], pad: usize) -> Vec<u8> {
    let len = if name.is_empty() && pad == 0 {
        0
    } else {
        name.len() + 1 + pad
    };
    let mut v = Vec::new();
    v.extend_from_slice(&wd.to_ne_bytes());
    v.extend_from_slice(&mask.to_ne_bytes());
    v.extend_from_slice(&cookie.to_ne_bytes());
    v.extend_from_slice(&(len as u32).to_ne_bytes());
    v.extend_from_slice(name);
    v.resize(v.len() + len - name.len(), 0);
    v
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        match decode_events(&bytes) {
            Ok(events) => prop_assert!(events.len() <= bytes.len() / 16),
            Err(DecodeError::Truncated { .. }) | Err(DecodeError::NameTooLong { .. }) => {}
        }
    }

    #[test]
    fn kernel_shaped_events_round_trip(
        events in proptest::collection::vec(
            (any::<i32>(), any::<u32>(), any::<u32>(),
             proptest::collection::vec(1u8..=255, 0..255), 0usize..16),
            0..20,
        )
    ) {
        let mut buf = Vec::new();
        for (wd, mask, cookie, name, pad) in &events {
            buf.extend(encode(*wd, *mask, *cookie, name, *pad));
        }
        let got = decode_events(&buf).unwrap();
        prop_assert_eq!(got.len(), events.len());
        for (g, (wd, mask, cookie, name, _)) in got.iter().zip(&events) {
            prop_assert_eq!(g.wd, *wd);
            prop_assert_eq!(g.mask, *mask);
            prop_assert_eq!(g.cookie, *cookie);
            let want = (!name.is_empty()).then(|| name.clone());
            prop_assert_eq!(
                g.name.as_ref().map(|n| std::os::unix::ffi::OsStrExt::as_bytes(n.as_os_str()).to_vec()),
                want
            );
        }
    }

    #[test]
    fn event_lists_parse_without_panicking(text in ".{0,40}") {
        let _ = rtsync_watch::mask::parse_event_list(&text, ',');
    }
}
