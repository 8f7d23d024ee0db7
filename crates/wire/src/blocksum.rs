//! Block signatures of a basis file as the generator sends them, computed by `rtsync-delta`.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use rtsync_delta::{BlockHasher, Signature, SumParams};

use crate::negotiate::Negotiated;
use crate::sums::SumHead;

/// The block hasher both sides use for this session (seed and seed order from setup).
pub fn block_hasher(neg: &Negotiated) -> BlockHasher {
    BlockHasher::with_order(
        neg.checksum,
        neg.seed,
        neg.checksum.seed_order(neg.proper_seed_order()),
    )
}

/// Converts delta's header into the wire form.
pub fn wire_head(h: &rtsync_delta::SumHead) -> SumHead {
    SumHead {
        count: h.count as i32,
        blength: h.block_len as i32,
        s2length: h.strong_len as i32,
        remainder: h.remainder as i32,
    }
}

/// The sum header alone for a basis of `len` bytes: what an `--append` request sends (the
/// sender starts after the length it describes).
pub fn head_only(len: u64, neg: &Negotiated, block_size: Option<u32>) -> io::Result<SumHead> {
    let mut params = SumParams::new(neg.protocol, neg.checksum.digest_len());
    params.block_size = block_size;
    let head = rtsync_delta::SumHead::for_file(len, &params)
        .map_err(|e| io::Error::other(e.to_string()))?;
    Ok(wire_head(&head))
}

/// Reads a basis file of `len` bytes and returns its sum header and the encoded sums
/// (int32 rolling sum + `s2length` strong bytes per block).
pub fn generate(
    path: &Path,
    len: u64,
    neg: &Negotiated,
    block_size: Option<u32>,
) -> io::Result<(SumHead, Vec<u8>)> {
    let mut params = SumParams::new(neg.protocol, neg.checksum.digest_len());
    params.block_size = block_size;
    // A basis swapped for a symlink since it was looked at is not followed.
    let basis = BufReader::new(open_nofollow(path)?);
    let sig = Signature::generate(basis, len, &params, &block_hasher(neg))
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut out = Vec::new();
    sig.write_sums(&mut out)?;
    Ok((wire_head(sig.head()), out))
}

/// Opens `path` for reading, failing (`ELOOP`) when its last component is a symlink.
pub(crate) fn open_nofollow(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}
