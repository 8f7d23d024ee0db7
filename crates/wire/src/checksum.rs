//! Checksum names and negotiation lists, whole-file digests, and daemon-auth digests.
//!
//! Block (rolling + strong) sums belong to `rtsync-delta`; this module only holds what the
//! protocol layer itself needs: naming/negotiating algorithms, the whole-file sum the sender
//! appends after each file's tokens (never seeded for negotiated algorithms), and the
//! daemon challenge response.

use base64::Engine as _;
use md4::Md4;
use md5::{Digest as _, Md5};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use xxhash_rust::xxh3::Xxh3;
use xxhash_rust::xxh64::Xxh64;

/// A transfer checksum algorithm (`--checksum-choice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgo {
    Xxh128,
    Xxh3,
    Xxh64,
    Md5,
    Md4,
    Sha1,
    None,
}

impl ChecksumAlgo {
    /// Our preference order, strongest first, as stock rsync lists them.
    pub const PREFERENCE: [ChecksumAlgo; 6] = [
        ChecksumAlgo::Xxh128,
        ChecksumAlgo::Xxh3,
        ChecksumAlgo::Xxh64,
        ChecksumAlgo::Md5,
        ChecksumAlgo::Md4,
        ChecksumAlgo::Sha1,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgo::Xxh128 => "xxh128",
            ChecksumAlgo::Xxh3 => "xxh3",
            ChecksumAlgo::Xxh64 => "xxh64",
            ChecksumAlgo::Md5 => "md5",
            ChecksumAlgo::Md4 => "md4",
            ChecksumAlgo::Sha1 => "sha1",
            ChecksumAlgo::None => "none",
        }
    }

    /// Parses a name as `--checksum-choice` accepts it (case-insensitive, `xxhash` = xxh64).
    pub fn from_name(name: &str) -> Option<ChecksumAlgo> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "xxh128" => ChecksumAlgo::Xxh128,
            "xxh3" => ChecksumAlgo::Xxh3,
            "xxh64" | "xxhash" => ChecksumAlgo::Xxh64,
            "md5" => ChecksumAlgo::Md5,
            "md4" => ChecksumAlgo::Md4,
            "sha1" => ChecksumAlgo::Sha1,
            "none" => ChecksumAlgo::None,
            _ => return None,
        })
    }

    /// Digest length in bytes (rsync's `csum_len_for_type`).
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgo::Xxh128 | ChecksumAlgo::Md5 | ChecksumAlgo::Md4 => 16,
            ChecksumAlgo::Xxh3 | ChecksumAlgo::Xxh64 => 8,
            ChecksumAlgo::Sha1 => 20,
            ChecksumAlgo::None => 1,
        }
    }

    /// The list a client sends in negotiation (no "none").
    pub fn client_list() -> String {
        Self::PREFERENCE.map(|a| a.name()).join(" ")
    }
}

/// Streaming whole-file checksum (unseeded).
pub enum FileHasher {
    Xxh128(Box<Xxh3>),
    Xxh3(Box<Xxh3>),
    Xxh64(Xxh64),
    Md5(Md5),
    Md4(Md4),
    Sha1(Sha1),
    None,
}

impl FileHasher {
    pub fn new(algo: ChecksumAlgo) -> FileHasher {
        match algo {
            ChecksumAlgo::Xxh128 => FileHasher::Xxh128(Box::default()),
            ChecksumAlgo::Xxh3 => FileHasher::Xxh3(Box::default()),
            ChecksumAlgo::Xxh64 => FileHasher::Xxh64(Xxh64::new(0)),
            ChecksumAlgo::Md5 => FileHasher::Md5(Md5::new()),
            ChecksumAlgo::Md4 => FileHasher::Md4(Md4::new()),
            ChecksumAlgo::Sha1 => FileHasher::Sha1(Sha1::new()),
            ChecksumAlgo::None => FileHasher::None,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            FileHasher::Xxh128(h) | FileHasher::Xxh3(h) => h.update(data),
            FileHasher::Xxh64(h) => h.update(data),
            FileHasher::Md5(h) => h.update(data),
            FileHasher::Md4(h) => h.update(data),
            FileHasher::Sha1(h) => h.update(data),
            FileHasher::None => {}
        }
    }

    /// The digest in rsync's wire byte order (xxh values little-endian, low half first).
    pub fn finish(self) -> Vec<u8> {
        match self {
            FileHasher::Xxh128(h) => {
                let v = h.digest128();
                let mut out = (v as u64).to_le_bytes().to_vec();
                out.extend_from_slice(&((v >> 64) as u64).to_le_bytes());
                out
            }
            FileHasher::Xxh3(h) => h.digest().to_le_bytes().to_vec(),
            FileHasher::Xxh64(h) => h.digest().to_le_bytes().to_vec(),
            FileHasher::Md5(h) => h.finalize().to_vec(),
            FileHasher::Md4(h) => h.finalize().to_vec(),
            FileHasher::Sha1(h) => h.finalize().to_vec(),
            FileHasher::None => vec![0],
        }
    }
}

/// Digest used for the daemon's challenge/response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthDigest {
    Sha512,
    Sha256,
    Sha1,
    Md5,
    Md4,
}

impl AuthDigest {
    /// Strongest first, as stock advertises them in its greeting.
    pub const PREFERENCE: [AuthDigest; 5] = [
        AuthDigest::Sha512,
        AuthDigest::Sha256,
        AuthDigest::Sha1,
        AuthDigest::Md5,
        AuthDigest::Md4,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AuthDigest::Sha512 => "sha512",
            AuthDigest::Sha256 => "sha256",
            AuthDigest::Sha1 => "sha1",
            AuthDigest::Md5 => "md5",
            AuthDigest::Md4 => "md4",
        }
    }

    /// The list sent after the version in our greeting.
    pub fn greeting_list() -> String {
        Self::PREFERENCE.map(|a| a.name()).join(" ")
    }

    /// Our most preferred digest that the peer also listed; with no list (protocol < 32),
    /// md5 as stock does.
    pub fn negotiate(peer_list: Option<&str>) -> Option<AuthDigest> {
        let Some(list) = peer_list else {
            return Some(AuthDigest::Md5);
        };
        let theirs: Vec<String> = list
            .split_ascii_whitespace()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        Self::PREFERENCE
            .into_iter()
            .find(|d| theirs.iter().any(|t| t == d.name()))
    }
}

/// The response to `@RSYNCD: AUTHREQD <challenge>`: `base64_nopad(H(password ‖ challenge))`.
pub fn auth_response(digest: AuthDigest, password: &[u8], challenge: &[u8]) -> String {
    fn h<D: md5::Digest>(password: &[u8], challenge: &[u8]) -> Vec<u8> {
        let mut d = D::new();
        d.update(password);
        d.update(challenge);
        d.finalize().to_vec()
    }
    let raw = match digest {
        AuthDigest::Sha512 => h::<Sha512>(password, challenge),
        AuthDigest::Sha256 => h::<Sha256>(password, challenge),
        AuthDigest::Sha1 => h::<Sha1>(password, challenge),
        AuthDigest::Md5 => h::<Md5>(password, challenge),
        AuthDigest::Md4 => h::<Md4>(password, challenge),
    };
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(raw)
}

/// Picks our most preferred name that also appears in the peer's list (how stock ≥ 3.2
/// negotiates: each side chooses from its own order).
pub fn pick_common<'a>(ours: &[&'a str], theirs: &str) -> Option<&'a str> {
    let theirs: Vec<&str> = theirs.split_ascii_whitespace().collect();
    ours.iter()
        .copied()
        .find(|o| theirs.iter().any(|t| t.eq_ignore_ascii_case(o)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_negotiation_table() {
        let cases: &[(Option<&str>, Option<AuthDigest>)] = &[
            (Some("sha512 sha256 sha1 md5 md4"), Some(AuthDigest::Sha512)),
            (Some("md4 md5"), Some(AuthDigest::Md5)),
            (Some("md4"), Some(AuthDigest::Md4)),
            (Some("blake3"), None),
            (None, Some(AuthDigest::Md5)),
        ];
        for &(list, want) in cases {
            assert_eq!(AuthDigest::negotiate(list), want, "{list:?}");
        }
    }

    #[test]
    fn auth_response_table() {
        // Expected values computed with coreutils:
        // printf 'secretabc' | md5sum | xxd -r -p | base64 | tr -d =
        let cases = [
            (AuthDigest::Md5, "xCuToaw7OC6IBxUQKWqWzg"),
            (AuthDigest::Sha512, "olNJratyrpY507utzYgpO4VU6WTxPTt/zZUUvwNkjUdsfjxJt7afz8hc+at5ORKlSsXaHOKLNp+Yti+Abpk2WQ"),
        ];
        for (digest, want) in cases {
            assert_eq!(auth_response(digest, b"secret", b"abc"), want, "{digest:?}");
        }
    }

    #[test]
    fn checksum_pick_table() {
        let ours = ["xxh128", "xxh3", "xxh64", "md5", "md4", "sha1"];
        let cases: &[(&str, Option<&str>)] = &[
            ("xxh128 xxh3 xxh64 md5 md4 sha1 none", Some("xxh128")),
            ("md4 md5", Some("md5")),
            ("none", None),
            ("SHA1", Some("sha1")),
        ];
        for &(theirs, want) in cases {
            assert_eq!(pick_common(&ours, theirs), want, "{theirs}");
        }
    }

    #[test]
    fn xxh128_byte_order() {
        let mut h = FileHasher::new(ChecksumAlgo::Xxh128);
        h.update(b"");
        let v = xxhash_rust::xxh3::xxh3_128(b"");
        let mut want = (v as u64).to_le_bytes().to_vec();
        want.extend_from_slice(&((v >> 64) as u64).to_le_bytes());
        assert_eq!(h.finish(), want);
    }
}
