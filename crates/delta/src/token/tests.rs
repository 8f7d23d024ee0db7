//! Table-driven tests of the token codecs: exact encodings and rejection of malformed input.

use super::*;

/// A literal (`Some`) or a block number.
type Op<'a> = (Option<&'a [u8]>, u32);

fn encode(comp: Compression, ops: &[Op<'_>]) -> Vec<u8> {
    let mut enc = TokenEncoder::new(comp, None, 31).unwrap();
    let mut w = Vec::new();
    for (lit, block) in ops {
        match lit {
            Some(d) => enc.literal(&mut w, d).unwrap(),
            None => enc.block(&mut w, *block, &[]).unwrap(),
        }
    }
    enc.finish_file(&mut w).unwrap();
    w
}

#[test]
fn exact_encodings() {
    let big = i32::MAX as u32 - 1;
    // (codec, tokens (literal or block), expected bytes)
    type Case<'a> = (Compression, &'a [Op<'a>], &'a [u8]);
    let cases: &[Case] = &[
        (Compression::None, &[], &[0, 0, 0, 0]),
        (
            Compression::None,
            &[(Some(b"ab"), 0), (None, 0), (None, 5)],
            &[
                2, 0, 0, 0, b'a', b'b', 0xff, 0xff, 0xff, 0xff, 0xfa, 0xff, 0xff, 0xff, 0, 0, 0, 0,
            ],
        ),
        (Compression::Lz4, &[], &[0]),
        // Block 0 alone: TOKEN_REL + 0.
        (Compression::Zlib, &[(None, 0)], &[0x80, 0]),
        // Blocks 3,4,5: TOKENRUN_REL + 3, count 2.
        (
            Compression::Zstd,
            &[(None, 3), (None, 4), (None, 5)],
            &[0xc3, 2, 0, 0],
        ),
        // Block 10 then 80: relative to the end of the previous run (10): 70 > 63 → TOKEN_LONG.
        (
            Compression::Lz4,
            &[(None, 10), (None, 80)],
            &[0x8a, 0x20, 80, 0, 0, 0, 0],
        ),
        // Going backwards is absolute too.
        (
            Compression::Zlibx,
            &[(None, 9), (None, 2)],
            &[0x89, 0x20, 2, 0, 0, 0, 0],
        ),
        // Largest index.
        (
            Compression::Zlib,
            &[(None, big)],
            &[0x20, 0xfe, 0xff, 0xff, 0x7f, 0],
        ),
    ];
    for (comp, ops, want) in cases {
        assert_eq!(&encode(*comp, ops), want, "{comp} {ops:?}");
    }
    // Runs longer than 65536 blocks are split.
    let ops: Vec<_> = (0..65537u32).map(|i| (None, i)).collect();
    assert_eq!(encode(Compression::Zlib, &ops), [0xc0, 0xff, 0xff, 0x81, 0]);
}

#[test]
fn literal_frames_are_bounded() {
    let data: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect();
    for comp in [Compression::Zlib, Compression::Zstd, Compression::Lz4] {
        let wire = encode(comp, &[(Some(&data), 0)]);
        let mut at = 0;
        while wire[at] & 0xc0 == 0x40 {
            let n = ((wire[at] as usize & 0x3f) << 8) | wire[at + 1] as usize;
            assert!(n > 0 && n <= MAX_DATA_COUNT);
            at += 2 + n;
        }
        assert_eq!(&wire[at..], &[0], "{comp}");
    }
}

fn decode_all(comp: Compression, input: &[u8]) -> Result<Vec<u32>> {
    let mut dec = TokenDecoder::new(comp, 31)?;
    let mut r = input;
    let mut blocks = Vec::new();
    while let Some(t) = dec.next(&mut r)? {
        if let Token::Block(i) = t {
            blocks.push(i);
        }
    }
    Ok(blocks)
}

#[test]
fn malformed_streams_are_typed_errors() {
    let cases: &[(Compression, &[u8], &str)] = &[
        (Compression::None, &[], "failed to fill whole buffer"),
        (
            Compression::None,
            &[5, 0, 0, 0, 1, 2],
            "failed to fill whole buffer",
        ),
        (Compression::Zlib, &[], "failed to fill whole buffer"),
        (Compression::Zlib, &[0x41], "failed to fill whole buffer"),
        (Compression::Zlib, &[0x40, 0x00], "empty"),
        (Compression::Zlib, &[0x01], "unknown flag"),
        (Compression::Zstd, &[0x3f], "unknown flag"),
        (Compression::Lz4, &[0xc0, 0, 0], "run length"),
        (
            Compression::Lz4,
            &[0x20, 0xff, 0xff, 0xff, 0xff],
            "out of range",
        ),
        (
            Compression::Lz4,
            &[0x20, 0xff, 0xff, 0xff, 0x7f],
            "out of range",
        ),
        (
            Compression::Zstd,
            &[0x21, 0xfe, 0xff, 0xff, 0x7f, 1, 0],
            "run length",
        ),
        (
            Compression::Zlib,
            &[0x40, 0x03, 0xff, 0xff, 0xff],
            "decompression",
        ),
        (Compression::Lz4, &[0x40, 0x02, 0xff, 0xff], "decompression"),
        (
            Compression::Zstd,
            &[0x40, 0x04, 1, 2, 3, 4],
            "decompression",
        ),
    ];
    for (comp, input, want) in cases {
        let err = decode_all(*comp, input).expect_err(&format!("{comp} {input:02x?}"));
        let msg = err.to_string();
        assert!(msg.contains(want), "{comp} {input:02x?}: {msg}");
    }
}

#[test]
fn relative_numbers_and_runs_decode() {
    // Block 2, run from 5 (2+3) of 1+2, then absolute 1000, end.
    let input = [0x82, 0xc3, 2, 0, 0x20, 0xe8, 3, 0, 0, 0];
    assert_eq!(
        decode_all(Compression::Zlib, &input).unwrap(),
        [2, 5, 6, 7, 1000]
    );
    let plain = [0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0x80, 0, 0, 0, 0];
    assert_eq!(
        decode_all(Compression::None, &plain).unwrap(),
        [1, i32::MAX as u32]
    );
}

#[test]
fn literal_limit_guards_bombs() {
    let data = vec![0u8; 100_000];
    for comp in Compression::ALL {
        let wire = encode(comp, &[(Some(&data), 0)]);
        let mut dec = TokenDecoder::new(comp, 31).unwrap();
        dec.set_literal_limit(Some(50_000));
        let mut r = &wire[..];
        let res: Result<()> = (|| {
            while dec.next(&mut r)?.is_some() {}
            Ok(())
        })();
        assert!(res.is_err(), "{comp}");
    }
}

#[test]
fn names() {
    assert_eq!(Compression::default_list(), "zstd lz4 zlibx zlib none");
    for c in Compression::ALL {
        assert_eq!(c.name().parse::<Compression>().unwrap(), c);
    }
    assert!("gzip".parse::<Compression>().is_err());
}
