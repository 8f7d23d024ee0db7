//! The daemon challenge/response: digest negotiation and the response both sides compute.
//!
//! Self-contained (it uses nothing else of this crate) so that a client can use it as is.
//!
//! The daemon sends `@RSYNCD: AUTHREQD <challenge>`; the client answers
//! `<user> <base64_nopad(H(password ‖ challenge))>`. `H` is the strongest digest the *local* side
//! ranks highest among those the peer listed in its greeting; at protocol 30/31 without a list it
//! is MD5.
//!
//! ```
//! use rtsync_daemon::auth::{auth_response, negotiate, Digest};
//! let d = negotiate(Some("sha1 md5"), 32).unwrap();
//! assert_eq!(d, Digest::Sha1);
//! let line = auth_response(d, "secret", "challenge");
//! assert!(rtsync_daemon::auth::verify(d, "secret", "challenge", &line));
//! ```

use base64::Engine as _;

/// A digest usable for daemon authentication, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Digest {
    /// SHA-512.
    Sha512,
    /// SHA-256.
    Sha256,
    /// SHA-1.
    Sha1,
    /// MD5.
    Md5,
    /// MD4.
    Md4,
}

/// Our digests in preference order (strongest first), as stock rsync 3.5.0 ranks them.
pub const DIGESTS: &[Digest] = &[
    Digest::Sha512,
    Digest::Sha256,
    Digest::Sha1,
    Digest::Md5,
    Digest::Md4,
];

impl Digest {
    /// The name used in greetings.
    pub fn name(self) -> &'static str {
        match self {
            Digest::Sha512 => "sha512",
            Digest::Sha256 => "sha256",
            Digest::Sha1 => "sha1",
            Digest::Md5 => "md5",
            Digest::Md4 => "md4",
        }
    }

    /// Looks a digest up by name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Digest> {
        DIGESTS
            .iter()
            .copied()
            .find(|d| d.name().eq_ignore_ascii_case(name))
    }

    /// Strength rank: 0 is the strongest.
    pub fn rank(self) -> usize {
        DIGESTS
            .iter()
            .position(|d| *d == self)
            .unwrap_or(usize::MAX)
    }

    /// Hashes the concatenation of `parts`.
    pub fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            h.finalize().to_vec()
        }
        match self {
            Digest::Sha512 => run::<sha2::Sha512>(parts),
            Digest::Sha256 => run::<sha2::Sha256>(parts),
            Digest::Sha1 => run::<sha1::Sha1>(parts),
            Digest::Md5 => run::<md5::Md5>(parts),
            Digest::Md4 => run::<md4::Md4>(parts),
        }
    }
}

/// The digest list we advertise in our greeting: `sha512 sha256 sha1 md5 md4`.
pub fn digest_list() -> String {
    DIGESTS
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Picks the auth digest: our highest-ranked digest among those in the peer's greeting list, or
/// MD5 when the peer (at protocol 30/31) sent no list. `None`: nothing in common.
pub fn negotiate(peer_list: Option<&str>, protocol: u32) -> Option<Digest> {
    match peer_list {
        None => Some(if protocol >= 30 {
            Digest::Md5
        } else {
            Digest::Md4
        }),
        Some(list) => list
            .split(' ')
            .filter_map(Digest::from_name)
            .min_by_key(|d| d.rank()),
    }
}

/// `base64_nopad(H(password ‖ challenge))`: what the client sends after its user name.
pub fn password_hash(digest: Digest, password: &str, challenge: &str) -> String {
    let sum = digest.hash(&[password.as_bytes(), challenge.as_bytes()]);
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(sum)
}

/// The whole response line body the client sends: `"<user> <hash>"` (no newline). A client with
/// no user name uses `nobody`, as stock does.
pub fn auth_response_for(user: &str, digest: Digest, password: &str, challenge: &str) -> String {
    let user = if user.is_empty() { "nobody" } else { user };
    format!("{user} {}", password_hash(digest, password, challenge))
}

/// The hash part of the response (see [`password_hash`]); the name the brief asked for.
pub fn auth_response(digest: Digest, password: &str, challenge: &str) -> String {
    password_hash(digest, password, challenge)
}

/// Checks a response hash against the password, in constant time. Accepts either the bare hash
/// or a full `"user hash"` line.
pub fn verify(digest: Digest, password: &str, challenge: &str, response: &str) -> bool {
    let got = response.rsplit(' ').next().unwrap_or("");
    let want = password_hash(digest, password, challenge);
    constant_time_eq(got.as_bytes(), want.as_bytes())
}

/// Compares two byte strings without an early exit on the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// A fresh, unpredictable challenge: the digest of 32 kernel-random bytes mixed with the peer
/// address, time and pid, base64 without padding (its length depends on the digest, as stock).
pub fn generate_challenge(digest: Digest, peer_addr: &str) -> String {
    let mut rnd = [0u8; 32];
    fill_random(&mut rnd);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let sum = digest.hash(&[
        &rnd,
        peer_addr.as_bytes(),
        &now.to_le_bytes(),
        &std::process::id().to_le_bytes(),
    ]);
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(sum)
}

fn fill_random(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n <= 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            // No kernel randomness: the time, pid and address mixed in still vary.
            break;
        }
        filled += n as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_our_strongest_common() {
        let cases: &[(Option<&str>, u32, Option<Digest>)] = &[
            (Some("sha512 sha256 sha1 md5 md4"), 32, Some(Digest::Sha512)),
            (Some("md4 md5 sha1"), 32, Some(Digest::Sha1)),
            (Some("md5"), 32, Some(Digest::Md5)),
            (Some("xxh3 md4"), 32, Some(Digest::Md4)),
            (Some("SHA256"), 32, Some(Digest::Sha256)),
            (Some("bogus"), 32, None),
            (Some(""), 32, None),
            (None, 31, Some(Digest::Md5)),
            (None, 30, Some(Digest::Md5)),
            (None, 29, Some(Digest::Md4)),
        ];
        for (list, proto, want) in cases {
            assert_eq!(negotiate(*list, *proto), *want, "{list:?} {proto}");
        }
    }

    #[test]
    fn known_answers() {
        // H(password ‖ challenge), base64 without padding; computed independently with coreutils:
        // printf 'pwchal' | openssl dgst -md5 -binary | base64, with '=' stripped.
        let cases: &[(Digest, &str)] = &[
            (Digest::Md5, "VpNJu4BzQqfekJ/PYkYGqQ"),
            (Digest::Sha1, "AzCG1LXoOkIySZXXsE71QRgtMhk"),
        ];
        for (d, want) in cases {
            assert_eq!(auth_response(*d, "pw", "chal"), *want, "{d:?}");
        }
        assert_eq!(auth_response(Digest::Sha512, "pw", "chal").len(), 86);
        assert_eq!(auth_response(Digest::Sha256, "pw", "chal").len(), 43);
        assert_eq!(auth_response(Digest::Md4, "pw", "chal").len(), 22);
    }

    #[test]
    fn verify_and_compare() {
        let c = generate_challenge(Digest::Md5, "127.0.0.1");
        assert_eq!(c.len(), 22);
        assert_ne!(c, generate_challenge(Digest::Md5, "127.0.0.1"));
        let line = auth_response_for("", Digest::Md5, "pw", &c);
        assert!(line.starts_with("nobody "));
        assert!(verify(Digest::Md5, "pw", &c, &line));
        assert!(!verify(Digest::Md5, "pW", &c, &line));
        assert!(!verify(Digest::Sha1, "pw", &c, &line));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"a", b""));
        assert!(!constant_time_eq(b"ab", b"a"));
        assert_eq!(digest_list(), "sha512 sha256 sha1 md5 md4");
    }
}
