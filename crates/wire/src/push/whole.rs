//! Sending a file the receiver has no basis for (an empty signature): all literal data.
//!
//! The matcher allocates a fresh 1 MiB window per file; for a push of many small files that
//! zeroing dominated the client's time once glibc began serving those blocks from the heap.
//! This path reads through one reused buffer and emits exactly the matcher's tokens:
//! literal runs of [`CHUNK_SIZE`] bytes, the last one shorter.

use std::io::{self, Read};

use rtsync_delta::{ChecksumKind, FileHasher, MatchStats, MatchToken, CHUNK_SIZE};

/// How many literal runs are read at once.
const RUNS_PER_READ: usize = 8;

/// A reusable buffer for whole-file sends.
#[derive(Default)]
pub struct WholeFile {
    buf: Vec<u8>,
}

impl WholeFile {
    /// Reads `file` to its end, calling `emit` for each literal run, and returns the
    /// statistics with the whole-file checksum of kind `kind`.
    pub fn send<R: Read, E>(
        &mut self,
        file: R,
        kind: ChecksumKind,
        emit: impl FnMut(MatchToken<'_>) -> Result<(), E>,
    ) -> Result<MatchStats, E>
    where
        E: From<io::Error>,
    {
        self.send_hashed(file, FileHasher::new(kind), emit)
    }

    /// `--append`: sends the data past the receiver's `offset` bytes (clamped to the file's
    /// length). The whole-file checksum covers the data sent, and with `verify`
    /// (`--append-verify`) the skipped prefix too, so the receiver can check what it kept.
    pub fn send_from<E>(
        &mut self,
        mut file: std::fs::File,
        kind: ChecksumKind,
        offset: u64,
        verify: bool,
        emit: impl FnMut(MatchToken<'_>) -> Result<(), E>,
    ) -> Result<MatchStats, E>
    where
        E: From<io::Error>,
    {
        use std::io::{Seek, SeekFrom};
        let len = rtsync_tree::fsops::content_size(&file)?.unwrap_or(0);
        let offset = offset.min(len);
        let mut hash = FileHasher::new(kind);
        if verify {
            let mut prefix = (&mut file).take(offset);
            let mut buf = vec![0; CHUNK_SIZE];
            loop {
                match prefix.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => hash.update(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        file.seek(SeekFrom::Start(offset))?;
        // (No further than the size found: a device read with --copy-devices has no end.)
        let mut stats = self.send_hashed(file.take(len - offset), hash, emit)?;
        stats.file_len += offset;
        Ok(stats)
    }

    fn send_hashed<R: Read, E>(
        &mut self,
        mut file: R,
        mut hash: FileHasher,
        mut emit: impl FnMut(MatchToken<'_>) -> Result<(), E>,
    ) -> Result<MatchStats, E>
    where
        E: From<io::Error>,
    {
        if self.buf.is_empty() {
            self.buf = vec![0; CHUNK_SIZE * RUNS_PER_READ];
        }
        let mut stats = MatchStats::default();
        let mut eof = false;
        while !eof {
            // Fill the buffer (short reads included) so that only the last run is short.
            let mut end = 0;
            while end < self.buf.len() {
                match file.read(&mut self.buf[end..]) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => end += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
            for run in self.buf[..end].chunks(CHUNK_SIZE) {
                hash.update(run);
                stats.literal_bytes += run.len() as u64;
                emit(MatchToken::Literal(run))?;
            }
        }
        stats.file_len = stats.literal_bytes;
        stats.checksum = hash.finish();
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtsync_delta::{Matcher, Signature};

    #[test]
    fn same_tokens_and_sum_as_the_matcher_without_a_basis() {
        for len in [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE * 9 + 5] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let kind = ChecksumKind::Md5;
            let sig = Signature::with_head(Default::default());
            let matcher = Matcher::new(&sig, rtsync_delta::BlockHasher::new(kind, 0));
            let mut want = Vec::new();
            let ws = matcher
                .stream(&data[..], |t| {
                    if let MatchToken::Literal(d) = t {
                        want.push(d.to_vec());
                    }
                    Ok(())
                })
                .unwrap();
            let mut got = Vec::new();
            let gs = WholeFile::default()
                .send(&data[..], kind, |t| {
                    if let MatchToken::Literal(d) = t {
                        got.push(d.to_vec());
                    }
                    Ok::<(), io::Error>(())
                })
                .unwrap();
            assert_eq!(got, want, "len {len}");
            assert_eq!(gs, ws, "len {len}");
        }
    }

    #[test]
    fn append_sends_the_tail_and_verify_sums_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..CHUNK_SIZE * 2 + 77).map(|i| (i % 253) as u8).collect();
        let p = dir.path().join("f");
        std::fs::write(&p, &data).unwrap();
        let kind = ChecksumKind::Md5;
        let sum = |d: &[u8]| {
            let mut h = FileHasher::new(kind);
            h.update(d);
            h.finish()
        };
        // (offset asked, verify, bytes expected, summed from)
        for (offset, verify, from, summed) in [
            (1000, false, 1000, 1000),
            (1000, true, 1000, 0),
            (0, true, 0, 0),
            (data.len() as u64 + 50, true, data.len(), 0),
        ] {
            let mut got = Vec::new();
            let st = WholeFile::default()
                .send_from(
                    std::fs::File::open(&p).unwrap(),
                    kind,
                    offset,
                    verify,
                    |t| {
                        if let MatchToken::Literal(d) = t {
                            got.extend_from_slice(d);
                        }
                        Ok::<(), io::Error>(())
                    },
                )
                .unwrap();
            assert_eq!(got, &data[from..], "offset {offset}");
            assert_eq!(st.literal_bytes, (data.len() - from) as u64);
            assert_eq!(st.checksum, sum(&data[summed..]), "offset {offset}");
        }
    }
}
