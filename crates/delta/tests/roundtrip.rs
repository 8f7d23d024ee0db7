//! Property tests: signature → match → encode → decode → patch reproduces the new file, for
//! every checksum kind, block size and token codec.

use std::io::Cursor;

use proptest::prelude::*;
use rtsync_delta::{
    diff_to_vec, stream_arriving, BlockHasher, ChecksumKind, Compression, InPlacePatcher,
    MatchToken, Matcher, OwnedToken, Patcher, Signature, SumParams, Token, TokenDecoder,
    TokenEncoder, CHUNK_SIZE,
};

/// One edit applied to the basis to make the new file.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Replace(usize, Vec<u8>),
    Append(Vec<u8>),
    Truncate(usize),
}

fn apply(mut data: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = data.len();
        match e {
            Edit::Insert(at, bytes) => {
                let at = if len == 0 { 0 } else { at % (len + 1) };
                data.splice(at..at, bytes.iter().copied());
            }
            Edit::Delete(at, n) if len > 0 => {
                let at = at % len;
                let end = (at + n).min(len);
                data.drain(at..end);
            }
            Edit::Replace(at, bytes) if len > 0 => {
                let at = at % len;
                for (i, b) in bytes.iter().enumerate() {
                    if at + i < len {
                        data[at + i] = *b;
                    }
                }
            }
            Edit::Append(bytes) => data.extend_from_slice(bytes),
            Edit::Truncate(n) if len > 0 => data.truncate(n % len),
            _ => {}
        }
    }
    data
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    // A small alphabet makes weak-sum collisions and repeated blocks likely.
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..max),
        proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(0xff)], 0..max),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), bytes(300)).prop_map(|(a, b)| Edit::Insert(a, b)),
        (any::<usize>(), 0usize..2000).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), bytes(300)).prop_map(|(a, b)| Edit::Replace(a, b)),
        bytes(1500).prop_map(Edit::Append),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn kind() -> impl Strategy<Value = ChecksumKind> {
    prop_oneof![
        Just(ChecksumKind::Xxh128),
        Just(ChecksumKind::Xxh3),
        Just(ChecksumKind::Xxh64),
        Just(ChecksumKind::Md5),
        Just(ChecksumKind::Md4),
        Just(ChecksumKind::Sha1),
    ]
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Zlib),
        Just(Compression::Zlibx),
        Just(Compression::Zstd),
        Just(Compression::Lz4),
    ]
}

/// Full pipeline for a sequence of (basis, new) files through one encoder and one decoder.
fn pipeline(
    files: &[(Vec<u8>, Vec<u8>)],
    kind: ChecksumKind,
    block_size: Option<u32>,
    comp: Compression,
    protocol: u32,
    seed: i32,
) -> Result<(), TestCaseError> {
    let hasher = BlockHasher::new(kind, seed);
    let params = SumParams {
        block_size,
        ..SumParams::new(protocol, kind.digest_len())
    };
    let mut enc = TokenEncoder::new(comp, None, protocol).unwrap();
    let mut dec = TokenDecoder::new(comp, protocol).unwrap();
    let mut wire = Vec::new();
    let mut sigs = Vec::new();
    let mut sums = Vec::new();
    for (basis, new) in files {
        let sig = Signature::from_bytes(basis, &params, &hasher).unwrap();
        let stats = Matcher::new(&sig, hasher)
            .stream(&new[..], |t| {
                if let MatchToken::Literal(d) = t {
                    assert!(d.len() <= CHUNK_SIZE && !d.is_empty());
                }
                enc.write(&mut wire, t)
            })
            .unwrap();
        enc.finish_file(&mut wire).unwrap();
        prop_assert_eq!(stats.file_len, new.len() as u64);
        sigs.push(sig);
        sums.push(stats.checksum);
    }
    let mut input = &wire[..];
    for (((basis, new), sig), sum) in files.iter().zip(&sigs).zip(&sums) {
        let mut patcher = Patcher::new(Cursor::new(basis), *sig.head(), kind);
        let mut out = Vec::new();
        patcher
            .apply_stream(&mut dec, &mut input, &mut out)
            .unwrap();
        prop_assert_eq!(patcher.verify(sum.as_bytes()).unwrap(), new.len() as u64);
        prop_assert!(&out == new, "rebuilt file differs");
    }
    prop_assert!(input.is_empty(), "trailing bytes after the last file");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn edits_round_trip(
        basis in bytes(6000),
        edits in proptest::collection::vec(edit(), 0..5),
        kind in kind(),
        block_size in prop_oneof![Just(None), (1u32..1500).prop_map(Some)],
        comp in compression(),
        protocol in 30u32..=32,
        seed in any::<i32>(),
    ) {
        let new = apply(basis.clone(), &edits);
        pipeline(&[(basis, new)], kind, block_size, comp, protocol, seed)?;
    }

    #[test]
    fn several_files_share_a_codec_session(
        files in proptest::collection::vec((bytes(3000), proptest::collection::vec(edit(), 0..3)), 1..4),
        comp in compression(),
        block_size in prop_oneof![Just(None), (1u32..300).prop_map(Some)],
    ) {
        let files: Vec<_> = files.into_iter().map(|(b, e)| { let n = apply(b.clone(), &e); (b, n) }).collect();
        pipeline(&files, ChecksumKind::Xxh3, block_size, comp, 31, 7)?;
    }

    #[test]
    fn token_codecs_round_trip(
        tokens in proptest::collection::vec(prop_oneof![
            bytes(40_000).prop_map(OwnedToken::Literal),
            (0u32..200).prop_map(OwnedToken::Block),
            (0u32..u32::MAX / 2).prop_map(OwnedToken::Block),
        ], 0..30),
        comp in compression(),
    ) {
        let block = vec![7u8; 100];
        let mut enc = TokenEncoder::new(comp, None, 31).unwrap();
        let mut wire = Vec::new();
        for t in &tokens {
            match t.as_token() {
                Token::Literal(d) => enc.literal(&mut wire, d).unwrap(),
                Token::Block(i) => enc.block(&mut wire, i, &block).unwrap(),
            }
        }
        enc.finish_file(&mut wire).unwrap();
        let mut dec = TokenDecoder::new(comp, 31).unwrap();
        let mut input = &wire[..];
        let mut got = Vec::new();
        while let Some(t) = dec.next(&mut input).unwrap() {
            match t {
                Token::Literal(d) => match got.last_mut() {
                    Some(OwnedToken::Literal(v)) => v.extend_from_slice(d),
                    _ => got.push(OwnedToken::Literal(d.to_vec())),
                },
                Token::Block(i) => {
                    got.push(OwnedToken::Block(i));
                    dec.see_block(&block);
                }
            }
        }
        // Merge adjacent literals and drop empty ones in the expectation too.
        let mut want: Vec<OwnedToken> = Vec::new();
        for t in tokens {
            match (want.last_mut(), t) {
                (_, OwnedToken::Literal(d)) if d.is_empty() => {}
                (Some(OwnedToken::Literal(v)), OwnedToken::Literal(d)) => v.extend_from_slice(&d),
                (_, t) => want.push(t),
            }
        }
        prop_assert_eq!(got, want);
        prop_assert!(input.is_empty());
    }

    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2000), comp in compression()) {
        let mut dec = TokenDecoder::new(comp, 31).unwrap();
        let mut input = &data[..];
        for _ in 0..10_000 {
            match dec.next(&mut input) {
                Ok(Some(Token::Block(_))) => dec.see_block(&[1, 2, 3]),
                Ok(Some(Token::Literal(_))) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}

#[test]
fn unchanged_file_is_all_blocks_in_runs() {
    let basis: Vec<u8> = (0..200_000u32).map(|i| (i ^ (i >> 7)) as u8).collect();
    let hasher = BlockHasher::new(ChecksumKind::Md5, 99);
    let sig = Signature::from_bytes(&basis, &SumParams::new(31, 16), &hasher).unwrap();
    let (tokens, stats) = diff_to_vec(&sig, hasher, &basis[..]).unwrap();
    assert_eq!(stats.literal_bytes, 0);
    let want: Vec<_> = (0..sig.count()).map(OwnedToken::Block).collect();
    assert_eq!(tokens, want);
    // A run of consecutive blocks compresses to a handful of bytes.
    let mut enc = TokenEncoder::new(Compression::Zlib, None, 31).unwrap();
    let mut wire = Vec::new();
    for t in &tokens {
        if let OwnedToken::Block(i) = t {
            enc.block(&mut wire, *i, &[]).unwrap();
        }
    }
    enc.finish_file(&mut wire).unwrap();
    assert_eq!(
        wire,
        [
            0xc0,
            (sig.count() - 1) as u8,
            ((sig.count() - 1) >> 8) as u8,
            0
        ]
    );
}

#[test]
fn empty_basis_and_empty_new() {
    for (basis, new) in [
        (vec![], vec![]),
        (vec![], b"abc".to_vec()),
        (b"abc".to_vec(), vec![]),
    ] {
        for comp in Compression::ALL {
            pipeline(
                &[(basis.clone(), new.clone())],
                ChecksumKind::Md5,
                None,
                comp,
                31,
                1,
            )
            .unwrap();
        }
    }
}

#[test]
fn out_of_range_block_is_an_error() {
    let sig_head = rtsync_delta::SumHead {
        count: 2,
        block_len: 4,
        strong_len: 2,
        remainder: 0,
    };
    let mut p = Patcher::new(Cursor::new(vec![0u8; 8]), sig_head, ChecksumKind::Md5);
    assert!(p.apply(Token::Block(2), &mut Vec::new()).is_err());
    let short = rtsync_delta::SumHead {
        count: 3,
        ..sig_head
    };
    let mut p = Patcher::new(Cursor::new(vec![0u8; 8]), short, ChecksumKind::Md5);
    assert!(matches!(
        p.apply(Token::Block(2), &mut Vec::new()),
        Err(rtsync_delta::Error::BasisTooShort { index: 2 })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `--inplace`: the receiver rebuilds inside the basis buffer itself.
    #[test]
    fn inplace_round_trip(
        basis in bytes(6000),
        edits in proptest::collection::vec(edit(), 0..5),
        block_size in prop_oneof![Just(None), (1u32..700).prop_map(Some)],
        comp in compression(),
    ) {
        let new = apply(basis.clone(), &edits);
        let kind = ChecksumKind::Xxh64;
        let hasher = BlockHasher::new(kind, 3);
        let params = SumParams { block_size, ..SumParams::new(31, kind.digest_len()) };
        let sig = Signature::from_bytes(&basis, &params, &hasher).unwrap();
        let mut enc = TokenEncoder::new(comp, None, 31).unwrap();
        let mut wire = Vec::new();
        let stats = Matcher::new(&sig, hasher)
            .inplace(true)
            .stream(&new[..], |t| enc.write(&mut wire, t))
            .unwrap();
        enc.finish_file(&mut wire).unwrap();
        let mut dec = TokenDecoder::new(comp, 31).unwrap();
        let mut p = InPlacePatcher::new(Cursor::new(basis.clone()), *sig.head(), kind);
        p.apply_stream(&mut dec, &mut &wire[..]).unwrap();
        let (digest, len, file) = p.finish();
        let mut out = file.into_inner();
        out.truncate(len as usize);
        prop_assert_eq!(digest, stats.checksum);
        prop_assert!(out == new, "in-place rebuild differs");
    }
}

/// Tokens and statistics of `stream_arriving` against those of reading every sum first.
fn arriving_matches_stream(
    basis: &[u8],
    new: &[u8],
    block_size: Option<u32>,
    inplace: bool,
) -> Result<(), TestCaseError> {
    let kind = ChecksumKind::Xxh128;
    let hasher = BlockHasher::new(kind, 0);
    let params = SumParams {
        block_size,
        ..SumParams::new(31, 2)
    };
    let sig = Signature::from_bytes(basis, &params, &hasher).unwrap();
    let mut wire = Vec::new();
    sig.write_sums(&mut wire).unwrap();
    let mut whole = Vec::new();
    let want = Matcher::new(&sig, hasher)
        .inplace(inplace)
        .stream(new, |t| {
            whole.push(t.token().clone_owned());
            Ok(())
        })
        .unwrap();
    let mut arriving = Vec::new();
    let mut sums = &wire[..];
    let got = stream_arriving(*sig.head(), hasher, inplace, &mut sums, new, |t| {
        arriving.push(t.token().clone_owned());
        Ok(())
    })
    .unwrap();
    prop_assert!(sums.is_empty(), "sums left unread");
    prop_assert_eq!(got, want);
    prop_assert_eq!(arriving, whole);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Matching while the sums arrive emits what matching after them does, for any edit
    /// (unchanged prefixes, changes at the start, growth, truncation, repeated blocks).
    #[test]
    fn matching_while_sums_arrive_is_the_same(
        basis in bytes(6000),
        edits in proptest::collection::vec(edit(), 0..4),
        block_size in prop_oneof![Just(None), (1u32..700).prop_map(Some)],
        inplace in any::<bool>(),
    ) {
        let new = apply(basis.clone(), &edits);
        arriving_matches_stream(&basis, &new, block_size, inplace)?;
    }
}

#[test]
fn arriving_sums_are_consumed_on_every_path() {
    let basis: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 253) as u8).collect();
    // Unchanged, changed in the middle, changed at the first byte, grown, empty.
    let mut middle = basis.clone();
    middle[25_000] ^= 1;
    let mut first = basis.clone();
    first[0] ^= 1;
    let mut grown = basis.clone();
    grown.extend_from_slice(&basis[..3000]);
    for new in [&basis[..], &middle, &first, &grown, &[][..]] {
        for bs in [None, Some(700), Some(1)] {
            arriving_matches_stream(&basis, new, bs, false).unwrap();
        }
    }
}

#[test]
fn inplace_reuses_blocks_in_place() {
    // Unchanged prefix and a block moved backwards: the moved block must not be referenced
    // after its region is overwritten, but same-offset blocks are kept.
    let basis: Vec<u8> = (0..7000u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut new = basis.clone();
    new.drain(700..1400);
    let hasher = BlockHasher::new(ChecksumKind::Md5, 0);
    let sig = Signature::from_bytes(&basis, &SumParams::new(31, 16), &hasher).unwrap();
    let mut tokens = Vec::new();
    Matcher::new(&sig, hasher)
        .inplace(true)
        .stream(&new[..], |t| {
            tokens.push(t.token().clone_owned());
            Ok(())
        })
        .unwrap();
    assert_eq!(tokens[0], OwnedToken::Block(0));
    assert!(tokens.iter().all(|t| !matches!(t, OwnedToken::Block(1))));
}

trait CloneOwned {
    fn clone_owned(&self) -> OwnedToken;
}

impl CloneOwned for Token<'_> {
    fn clone_owned(&self) -> OwnedToken {
        match self {
            Token::Literal(d) => OwnedToken::Literal(d.to_vec()),
            Token::Block(i) => OwnedToken::Block(*i),
        }
    }
}
