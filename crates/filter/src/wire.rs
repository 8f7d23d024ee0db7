//! The filter list on the wire.
//!
//! A client sends its rules to the server as a sequence of length-prefixed
//! strings (`int32` little-endian length, then the rule text, e.g. `- foo`,
//! `+ bar/`, `: /.rsync-filter`, `-p .svn/`), ended by a zero length. Which
//! rules are sent depends on the client's role: rules that only matter on
//! the client's side (sender-only rules when the client sends, receiver-only
//! ones when it receives, unsided ones under `--delete-excluded` when it
//! sends) stay home. A client that sends files and whose receiver does not
//! need rules (no `--delete`, no `--prune-empty-dirs`) sends no list at all.
//! Under `-C`, a sending client expands the CVS-ignore list into plain rules
//! (the server does not know the client's $HOME/.cvsignore).
//!
//! ```
//! use rtsync_filter::wire::{client_rules, read_list, server_rules, encode_list, ClientContext, ServerContext};
//! use rtsync_filter::{CvsEnv, FilterSet, NoFiles, Side};
//!
//! let mut set = FilterSet::new();
//! set.add_exclude(b"*.o").unwrap();
//! set.add_filter(b"hide secret", &mut NoFiles).unwrap(); // sender-only
//! set.add_filter(b"protect keep/", &mut NoFiles).unwrap(); // receiver-only
//!
//! // Pulling: the remote sender gets the sender-side rules.
//! let pull = ClientContext { am_sender: false, protocol: 31, delete: true, delete_excluded: false, prune_empty_dirs: false };
//! let rules = client_rules(&set, &pull).unwrap().unwrap();
//! assert_eq!(rules, [b"- *.o".to_vec(), b"-s secret".to_vec()]);
//!
//! // The server side reads the framed list back and builds its set.
//! let bytes = encode_list(&rules);
//! let received = read_list(&mut &bytes[..]).unwrap();
//! let ctx = ServerContext { am_sender: true, protocol: 31, delete_excluded: false, cvs_exclude: false };
//! let server = server_rules(&received, &ctx, CvsEnv::default(), &mut NoFiles).unwrap();
//! assert!(server.check(b"dir/secret", false, Side::Sender).is_excluded());
//! ```

use std::io::{self, Read, Write};

use crate::cvs::CvsEnv;
use crate::error::FilterError;
use crate::parse::Mode;
use crate::rule::{bits, Rule};
use crate::set::{Entry, FilterSet};
use crate::source::FileSource;

/// Longest rule string accepted from a peer (rsync's buffer size - 1).
pub const MAX_WIRE_RULE_LEN: usize = 4096 + 1024 - 1;
/// Most rules accepted from a peer in one list.
pub const MAX_WIRE_RULES: usize = 1 << 20;

/// The client's situation when it sends its filter list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientContext {
    /// The client is the sender (push); false for pull.
    pub am_sender: bool,
    /// Negotiated protocol version (30..=32 supported; 29 renders too).
    pub protocol: u32,
    /// Any `--delete*` mode.
    pub delete: bool,
    /// `--delete-excluded`.
    pub delete_excluded: bool,
    /// `--prune-empty-dirs` (`-m`).
    pub prune_empty_dirs: bool,
}

impl ClientContext {
    /// Whether a list is exchanged at all (rsync: the receiver wants it,
    /// or the server is the sender).
    pub fn list_is_sent(&self) -> bool {
        let receiver_wants = self.prune_empty_dirs
            || (self.delete && (!self.delete_excluded || self.protocol >= 29));
        !self.am_sender || receiver_wants
    }
}

/// Which side a rule is kept for when a list is shared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Elide {
    Keep,
    LocalOnly,
    RemoteOnly,
}

fn elide_for(rule: &Rule, ctx: &ClientContext) -> Elide {
    let f = rule.flags;
    let mine = if ctx.am_sender {
        Elide::LocalOnly
    } else {
        Elide::RemoteOnly
    };
    let theirs = if ctx.am_sender {
        Elide::RemoteOnly
    } else {
        Elide::LocalOnly
    };
    let mut elide = Elide::Keep;
    if f & bits::SENDER != 0 {
        elide = mine;
    }
    if f & bits::RECEIVER != 0 {
        elide = if elide == Elide::Keep {
            theirs
        } else {
            Elide::Keep
        };
    } else if ctx.delete_excluded
        && elide == Elide::Keep
        && (f & bits::PERDIR == 0 || f & bits::NO_PREFIXES != 0)
    {
        elide = mine;
    }
    elide
}

/// One rule's wire string, or `TooModern` when the protocol cannot carry it.
fn render(rule: &Rule, ctx: &ClientContext) -> Result<Option<Vec<u8>>, FilterError> {
    if ctx.protocol < 29 {
        return Err(FilterError::TooModern {
            protocol: ctx.protocol,
        });
    }
    let mut flags = rule.flags;
    if flags & bits::PERISHABLE != 0 && ctx.protocol < 30 {
        if ctx.am_sender {
            return Err(FilterError::TooModern {
                protocol: ctx.protocol,
            });
        }
        flags &= !bits::PERISHABLE;
    }
    let shown = Rule {
        flags,
        ..rule.clone()
    };
    let mut out = shown.prefix(true).into_bytes();
    out.extend_from_slice(rule.pattern());
    if rule.dir_only() {
        out.push(b'/');
    }
    Ok(Some(out))
}

fn send_entries(
    set: &FilterSet,
    entries: &[Entry],
    ctx: &ClientContext,
    skip_from: usize,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), FilterError> {
    for (index, entry) in entries.iter().enumerate() {
        if index >= skip_from {
            break;
        }
        let rule = entry.rule();
        if elide_for(rule, ctx) == Elide::LocalOnly {
            continue;
        }
        if let Entry::CvsImport(_) = entry {
            if ctx.am_sender {
                send_entries(set, set.cvs_entries(), ctx, usize::MAX, out)?;
                continue;
            }
        }
        if let Some(text) = render(rule, ctx)? {
            out.push(text);
        }
    }
    Ok(())
}

/// The rule strings a client sends, in order, or `None` when it sends no
/// list at all (not even the terminating zero).
///
/// `-C` added with [`FilterSet::add_cvs_exclude`] is sent (expanded) only
/// when the client is the sender; a receiving client leaves it to the
/// server, which gets `-C` in its options.
pub fn client_rules(
    set: &FilterSet,
    ctx: &ClientContext,
) -> Result<Option<Vec<Vec<u8>>>, FilterError> {
    if !ctx.list_is_sent() {
        // Still validate, as rsync does, so "too modern" is reported.
        let mut scratch = Vec::new();
        send_entries(set, set.entries(), ctx, usize::MAX, &mut scratch)?;
        return Ok(None);
    }
    let skip_from = match set.cvs_exclude_at() {
        Some(at) if !ctx.am_sender => at,
        _ => usize::MAX,
    };
    let mut out = Vec::new();
    send_entries(set, set.entries(), ctx, skip_from, &mut out)?;
    Ok(Some(out))
}

/// Encodes a rule list as sent on the wire (lengths, texts, final zero).
pub fn encode_list(rules: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for rule in rules {
        out.extend_from_slice(&(rule.len() as i32).to_le_bytes());
        out.extend_from_slice(rule);
    }
    out.extend_from_slice(&0i32.to_le_bytes());
    out
}

/// Writes a rule list to `w` (see [`encode_list`]).
pub fn write_list(w: &mut impl Write, rules: &[Vec<u8>]) -> io::Result<()> {
    w.write_all(&encode_list(rules))
}

/// Reads a peer's rule list from `r`, bounding each rule's length and the
/// number of rules.
pub fn read_list(r: &mut impl Read) -> io::Result<Vec<Vec<u8>>> {
    let mut rules = Vec::new();
    loop {
        let mut len = [0u8; 4];
        r.read_exact(&mut len)?;
        let len = i32::from_le_bytes(len);
        if len == 0 {
            return Ok(rules);
        }
        if len < 0 || len as usize > MAX_WIRE_RULE_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("filter rule length {len} out of range"),
            ));
        }
        if rules.len() >= MAX_WIRE_RULES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "too many filter rules",
            ));
        }
        let mut rule = vec![0u8; len as usize];
        r.read_exact(&mut rule)?;
        rules.push(rule);
    }
}

/// The server's situation when it receives a client's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerContext {
    /// The server is the sender (the client pulls).
    pub am_sender: bool,
    /// Negotiated protocol version.
    pub protocol: u32,
    /// `--delete-excluded` was among the client's options.
    pub delete_excluded: bool,
    /// `-C` was among the client's options.
    pub cvs_exclude: bool,
}

/// Builds the server's rule list from what the client sent. `cvs_env` is
/// the server's own `$HOME/.cvsignore` and `$CVSIGNORE` (used under `-C`).
/// Merge rules (`. FILE`) in the list are read through `source`, which
/// should confine reads beneath the module root.
pub fn server_rules(
    rules: &[Vec<u8>],
    ctx: &ServerContext,
    cvs_env: CvsEnv,
    source: &mut dyn FileSource,
) -> Result<FilterSet, FilterError> {
    let mut set = FilterSet::new();
    set.set_cvs_env(cvs_env);
    set.set_delete_excluded(ctx.delete_excluded);
    let mode = Mode {
        old_prefixes: ctx.protocol < 29,
        fatal_missing: true,
        ..Mode::default()
    };
    for rule in rules {
        if rule.len() > MAX_WIRE_RULE_LEN {
            return Err(FilterError::TooLong {
                len: rule.len(),
                limit: MAX_WIRE_RULE_LEN,
                rule: crate::error::lossy(rule),
            });
        }
        set.add_top(rule, 0, mode, source)?;
    }
    if ctx.cvs_exclude {
        if ctx.am_sender || ctx.protocol < 29 {
            set.add_filter(b":C", source)?;
        }
        if ctx.am_sender {
            set.add_filter(b"-C", source)?;
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::NoFiles;

    fn ctx(am_sender: bool) -> ClientContext {
        ClientContext {
            am_sender,
            protocol: 31,
            delete: true,
            delete_excluded: false,
            prune_empty_dirs: false,
        }
    }

    fn set_of(rules: &[&str]) -> FilterSet {
        let mut set = FilterSet::new();
        for r in rules {
            set.add_filter(r.as_bytes(), &mut NoFiles).unwrap();
        }
        set
    }

    fn strings(v: Option<Vec<Vec<u8>>>) -> Option<Vec<String>> {
        v.map(|v| {
            v.into_iter()
                .map(|s| String::from_utf8(s).unwrap())
                .collect()
        })
    }

    #[test]
    fn sides_table() {
        let set = set_of(&[
            "- a", "+ b/", "H c", "S d", "P e", "R f", "-sr g", "-p h", ":n- .f", "-! i", "-/ /j",
        ]);
        let pushed = strings(client_rules(&set, &ctx(true)).unwrap()).unwrap();
        assert_eq!(
            pushed,
            ["- a", "+ b/", "-r e", "+r f", "-sr g", "-p h", ":n- .f", "-! i", "-/ /j"]
        );
        let pulled = strings(client_rules(&set, &ctx(false)).unwrap()).unwrap();
        assert_eq!(
            pulled,
            ["- a", "+ b/", "-s c", "+s d", "-sr g", "-p h", ":n- .f", "-! i", "-/ /j"]
        );
    }

    #[test]
    fn no_list_when_pushing_without_delete() {
        let set = set_of(&["- a"]);
        let c = ClientContext {
            delete: false,
            ..ctx(true)
        };
        assert_eq!(client_rules(&set, &c).unwrap(), None);
        let c = ClientContext {
            delete: false,
            ..ctx(false)
        };
        assert!(client_rules(&set, &c).unwrap().is_some());
    }

    #[test]
    fn delete_excluded_keeps_plain_rules_home_when_pushing() {
        let mut set = FilterSet::new();
        set.set_delete_excluded(true);
        set.add_exclude(b"a").unwrap();
        set.add_filter(b"P keep", &mut NoFiles).unwrap();
        let c = ClientContext {
            delete_excluded: true,
            ..ctx(true)
        };
        assert_eq!(
            strings(client_rules(&set, &c).unwrap()).unwrap(),
            ["-r keep"]
        );
        let c = ClientContext {
            delete_excluded: true,
            ..ctx(false)
        };
        assert_eq!(strings(client_rules(&set, &c).unwrap()).unwrap(), ["-s a"]);
    }

    #[test]
    fn cvs_exclude_expanded_when_pushing() {
        let mut set = set_of(&["- a"]);
        set.add_cvs_exclude().unwrap();
        let pushed = strings(client_rules(&set, &ctx(true)).unwrap()).unwrap();
        assert_eq!(pushed[0], "- a");
        assert_eq!(pushed[1], ":C .cvsignore");
        assert_eq!(pushed[2], "-p RCS");
        assert!(pushed.contains(&"-p .git/".to_string()));
        let pulled = strings(client_rules(&set, &ctx(false)).unwrap()).unwrap();
        assert_eq!(pulled, ["- a"]);
    }

    #[test]
    fn list_roundtrip_and_bounds() {
        let rules = vec![b"- a".to_vec(), b"+ b/".to_vec()];
        let bytes = encode_list(&rules);
        assert_eq!(read_list(&mut &bytes[..]).unwrap(), rules);
        let mut bad = (-5i32).to_le_bytes().to_vec();
        bad.extend_from_slice(&0i32.to_le_bytes());
        assert!(read_list(&mut &bad[..]).is_err());
        let huge = (1i32 << 20).to_le_bytes();
        assert!(read_list(&mut &huge[..]).is_err());
        assert!(read_list(&mut &b"\x05\0\0\0- a"[..]).is_err());
    }

    #[test]
    fn server_parses_client_list() {
        let rules = vec![
            b"- *.o".to_vec(),
            b"-s secret".to_vec(),
            b": /.rsync-filter".to_vec(),
        ];
        let c = ServerContext {
            am_sender: true,
            protocol: 31,
            delete_excluded: false,
            cvs_exclude: true,
        };
        let set = server_rules(&rules, &c, CvsEnv::default(), &mut NoFiles).unwrap();
        assert!(set.is_excluded(b"x.o", false));
        assert!(set.is_excluded(b"secret", false));
        assert!(!set.is_protected(b"secret", false));
        assert!(set.is_excluded(b"core", false));
        let back: Vec<String> = set.rules().map(|r| r.to_string()).collect();
        assert_eq!(
            back,
            [
                "- *.o",
                "-s secret",
                ": /.rsync-filter",
                ":C .cvsignore",
                "-C "
            ]
        );
    }
}
