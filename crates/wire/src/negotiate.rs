//! Protocol setup after the connection is made (rsync's `setup_protocol`): the version
//! exchange over a remote shell, compat flags, checksum/compression negotiation, the seed.

use std::io::{Read, Write};

use crate::checksum::{client_checksum_list, pick_common, ChecksumAlgo, CHECKSUM_PREFERENCE};
use crate::error::{exit, Error, Result};
use crate::varint::{put_i32, put_varint, put_vstring, ReadWire};

/// Oldest protocol we talk.
pub const MIN_PROTOCOL: u32 = 30;
/// Newest protocol we talk (and advertise).
pub const MAX_PROTOCOL: u32 = 32;

/// Compat flag bits (exchanged as a varint at protocol ≥ 30).
pub mod cf {
    pub const INC_RECURSE: i32 = 1 << 0;
    pub const SYMLINK_TIMES: i32 = 1 << 1;
    pub const SYMLINK_ICONV: i32 = 1 << 2;
    pub const SAFE_FLIST: i32 = 1 << 3;
    pub const AVOID_XATTR_OPTIM: i32 = 1 << 4;
    pub const CHKSUM_SEED_FIX: i32 = 1 << 5;
    pub const INPLACE_PARTIAL_DIR: i32 = 1 << 6;
    pub const VARINT_FLIST_FLAGS: i32 = 1 << 7;
    pub const ID0_NAMES: i32 = 1 << 8;
}

/// The capability letters a client glues after `-e` in its option bundle. `i` (incremental
/// recursion) is added after the `.` only for the transfers that can use it
/// ([`crate::server_args::offer_inc_recurse`]).
pub const CLIENT_CAPABILITIES: &str = ".LsfxCIvu";

/// A compression algorithm (`--compress-choice`); shared with `rtsync-delta`.
pub use rtsync_delta::Compression;

/// What the client asks for.
#[derive(Debug, Clone, Default)]
pub struct NegotiateConfig {
    /// `--checksum-choice`: fixed algorithm, no negotiation.
    pub checksum_choice: Option<ChecksumAlgo>,
    /// `--checksum-choice=XFER,FILE`: `-c`'s whole-file sums (in the file list) use FILE.
    pub file_checksum_choice: Option<ChecksumAlgo>,
    /// `-z`.
    pub compress: bool,
    /// `--compress-choice`: fixed algorithm, no negotiation.
    pub compress_choice: Option<Compression>,
    /// Compression algorithms we can actually run, preferred first.
    pub supported_compressions: Vec<Compression>,
    /// A client: we offered incremental recursion (`i` in the `-e` capabilities). A server:
    /// we can do it for this transfer, so we grant it if the client offered it.
    pub offered_inc_recurse: bool,
    /// Writing a batch: only the pre-negotiation choices (md5, zlib) are offered.
    pub batch: bool,
}

/// The outcome of setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub protocol: u32,
    pub compat_flags: i32,
    /// Transfer (and whole-file) checksum.
    pub checksum: ChecksumAlgo,
    /// `-c`'s file sums, in the file list: the transfer checksum, unless
    /// `--checksum-choice=XFER,FILE` named another (as stock's file_sum_nni).
    pub file_checksum: ChecksumAlgo,
    /// Token compression, if any.
    pub compression: Option<Compression>,
    pub seed: i32,
}

impl Negotiated {
    /// Flags in the file list are varints (CF_VARINT_FLIST_FLAGS).
    pub fn varint_flist_flags(&self) -> bool {
        self.compat_flags & cf::VARINT_FLIST_FLAGS != 0
    }

    /// The peer sends the name of id 0 at the end of the uid/gid lists.
    pub fn id0_names(&self) -> bool {
        self.compat_flags & cf::ID0_NAMES != 0
    }

    /// io-error end marker allowed (protocol ≥ 31 or CF_SAFE_FLIST).
    pub fn safe_flist(&self) -> bool {
        self.protocol >= 31 || self.compat_flags & cf::SAFE_FLIST != 0
    }

    /// With `--iconv`, symlink targets are converted too (CF_SYMLINK_ICONV).
    pub fn symlink_iconv(&self) -> bool {
        self.compat_flags & cf::SYMLINK_ICONV != 0
    }

    /// Incremental recursion is on (CF_INC_RECURSE).
    pub fn inc_recurse(&self) -> bool {
        self.compat_flags & cf::INC_RECURSE != 0
    }

    /// `--compress-level=0` with zlib (either kind) means no compression at all, on both
    /// ends (stock's init_compression_level turns it off after the negotiation).
    pub fn apply_compress_level(&mut self, level: Option<i32>) {
        if level == Some(0)
            && matches!(
                self.compression,
                Some(Compression::Zlib | Compression::Zlibx)
            )
        {
            self.compression = None;
        }
    }

    /// Seed goes first into MD5 block sums.
    pub fn proper_seed_order(&self) -> bool {
        self.compat_flags & cf::CHKSUM_SEED_FIX != 0
    }
}

/// Remote-shell version exchange: each side writes its int32 version, then reads the other's.
/// Returns the protocol both will speak.
pub fn exchange_versions<R: Read, W: Write>(r: &mut R, w: &mut W, ours: u32) -> Result<u32> {
    let mut out = Vec::new();
    put_i32(&mut out, ours as i32);
    w.write_all(&out)
        .and_then(|_| w.flush())
        .map_err(|e| Error::io("sending protocol version", e))?;
    let theirs = r.read_i32()?;
    check_remote_version(theirs)?;
    Ok(ours.min(theirs as u32))
}

/// Refuses protocol versions outside what we speak, with stock's wording.
pub fn check_remote_version(theirs: i32) -> Result<()> {
    if !(20..=40).contains(&theirs) {
        return Err(Error::Protocol(
            "protocol version mismatch -- is your shell clean?".into(),
        ));
    }
    if (theirs as u32) < MIN_PROTOCOL {
        return Err(Error::Protocol(format!(
            "the remote rsync speaks protocol {theirs}; rtsync needs {MIN_PROTOCOL} or newer"
        )));
    }
    Ok(())
}

/// Client half of setup at protocol ≥ 30: compat flags, negotiation strings, seed.
pub fn client_setup<R: Read, W: Write>(
    r: &mut R,
    w: &mut W,
    protocol: u32,
    cfg: &NegotiateConfig,
) -> Result<Negotiated> {
    let compat_flags = r.read_varint()?;
    if compat_flags & cf::INC_RECURSE != 0 && !cfg.offered_inc_recurse {
        return Err(Error::Protocol(
            "server enabled incremental recursion, which we did not offer".into(),
        ));
    }
    let negotiated_strings = compat_flags & cf::VARINT_FLIST_FLAGS != 0;
    let compress_names: Vec<&str> = if cfg.batch {
        vec!["zlib"]
    } else {
        cfg.supported_compressions
            .iter()
            .map(|c| c.name())
            .collect()
    };
    let negotiate_compress = cfg.compress && cfg.compress_choice.is_none();
    if negotiated_strings {
        let mut out = Vec::new();
        if cfg.checksum_choice.is_none() {
            let list = if cfg.batch {
                "md5".to_string()
            } else {
                client_checksum_list()
            };
            put_vstring(&mut out, list.as_bytes())?;
        }
        if negotiate_compress {
            put_vstring(&mut out, compress_names.join(" ").as_bytes())?;
        }
        w.write_all(&out)
            .and_then(|_| w.flush())
            .map_err(|e| Error::io("sending negotiation strings", e))?;
    }
    let (checksum, compression) = read_choices(r, cfg, negotiated_strings, &compress_names)?;
    let seed = r.read_i32()?;
    Ok(Negotiated {
        protocol,
        compat_flags,
        checksum,
        file_checksum: file_checksum(cfg, checksum),
        compression: compression.filter(|c| *c != Compression::None),
        seed,
    })
}

/// `-c`'s file-sum checksum: a negotiated checksum serves both; a chosen one serves both
/// unless the choice named a second.
fn file_checksum(cfg: &NegotiateConfig, checksum: ChecksumAlgo) -> ChecksumAlgo {
    match cfg.checksum_choice {
        Some(_) => cfg.file_checksum_choice.unwrap_or(checksum),
        None => checksum,
    }
}

fn negotiation_failed(what: &str, theirs: &str) -> Error {
    let _ = exit::UNSUPPORTED;
    Error::Unsupported(format!(
        "Failed to negotiate a {what} choice. Server list: {theirs}"
    ))
}

/// Server half of setup: writes compat flags (derived from the client's capability letters),
/// exchanges negotiation strings, writes the seed.
pub fn server_setup<R: Read, W: Write>(
    r: &mut R,
    w: &mut W,
    protocol: u32,
    client_caps: &str,
    cfg: &NegotiateConfig,
    seed: i32,
) -> Result<Negotiated> {
    let mut flags = cf::SYMLINK_TIMES;
    if cfg.offered_inc_recurse && client_caps.contains('i') {
        flags |= cf::INC_RECURSE;
    }
    for (letter, bit) in [
        ('s', cf::SYMLINK_ICONV),
        ('f', cf::SAFE_FLIST),
        ('x', cf::AVOID_XATTR_OPTIM),
        ('C', cf::CHKSUM_SEED_FIX),
        ('I', cf::INPLACE_PARTIAL_DIR),
        ('u', cf::ID0_NAMES),
        ('v', cf::VARINT_FLIST_FLAGS),
    ] {
        if client_caps.contains(letter) {
            flags |= bit;
        }
    }
    let mut out = Vec::new();
    put_varint(&mut out, flags);
    let negotiated_strings = flags & cf::VARINT_FLIST_FLAGS != 0;
    let compress_names: Vec<&str> = cfg
        .supported_compressions
        .iter()
        .map(|c| c.name())
        .chain(std::iter::once("none"))
        .collect();
    let negotiate_compress = cfg.compress && cfg.compress_choice.is_none();
    if negotiated_strings {
        if cfg.checksum_choice.is_none() {
            put_vstring(&mut out, (client_checksum_list() + " none").as_bytes())?;
        }
        if negotiate_compress {
            put_vstring(&mut out, compress_names.join(" ").as_bytes())?;
        }
    }
    w.write_all(&out)
        .and_then(|_| w.flush())
        .map_err(|e| Error::io("sending compat flags", e))?;
    let (checksum, compression) = read_choices(r, cfg, negotiated_strings, &compress_names)?;
    let mut out = Vec::new();
    put_i32(&mut out, seed);
    w.write_all(&out)
        .and_then(|_| w.flush())
        .map_err(|e| Error::io("sending checksum seed", e))?;
    Ok(Negotiated {
        protocol,
        compat_flags: flags,
        checksum,
        file_checksum: file_checksum(cfg, checksum),
        compression: compression.filter(|c| *c != Compression::None),
        seed,
    })
}

/// Reads the peer's checksum and compression lists (when they were exchanged) and picks, for
/// each, our most preferred name it also lists; an explicit choice or the pre-list defaults
/// (md5, zlib) otherwise. Both roles decide the same way.
fn read_choices<R: Read>(
    r: &mut R,
    cfg: &NegotiateConfig,
    negotiated_strings: bool,
    compress_names: &[&str],
) -> Result<(ChecksumAlgo, Option<Compression>)> {
    let checksum = match cfg.checksum_choice {
        Some(c) => c,
        None if negotiated_strings => {
            let theirs = r.read_vstring(256)?;
            let theirs = String::from_utf8_lossy(&theirs);
            let ours: Vec<&str> = if cfg.batch {
                vec!["md5"]
            } else {
                CHECKSUM_PREFERENCE.iter().map(|c| c.name()).collect()
            };
            let name = pick_common(&ours, &theirs)
                .ok_or_else(|| negotiation_failed("checksum", &theirs))?;
            ChecksumAlgo::from_name(name).expect("our own name")
        }
        None => ChecksumAlgo::Md5,
    };
    let compression = if !cfg.compress {
        None
    } else if let Some(c) = cfg.compress_choice {
        Some(c)
    } else if negotiated_strings {
        let theirs = r.read_vstring(256)?;
        let theirs = String::from_utf8_lossy(&theirs);
        let name = pick_common(compress_names, &theirs)
            .ok_or_else(|| negotiation_failed("compress", &theirs))?;
        Compression::from_name(name)
    } else {
        Some(Compression::Zlib)
    };
    Ok((checksum, compression))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_reads_what_a_stock_server_sends() {
        // compat flags 0x1fe... minus inc-recurse, lists, seed.
        let mut input = Vec::new();
        put_varint(&mut input, 0x1fe);
        put_vstring(&mut input, b"xxh128 xxh3 xxh64 md5 md4 sha1 none").unwrap();
        put_vstring(&mut input, b"zstd lz4 zlibx zlib none").unwrap();
        put_i32(&mut input, 12345);
        let cfg = NegotiateConfig {
            compress: true,
            supported_compressions: vec![Compression::Zlibx, Compression::Zlib],
            ..Default::default()
        };
        let mut sent = Vec::new();
        let n = client_setup(&mut &input[..], &mut sent, 32, &cfg).unwrap();
        assert_eq!(n.checksum, ChecksumAlgo::Xxh128);
        assert_eq!(n.compression, Some(Compression::Zlibx));
        assert_eq!(n.seed, 12345);
        assert!(n.varint_flist_flags() && n.id0_names() && n.safe_flist());
        let mut want = Vec::new();
        put_vstring(&mut want, b"xxh128 xxh3 xxh64 md5 md4 sha1").unwrap();
        put_vstring(&mut want, b"zlibx zlib").unwrap();
        assert_eq!(sent, want);
    }

    #[test]
    fn inc_recurse_from_server_is_refused() {
        let mut input = Vec::new();
        put_varint(&mut input, 0x1ff);
        let err = client_setup(
            &mut &input[..],
            &mut Vec::new(),
            32,
            &NegotiateConfig::default(),
        );
        assert_eq!(err.unwrap_err().exit_code(), 2);
    }

    #[test]
    fn a_server_grants_inc_recurse_only_when_offered_and_able() {
        for (caps, able, granted) in [
            (".iLsfxCIvu", true, true),
            (".LsfxCIvu", true, false),
            (".iLsfxCIvu", false, false),
        ] {
            let cfg = NegotiateConfig {
                checksum_choice: Some(ChecksumAlgo::Md5),
                offered_inc_recurse: able,
                ..Default::default()
            };
            let mut out = Vec::new();
            let n = server_setup(&mut &[][..], &mut out, 32, caps, &cfg, 1).unwrap();
            assert_eq!(n.inc_recurse(), granted, "{caps} {able}");
            let c = client_setup(
                &mut &out[..],
                &mut Vec::new(),
                32,
                &NegotiateConfig {
                    checksum_choice: Some(ChecksumAlgo::Md5),
                    offered_inc_recurse: caps.contains('i'),
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(c.inc_recurse(), granted);
        }
    }

    #[test]
    fn server_and_client_agree() {
        let cfg = NegotiateConfig {
            compress: true,
            supported_compressions: vec![Compression::Zlib],
            ..Default::default()
        };
        let mut client_out = Vec::new();
        put_vstring(&mut client_out, b"md5 md4").unwrap();
        put_vstring(&mut client_out, b"zlib").unwrap();
        let mut server_out = Vec::new();
        let s = server_setup(
            &mut &client_out[..],
            &mut server_out,
            31,
            "LsfxCIvu",
            &cfg,
            7,
        )
        .unwrap();
        assert_eq!(s.checksum, ChecksumAlgo::Md5);
        let c = client_setup(&mut &server_out[..], &mut Vec::new(), 31, &cfg).unwrap();
        assert_eq!(
            (c.checksum, c.compression, c.seed),
            (ChecksumAlgo::Xxh128, Some(Compression::Zlib), 7)
        );
        assert_eq!(c.compat_flags, s.compat_flags);
    }
}
