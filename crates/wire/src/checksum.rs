//! Checksum names and negotiation lists, whole-file digests, and daemon-auth digests.
//!
//! Block (rolling + strong) sums belong to `rtsync-delta`; this module only holds what the
//! protocol layer itself needs: naming/negotiating algorithms, the whole-file sum the sender
//! appends after each file's tokens (never seeded for negotiated algorithms), and the
//! daemon challenge response.

use base64::Engine as _;
use md4::Md4;
use md5::Md5;
use sha1::Sha1;
use sha2::{Sha256, Sha512};

/// A transfer checksum algorithm (`--checksum-choice`); shared with `rtsync-delta`.
pub use rtsync_delta::ChecksumKind as ChecksumAlgo;
/// Streaming whole-file checksum (unseeded), from `rtsync-delta`.
pub use rtsync_delta::FileHasher;

/// Our preference order, strongest first, as stock rsync lists them (without "none").
pub const CHECKSUM_PREFERENCE: [ChecksumAlgo; 6] = [
    ChecksumAlgo::Xxh128,
    ChecksumAlgo::Xxh3,
    ChecksumAlgo::Xxh64,
    ChecksumAlgo::Md5,
    ChecksumAlgo::Md4,
    ChecksumAlgo::Sha1,
];

/// `--checksum-choice=XFER[,FILE]`: the transfer checksum, and `-c`'s file-sum checksum
/// when a second name is given (none chosen: both negotiated).
pub fn choices(
    opts: &rtsync_engine::Options,
) -> crate::error::Result<(Option<ChecksumAlgo>, Option<ChecksumAlgo>)> {
    let Some(choice) = &opts.checksum_choice else {
        return Ok((None, None));
    };
    let named = |name: &str| {
        ChecksumAlgo::from_name(name)
            .ok_or_else(|| crate::error::Error::Startup(format!("unknown checksum name: {name}")))
    };
    let (xfer, file) = match choice.split_once(',') {
        Some((xfer, file)) => (named(xfer)?, Some(named(file)?)),
        None => (named(choice)?, None),
    };
    Ok((Some(xfer), file))
}

/// The checksum list a client sends in negotiation.
pub fn client_checksum_list() -> String {
    CHECKSUM_PREFERENCE.map(|a| a.name()).join(" ")
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
}
