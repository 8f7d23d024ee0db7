//! Any byte string fed to any token decoder yields tokens or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtsync_delta::{Compression, Token, TokenDecoder};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let comp = Compression::ALL[sel as usize % Compression::ALL.len()];
    let protocol = if sel & 0x80 != 0 { 30 } else { 31 };
    let mut dec = TokenDecoder::new(comp, protocol).unwrap();
    dec.set_literal_limit(Some(64 << 20));
    let mut input = rest;
    // Several files in a row, as on a real session.
    for _ in 0..4 {
        loop {
            match dec.next(&mut input) {
                Ok(Some(Token::Block(i))) => dec.see_block(&[i as u8; 700]),
                Ok(Some(Token::Literal(d))) => assert!(!d.is_empty()),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
