//! The sender side: find the basis blocks in a new file and emit literal/block tokens.

use std::io::{ErrorKind, Read};

use crate::checksum::{BlockHasher, Digest, FileHasher};
use crate::rolling::Rolling;
use crate::signature::Signature;
use crate::sizes::CHUNK_SIZE;
use crate::token::Token;
use crate::Result;

/// Give up on a weak sum after this many same-sum candidates (as rsync does since 3.4).
const MAX_CHAIN_LEN: usize = 1024;

/// One step of the delta, as produced by [`Matcher::stream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchToken<'a> {
    /// New data, at most [`CHUNK_SIZE`] bytes.
    Literal(&'a [u8]),
    /// The basis block `index` occurs next; `data` is its content (needed by the `zlib` codec).
    Block {
        /// Block number in the signature.
        index: u32,
        /// The matched bytes.
        data: &'a [u8],
    },
}

impl<'a> MatchToken<'a> {
    /// The wire-level token (dropping the block data).
    pub fn token(&self) -> Token<'a> {
        match *self {
            MatchToken::Literal(d) => Token::Literal(d),
            MatchToken::Block { index, .. } => Token::Block(index),
        }
    }
}

/// What a match pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MatchStats {
    /// Bytes of the new file.
    pub file_len: u64,
    /// Bytes sent as literals.
    pub literal_bytes: u64,
    /// Bytes covered by block matches.
    pub matched_bytes: u64,
    /// Number of block tokens.
    pub matches: u64,
    /// Weak-sum hits whose strong sum differed.
    pub false_alarms: u64,
    /// Offsets where some block had the window's weak sum (and length).
    pub hash_hits: u64,
    /// Whole-file checksum of the new file (sent after the tokens).
    pub checksum: Digest,
}

/// Weak-sum index over a signature: buckets in one flat array, plus a bit filter that rejects
/// most misses with a single L1 access.
#[derive(Debug)]
struct HashIndex {
    shift: u32,
    filter_shift: u32,
    starts: Vec<u32>,
    entries: Vec<u32>,
    filter: Vec<u64>,
}

impl HashIndex {
    fn new(weak: &[u32]) -> Self {
        let bits = (usize::BITS - weak.len().leading_zeros() + 1).clamp(10, 26);
        let shift = 32 - bits;
        let buckets = 1usize << bits;
        let mut starts = vec![0u32; buckets + 1];
        // ~32 filter bits per block: about 3% false hits, so the slow path is rare.
        let filter_bits = (bits + 4).clamp(16, 27);
        let filter_shift = 32 - filter_bits;
        let mut filter = vec![0u64; (1usize << filter_bits) / 64];
        let slot = |w: u32| (w.wrapping_mul(0x9E37_79B1) >> shift) as usize;
        for &w in weak {
            starts[slot(w) + 1] += 1;
        }
        for i in 0..buckets {
            starts[i + 1] += starts[i];
        }
        let mut fill = starts.clone();
        let mut entries = vec![0u32; weak.len()];
        for (i, &w) in weak.iter().enumerate() {
            let s = slot(w);
            entries[fill[s] as usize] = i as u32;
            fill[s] += 1;
            let f = (w.wrapping_mul(0x9E37_79B1) >> filter_shift) as usize;
            filter[f / 64] |= 1 << (f % 64);
        }
        HashIndex {
            shift,
            filter_shift,
            starts,
            entries,
            filter,
        }
    }

    /// False when no block can have this weak sum (one L1-resident bit test).
    #[inline(always)]
    fn maybe(&self, weak: u32) -> bool {
        let s = (weak.wrapping_mul(0x9E37_79B1) >> self.filter_shift) as usize;
        self.filter[s / 64] & (1 << (s % 64)) != 0
    }

    #[inline(always)]
    fn candidates(&self, weak: u32) -> &[u32] {
        if !self.maybe(weak) {
            return &[];
        }
        let s = (weak.wrapping_mul(0x9E37_79B1) >> self.shift) as usize;
        &self.entries[self.starts[s] as usize..self.starts[s + 1] as usize]
    }
}

/// Which slots of rsync's own hash table the blocks take, for its `hash_hits` counter: an
/// offset counts when the slot of its weak sum holds any block (its table has at least
/// 65,536 slots; with exactly that many a sum's slot is its halves added, else the sum
/// modulo the size).
#[derive(Debug)]
struct StockTags {
    size: u32,
    bits: Vec<u64>,
}

impl StockTags {
    fn new(weak: &[u32]) -> Self {
        let count = u32::try_from(weak.len()).unwrap_or(u32::MAX);
        let size = ((count / 8).saturating_mul(10).saturating_add(11)).max(1 << 16);
        let mut t = StockTags {
            size,
            bits: vec![0; (size as usize).div_ceil(64)],
        };
        for &w in weak {
            let slot = t.slot(w);
            t.bits[slot / 64] |= 1 << (slot % 64);
        }
        t
    }

    #[inline(always)]
    fn slot(&self, w: u32) -> usize {
        if self.size == 1 << 16 {
            ((w & 0xFFFF) + (w >> 16)) as usize & 0xFFFF
        } else {
            (w % self.size) as usize
        }
    }

    #[inline(always)]
    fn hit(&self, w: u32) -> bool {
        let slot = self.slot(w);
        self.bits[slot / 64] & (1 << (slot % 64)) != 0
    }
}

/// Matches new files against one signature. Build once, stream any number of files.
#[derive(Debug)]
pub struct Matcher<'s> {
    sig: &'s Signature,
    hasher: BlockHasher,
    index: HashIndex,
    inplace: bool,
    /// `hash_hits` counted as rsync's sender counts them (see [`Matcher::stock_hash_hits`]).
    tags: Option<StockTags>,
}

/// Sliding read buffer over the new file.
struct Window<R> {
    reader: R,
    buf: Vec<u8>,
    end: usize,
    eof: bool,
}

impl<R: Read> Window<R> {
    /// Move `keep..end` to the front, then read until full or EOF. Returns the shift applied.
    fn refill(&mut self, keep: usize) -> Result<usize> {
        if keep > 0 {
            self.buf.copy_within(keep..self.end, 0);
            self.end -= keep;
        }
        while !self.eof && self.end < self.buf.len() {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(keep)
    }
}

impl<'s> Matcher<'s> {
    /// Index `sig` for matching; `hasher` must be the one the signature was made with.
    pub fn new(sig: &'s Signature, hasher: BlockHasher) -> Self {
        Matcher {
            sig,
            hasher,
            index: HashIndex::new(sig.weak_sums()),
            inplace: false,
            tags: None,
        }
    }

    /// Count `hash_hits` as rsync's sender does (for its `--debug=deltasum` report): every
    /// offset looked at whose weak sum falls in a slot of rsync's hash table that holds a
    /// block, whether or not the sums then agree. It costs a lookup per byte, so it is off
    /// unless asked for (then only offsets where some block has the same weak sum count).
    pub fn stock_hash_hits(mut self, on: bool) -> Self {
        self.tags = on.then(|| StockTags::new(self.sig.weak_sums()));
        self
    }

    /// Match for a receiver that updates the basis in place (`--inplace`): only blocks that
    /// the receiver has not yet overwritten are referenced (those at or after the current
    /// offset, or already matched at their own offset), and a block at the current offset is
    /// preferred, as rsync's sender does.
    pub fn inplace(mut self, inplace: bool) -> Self {
        self.inplace = inplace;
        self
    }

    /// Read the new file from `reader` to its end, calling `emit` for each token in order, and
    /// return the statistics with the whole-file checksum.
    pub fn stream<R, F>(&self, reader: R, emit: F) -> Result<MatchStats>
    where
        R: Read,
        F: FnMut(MatchToken<'_>) -> Result<()>,
    {
        self.run(reader, emit, Prefix::new(self.hasher.kind()))
    }

    /// Match the rest of a file whose first `prefix.blocks` blocks already matched at their
    /// own offsets (see [`stream_arriving`]): the state is the one `stream` has right after
    /// those matches, so the tokens are the ones `stream` would emit.
    fn run<R, F>(&self, reader: R, mut emit: F, prefix: Prefix) -> Result<MatchStats>
    where
        R: Read,
        F: FnMut(MatchToken<'_>) -> Result<()>,
    {
        let head = self.sig.head();
        let bl = head.block_len as usize;
        let usable = self.sig.is_complete() && head.count > 0 && bl > 0;
        let min_len = if head.remainder != 0 {
            head.remainder as usize
        } else {
            bl
        };
        let cap = (1usize << 20).max(4 * bl + 2 * CHUNK_SIZE);
        let mut win = Window {
            reader,
            buf: vec![0; cap],
            end: 0,
            eof: false,
        };
        let Prefix {
            mut stats,
            mut file_hash,
            blocks,
        } = prefix;
        let literal = |data: &[u8], stats: &mut MatchStats, h: &mut FileHasher| -> Result<()> {
            h.update(data);
            stats.literal_bytes += data.len() as u64;
            Ok(())
        };

        win.refill(0)?;
        let (mut lm, mut off) = (0usize, 0usize);
        // File offset of buf[0].
        let mut base = stats.matched_bytes;
        let mut same_offset = if self.inplace {
            let mut same = vec![false; head.count as usize];
            same[..blocks as usize].fill(true);
            same
        } else {
            Vec::new()
        };
        if usable {
            let mut k = bl.min(win.end);
            let mut roll = Rolling::new(&win.buf[..k]);
            let mut want = blocks;
            while k >= min_len && k > 0 {
                if k == bl {
                    // Fast path: roll over bytes whose weak sum is in no bucket.
                    let limit = (win.end - k).min(lm + CHUNK_SIZE);
                    if off < limit {
                        off = self.scan(
                            &win.buf[..win.end],
                            off,
                            k,
                            limit,
                            &mut roll,
                            &mut stats.hash_hits,
                        );
                    }
                }
                let found = self.find(
                    roll.digest(),
                    &win.buf[off..off + k],
                    want,
                    base + off as u64,
                    &mut same_offset,
                    &mut stats,
                );
                if let Some(i) = found {
                    if off > lm {
                        let d = &win.buf[lm..off];
                        literal(d, &mut stats, &mut file_hash)?;
                        emit(MatchToken::Literal(d))?;
                    }
                    let data = &win.buf[off..off + k];
                    file_hash.update(data);
                    stats.matched_bytes += k as u64;
                    stats.matches += 1;
                    emit(MatchToken::Block { index: i, data })?;
                    off += k;
                    lm = off;
                    want = i + 1;
                    if win.end - off <= bl && !win.eof {
                        let shift = win.refill(lm)?;
                        lm -= shift;
                        off -= shift;
                        base += shift as u64;
                    }
                    k = bl.min(win.end - off);
                    roll = Rolling::new(&win.buf[off..off + k]);
                    continue;
                }
                if off + k >= win.end && !win.eof {
                    let shift = win.refill(lm)?;
                    lm -= shift;
                    off -= shift;
                    base += shift as u64;
                }
                if off + k < win.end {
                    roll.roll(win.buf[off], win.buf[off + k]);
                } else {
                    roll.shrink(win.buf[off]);
                    k -= 1;
                }
                off += 1;
                if off - lm >= CHUNK_SIZE {
                    let d = &win.buf[lm..lm + CHUNK_SIZE];
                    literal(d, &mut stats, &mut file_hash)?;
                    emit(MatchToken::Literal(d))?;
                    lm += CHUNK_SIZE;
                }
            }
        }
        // Whatever is left is literal data.
        loop {
            while win.end - lm >= CHUNK_SIZE || (win.eof && lm < win.end) {
                let n = (win.end - lm).min(CHUNK_SIZE);
                let d = &win.buf[lm..lm + n];
                literal(d, &mut stats, &mut file_hash)?;
                emit(MatchToken::Literal(d))?;
                lm += n;
            }
            if win.eof {
                break;
            }
            win.refill(lm)?;
            lm = 0;
        }
        stats.file_len = stats.literal_bytes + stats.matched_bytes;
        stats.checksum = file_hash.finish();
        Ok(stats)
    }

    /// Roll the window (of `k` bytes at `off`) forward while its weak sum cannot match,
    /// stopping at the first possible hit or at `limit`. Returns the new offset.
    #[inline(never)]
    fn scan(
        &self,
        buf: &[u8],
        mut off: usize,
        k: usize,
        limit: usize,
        roll: &mut Rolling,
        hash_hits: &mut u64,
    ) -> usize {
        assert!(limit + k <= buf.len());
        let mut r = *roll;
        match &self.tags {
            None => {
                while off < limit {
                    if self.index.maybe(r.digest()) {
                        break;
                    }
                    r.roll(buf[off], buf[off + k]);
                    off += 1;
                }
            }
            Some(tags) => {
                while off < limit {
                    let d = r.digest();
                    if self.index.maybe(d) {
                        break;
                    }
                    // (An offset stopped at is counted by `find`.)
                    *hash_hits += u64::from(tags.hit(d));
                    r.roll(buf[off], buf[off + k]);
                    off += 1;
                }
            }
        }
        *roll = r;
        off
    }

    /// Find a block matching `window` (whose weak sum is `weak`, at file offset `pos`),
    /// preferring `want` (the block after the previous match).
    #[inline(always)]
    fn find(
        &self,
        weak: u32,
        window: &[u8],
        want: u32,
        pos: u64,
        same_offset: &mut [bool],
        stats: &mut MatchStats,
    ) -> Option<u32> {
        let sig = self.sig;
        let head = sig.head();
        let weaks = sig.weak_sums();
        let k = window.len();
        let strong_len = head.strong_len as usize;
        let bl = head.block_len as u64;
        let mut strong: Option<Digest> = None;
        // Counted here already when rsync's way (by table slot) is asked for.
        let mut hit = match &self.tags {
            Some(tags) => {
                stats.hash_hits += u64::from(tags.hit(weak));
                true
            }
            None => false,
        };
        let mut check = |i: u32, stats: &mut MatchStats| -> bool {
            if weaks[i as usize] != weak || head.block_len_of(i) as usize != k {
                return false;
            }
            if !hit {
                hit = true;
                stats.hash_hits += 1;
            }
            let d = strong.get_or_insert_with(|| self.hasher.sum(window));
            if d.as_bytes()[..strong_len] == *sig.strong_sum(i) {
                true
            } else {
                stats.false_alarms += 1;
                false
            }
        };
        // In place, a block is usable while the receiver has not overwritten it.
        let usable = |i: u32, same: &[bool]| -> bool {
            !self.inplace || i as u64 * bl >= pos || same[i as usize]
        };
        if self.tags.is_some() && !self.inplace {
            // Counting as rsync does, in its order: its hash chain from the highest block
            // down, each block with the same weak sum whose strong sum differs a false
            // alarm, until one agrees; the block after the previous match wins if it agrees
            // too (checked without counting).
            let mut found = None;
            let mut tried = 0;
            for &i in self.index.candidates(weak).iter().rev() {
                if weaks[i as usize] != weak {
                    continue;
                }
                tried += 1;
                if tried > MAX_CHAIN_LEN {
                    break;
                }
                if check(i, stats) {
                    found = Some(i);
                    break;
                }
            }
            let i = found?;
            if i != want
                && want < head.count
                && weaks[want as usize] == weak
                && head.block_len_of(want) as usize == k
                && strong
                    .as_ref()
                    .is_some_and(|d| d.as_bytes()[..strong_len] == *sig.strong_sum(want))
            {
                return Some(want);
            }
            return Some(i);
        }
        if self.inplace {
            let aligned = pos / bl;
            if aligned * bl == pos && aligned < head.count as u64 && check(aligned as u32, stats) {
                same_offset[aligned as usize] = true;
                return Some(aligned as u32);
            }
        }
        if want < head.count && usable(want, same_offset) && check(want, stats) {
            return Some(want);
        }
        let mut tried = 0;
        for &i in self.index.candidates(weak) {
            if weaks[i as usize] != weak || i == want || !usable(i, same_offset) {
                continue;
            }
            tried += 1;
            if tried > MAX_CHAIN_LEN {
                break;
            }
            if check(i, stats) {
                return Some(i);
            }
        }
        None
    }
}

/// What the aligned-prefix pass of [`stream_arriving`] hands to the full matcher.
struct Prefix {
    stats: MatchStats,
    file_hash: FileHasher,
    /// Blocks `0..blocks` matched at their own offsets.
    blocks: u32,
}

impl Prefix {
    fn new(kind: crate::checksum::ChecksumKind) -> Self {
        Prefix {
            stats: MatchStats::default(),
            file_hash: FileHasher::new(kind),
            blocks: 0,
        }
    }
}

/// Fill `buf` from `r` as far as it goes; returns the bytes read (short only at EOF).
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(m) => n += m,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// Match a new file against a signature that is still arriving on `sums` (wire form, as
/// [`Signature::read_sums`] reads it), emitting the same tokens as reading every sum first
/// and then calling [`Matcher::stream`].
///
/// While block `i`'s sums are the newest, the file's bytes at block `i`'s own offset are
/// compared with them: the full matcher would find exactly that block there first (it
/// prefers the block after the previous match). So an unchanged leading part of the file is
/// matched, and its tokens sent, while the peer is still computing the later sums, instead
/// of after. At the first block that differs, the remaining sums are read and the full
/// matcher continues from that offset in the state it would have reached itself.
pub fn stream_arriving<S, R, F>(
    head: crate::sizes::SumHead,
    hasher: BlockHasher,
    inplace: bool,
    sums: S,
    reader: R,
    emit: F,
) -> Result<MatchStats>
where
    S: Read,
    R: Read,
    F: FnMut(MatchToken<'_>) -> Result<()>,
{
    stream_arriving_counted(head, hasher, (inplace, false), sums, reader, emit)
}

/// [`stream_arriving`], with `hash_hits` counted as rsync's sender does when the second of
/// `(inplace, stock_hash_hits)` says so (see [`Matcher::stock_hash_hits`]).
pub fn stream_arriving_counted<S, R, F>(
    head: crate::sizes::SumHead,
    hasher: BlockHasher,
    (inplace, stock_hash_hits): (bool, bool),
    mut sums: S,
    mut reader: R,
    mut emit: F,
) -> Result<MatchStats>
where
    S: Read,
    R: Read,
    F: FnMut(MatchToken<'_>) -> Result<()>,
{
    let mut sig = Signature::with_head(head);
    let strong_len = head.strong_len as usize;
    let mut rec = vec![0u8; 4 + strong_len];
    let mut block = vec![0u8; head.block_len as usize];
    let mut prefix = Prefix::new(hasher.kind());
    let mut pending = 0usize;
    while prefix.blocks < head.count {
        sums.read_exact(&mut rec)?;
        let weak = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]);
        sig.push(weak, &rec[4..])?;
        let n = read_full(&mut reader, &mut block)?;
        let data = &block[..n];
        let same = n > 0
            && n == head.block_len_of(prefix.blocks) as usize
            && crate::rolling::checksum1(data) == weak
            && hasher.sum(data).as_bytes()[..strong_len] == rec[4..];
        if !same {
            pending = n;
            break;
        }
        prefix.file_hash.update(data);
        prefix.stats.matched_bytes += n as u64;
        prefix.stats.matches += 1;
        prefix.stats.hash_hits += 1;
        emit(MatchToken::Block {
            index: prefix.blocks,
            data,
        })?;
        prefix.blocks += 1;
    }
    while !sig.is_complete() {
        sums.read_exact(&mut rec)?;
        let weak = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]);
        sig.push(weak, &rec[4..])?;
    }
    let matcher = Matcher::new(&sig, hasher)
        .inplace(inplace)
        .stock_hash_hits(stock_hash_hits);
    matcher.run((&block[..pending]).chain(reader), emit, prefix)
}

/// Convenience: run a match and collect owned tokens (for tests and small files).
pub fn diff_to_vec<R: Read>(
    sig: &Signature,
    hasher: BlockHasher,
    new: R,
) -> Result<(Vec<OwnedToken>, MatchStats)> {
    let mut out = Vec::new();
    let stats = Matcher::new(sig, hasher).stream(new, |t| {
        out.push(match t {
            MatchToken::Literal(d) => OwnedToken::Literal(d.to_vec()),
            MatchToken::Block { index, .. } => OwnedToken::Block(index),
        });
        Ok(())
    })?;
    Ok((out, stats))
}

/// A token that owns its literal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedToken {
    /// Literal bytes.
    Literal(Vec<u8>),
    /// A basis block.
    Block(u32),
}

impl OwnedToken {
    /// Borrow as a [`Token`].
    pub fn as_token(&self) -> Token<'_> {
        match self {
            OwnedToken::Literal(d) => Token::Literal(d),
            OwnedToken::Block(i) => Token::Block(*i),
        }
    }
}
