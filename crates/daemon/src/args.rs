//! The client's arguments after `@RSYNCD: OK`: reading them (bounded), the few facts the daemon
//! needs from them (direction, capabilities, requested paths) and `refuse options`.

use std::io::Read;

use crate::access::wildmatch;
use crate::io::{Reader, LONG_LINE};
use crate::options_table::{OptionDef, OPTIONS};

/// Most arguments a client may send (stock's MAX_DAEMON_ARGS).
pub const MAX_ARGS: usize = 16000;

/// Why the arguments could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// The connection ended before the empty terminating argument.
    #[error("connection closed while reading arguments")]
    Eof,
    /// More than [`MAX_ARGS`].
    #[error("too many daemon arguments")]
    TooMany,
    /// A read error or timeout.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One option as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOption {
    /// Index into the option table.
    pub index: usize,
    /// Its value, for options that take one.
    pub value: Option<String>,
}

impl ClientOption {
    /// The long name ("" for short-only options).
    pub fn long(&self) -> &'static str {
        OPTIONS[self.index].0
    }
    /// The short name.
    pub fn short(&self) -> Option<char> {
        OPTIONS[self.index].1.map(char::from)
    }
}

/// The client's request, as read from the socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientArgs {
    /// Every argument in order, without stock's leading "rsyncd" (the `.` and paths included).
    pub argv: Vec<String>,
    /// The options before `.`, parsed.
    pub options: Vec<ClientOption>,
    /// Arguments the option parser did not recognise (stock would refuse them).
    pub unknown: Vec<String>,
    /// `--sender`: the daemon sends files (a pull).
    pub sender: bool,
    /// The capability letters glued after `-e` (e.g. `.iLsfxCIvu`).
    pub capabilities: Option<String>,
    /// The paths after `.`, with the module name prefix removed as stock does.
    pub paths: Vec<String>,
    /// The paths as one string for the log (stock's "request", at most ~1 KiB).
    pub request: String,
}

impl ClientArgs {
    /// Whether an option (by long name, or short letter) was given.
    pub fn has(&self, long: &str) -> bool {
        self.options.iter().any(|o| o.long() == long)
    }
    /// Whether a short option letter was given.
    pub fn has_short(&self, c: char) -> bool {
        self.options.iter().any(|o| o.short() == Some(c))
    }
    /// Whether the client offered capability letter `c`.
    pub fn capability(&self, c: char) -> bool {
        self.capabilities.as_deref().is_some_and(|s| s.contains(c))
    }
}

/// Reads NUL-terminated arguments up to an empty one, as protocol ≥ 30 clients send them.
pub fn read_raw<R: Read>(reader: &mut Reader<R>) -> Result<Vec<String>, ArgsError> {
    let mut out = Vec::new();
    loop {
        let Some(arg) = reader.read_terminated(0, LONG_LINE)? else {
            return Err(ArgsError::Eof);
        };
        if arg.is_empty() {
            return Ok(out);
        }
        if out.len() >= MAX_ARGS - 2 {
            return Err(ArgsError::TooMany);
        }
        out.push(arg_text(&arg));
    }
}

/// First of the private-use characters that stand for raw bytes in [`arg_text`].
const BYTE_CHARS: u32 = 0xF700;

/// An argument's bytes as text without loss: a byte that is not part of valid UTF-8 (a name
/// in another charset) becomes the private-use character U+F700 + byte, which [`arg_bytes`]
/// turns back into the byte for the transfer.
pub fn arg_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for &b in chunk.invalid() {
            out.extend(char::from_u32(BYTE_CHARS + u32::from(b)));
        }
    }
    out
}

/// The bytes an argument read by [`read_raw`] came as (the inverse of [`arg_text`]).
pub fn arg_bytes(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match u32::from(c).checked_sub(BYTE_CHARS) {
            Some(b @ 0x80..=0xFF) => out.push(b as u8),
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

/// Undoes the backslash escaping a client applies to the options (the words before `.`) it
/// sends a daemon, as stock's `read_args` does; not for secluded arguments, which come raw.
pub fn unescape_options(raw: &mut [String]) {
    for a in raw.iter_mut() {
        if a == "." {
            break;
        }
        *a = unbackslash(a);
    }
}

fn unbackslash(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut chars = arg.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
                continue;
            }
        }
        out.push(c);
    }
    out
}

fn find_long(name: &str) -> Option<usize> {
    OPTIONS.iter().position(|o| !o.0.is_empty() && o.0 == name)
}

fn find_short(c: u8) -> Option<usize> {
    OPTIONS.iter().position(|o| o.1 == Some(c))
}

/// Interprets raw arguments for module `module`.
pub fn interpret(raw: Vec<String>, module: &str) -> ClientArgs {
    let mut args = ClientArgs::default();
    let mut i = 0;
    let mut dot = None;
    while i < raw.len() {
        let arg = &raw[i];
        if arg == "." {
            dot = Some(i);
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            match find_long(name) {
                Some(index) => {
                    let value = if OPTIONS[index].2 && value.is_none() {
                        i += 1;
                        raw.get(i).cloned()
                    } else {
                        value
                    };
                    if name == "sender" {
                        args.sender = true;
                    }
                    args.options.push(ClientOption { index, value });
                }
                None => args.unknown.push(arg.clone()),
            }
        } else if let Some(bundle) = arg.strip_prefix('-').filter(|b| !b.is_empty()) {
            let bytes = bundle.as_bytes();
            let mut j = 0;
            while j < bytes.len() {
                let Some(index) = find_short(bytes[j]) else {
                    args.unknown.push(format!("-{}", char::from(bytes[j])));
                    j += 1;
                    continue;
                };
                let takes = OPTIONS[index].2;
                let value = if takes {
                    let rest = &bundle[j + 1..];
                    j = bytes.len();
                    if rest.is_empty() {
                        i += 1;
                        raw.get(i).cloned()
                    } else {
                        Some(rest.to_string())
                    }
                } else {
                    j += 1;
                    None
                };
                if OPTIONS[index].1 == Some(b'e') {
                    // `-e.xyz` from a client to a server carries its capabilities.
                    args.capabilities = value.clone();
                }
                args.options.push(ClientOption { index, value });
            }
        } else {
            args.unknown.push(arg.clone());
        }
        i += 1;
    }
    if let Some(d) = dot {
        let mut request = String::new();
        for p in &raw[d + 1..] {
            if request.len() < 1024 {
                if !request.is_empty() {
                    request.push(' ');
                }
                request.push_str(p);
            }
            args.paths.extend(split_module_paths(p, module));
        }
        args.request = request;
    }
    args.argv = raw;
    args
}

/// Strips the leading module name from a path argument and splits a "mod/a mod/b" argument
/// into its parts, as stock does for old clients.
fn split_module_paths(arg: &str, module: &str) -> Vec<String> {
    if arg.is_empty() {
        return Vec::new();
    }
    let arg = arg.strip_prefix(module).unwrap_or(arg);
    let sep = format!(" {module}/");
    arg.split(sep.as_str())
        .enumerate()
        .map(|(k, s)| {
            if k == 0 {
                s.to_string()
            } else {
                format!("/{s}")
            }
        })
        .collect()
}

/// Options always accepted (refusable only by an exact `!`-less name? no: never by wildcard).
fn exact_only(def: &OptionDef) -> bool {
    matches!(def.1, Some(b'e') | Some(b'0') | Some(b's') | Some(b'n'))
        || matches!(
            def.0,
            "iconv"
                | "no-iconv"
                | "checksum-seed"
                | "copy-devices"
                | "write-devices"
                | "log-format"
                | "sender"
                | "server"
        )
}

/// Which options of the table a module refuses, per `refuse options` and the daemon's own
/// defaults (`copy-devices`, `write-devices`, `log-file*`, `insecure-links`, and `iconv` when
/// the module sets no `charset`).
pub fn refused_set(refuse_options: &str, has_charset: bool) -> Vec<bool> {
    let mut refused = vec![false; OPTIONS.len()];
    let mut apply = |negated: bool, pattern: &str| {
        let (pattern, wild) = if pattern == "a" || pattern == "archive" {
            ("[ardlptgoD]", true)
        } else {
            (pattern, pattern.contains(['*', '?', '[']))
        };
        for (k, def) in OPTIONS.iter().enumerate() {
            let short = def.1.map(|c| char::from(c).to_string()).unwrap_or_default();
            let hit = (!def.0.is_empty() && wildmatch(pattern, def.0))
                || (!short.is_empty() && wildmatch(pattern, &short));
            if !hit || (wild && exact_only(def)) {
                continue;
            }
            refused[k] = !negated;
            if !wild {
                // An exact rule names a capability: its other spellings go with it.
                let group = crate::options_table::ALIASES
                    .iter()
                    .find(|g| g.contains(&def.0))
                    .copied()
                    .unwrap_or_default();
                for (j, other) in OPTIONS.iter().enumerate() {
                    if j != k && group.contains(&other.0) {
                        refused[j] = !negated;
                    }
                }
                break;
            }
        }
    };
    apply(false, "copy-devices");
    apply(false, "write-devices");
    for tok in refuse_options.split(' ').filter(|t| !t.is_empty()) {
        let negated = tok.starts_with('!') && tok.len() > 1;
        apply(negated, if negated { &tok[1..] } else { tok });
    }
    if !has_charset {
        apply(false, "iconv");
    }
    apply(false, "log-file*");
    apply(false, "insecure-links");
    refused
}

/// The message for refused table row `k`: `The server is configured to refuse --NAME`, plus
/// ` (-c)` for an option with a short name.
fn refuse_message(k: usize) -> String {
    let def = &OPTIONS[k];
    let mut msg = format!("The server is configured to refuse --{}", def.0);
    if let Some(c) = def.1 {
        msg.push_str(&format!(" (-{})", char::from(c)));
    }
    msg
}

/// The first error stock's option parser gives for the client's options: a refused option,
/// an option that implies a refused one, or an invalid `--max-size`/`--min-size`.
///
/// As in stock, options are checked in the order sent (a refused option, `-a` while a part of
/// it is refused, `-P` while `--partial` or `--progress` is, a bad size); then the options'
/// combined effect: compression while `compress` is refused; no `--iconv` while `no-iconv` is;
/// a delete without a timing while both `delete-before` and `delete-during` are; any delete
/// (every `--delete-WHEN`, `--delete-excluded`, `--delete-missing-args`) while `delete` is,
/// and `--remove-source-files` from a sending daemon too; `--append` or `--write-devices`
/// while `inplace` is; in-place writing, or a `--partial-dir` of `.`, while `partial` is.
pub fn refusal(args: &ClientArgs, refused: &[bool]) -> Option<String> {
    let row = |name: &str| OPTIONS.iter().position(|o| o.0 == name);
    let is_refused = |name: &str| row(name).filter(|&k| refused[k]);
    // The last refused row among -a's parts names an `-a` refusal.
    let archive_part = (0..OPTIONS.len()).rev().find(|&k| {
        refused[k]
            && matches!(
                OPTIONS[k].1,
                Some(b'r' | b'd' | b'l' | b'p' | b't' | b'g' | b'o' | b'D')
            )
    });
    let partial = is_refused("partial");
    let progress = is_refused("progress");

    let mut compress = 0u32;
    let mut compress_choice: Option<String> = None;
    let mut compress_level = false;
    let mut iconv = false;
    let (mut delete_mode, mut delete_before, mut delete_during, mut delete_after) =
        (false, false, false, false);
    let mut delete_excluded = false;
    let mut missing_args = 0u8;
    let mut remove_source = false;
    let mut append = false;
    let mut inplace = false;
    let mut write_devices = false;
    let mut partial_dir: Option<String> = None;
    for opt in &args.options {
        if refused[opt.index] {
            return Some(refuse_message(opt.index));
        }
        let value = opt.value.as_deref();
        match (opt.long(), opt.short()) {
            ("archive", _) => {
                if let Some(k) = archive_part {
                    return Some(refuse_message(k));
                }
            }
            ("", Some('P')) => {
                if let Some(k) = partial.or(progress) {
                    return Some(refuse_message(k));
                }
            }
            (name @ ("max-size" | "min-size"), _) => {
                if let Some(e) = value.and_then(|v| size_error(name, v)) {
                    return Some(e);
                }
            }
            ("compress", _) => compress += 1,
            ("old-compress", _) => compress_choice = Some("zlib".into()),
            ("new-compress", _) => compress_choice = Some("zlibx".into()),
            ("no-compress", _) => {
                compress = 0;
                compress_choice = None;
            }
            ("compress-choice" | "zc", _) => compress_choice = value.map(str::to_string),
            ("compress-level" | "zl", _) => compress_level = true,
            ("iconv", _) => iconv = true,
            ("no-iconv", _) => iconv = false,
            ("delete", _) => delete_mode = true,
            ("delete-before", _) => delete_before = true,
            ("del" | "delete-during" | "delete-delay", _) => delete_during = true,
            ("delete-after", _) => delete_after = true,
            ("delete-excluded", _) => delete_excluded = true,
            ("delete-missing-args", _) => missing_args |= 2,
            ("ignore-missing-args", _) => missing_args |= 1,
            ("remove-source-files" | "remove-sent-files", _) => remove_source = true,
            ("append" | "append-verify", _) => append = true,
            ("no-append", _) => append = false,
            ("inplace", _) => inplace = true,
            ("no-inplace", _) => inplace = false,
            ("write-devices", _) => write_devices = true,
            ("no-write-devices", _) => write_devices = false,
            ("partial-dir", _) => partial_dir = value.map(str::to_string),
            ("delay-updates", _) => {
                partial_dir.get_or_insert_with(|| ".~tmp~".into());
            }
            _ => {}
        }
    }

    // Compression: a choice other than "auto"/"none", -z, or a level alone turn it on.
    let compressing = match compress_choice.as_deref() {
        Some(c) if c.eq_ignore_ascii_case("auto") => compress > 0,
        Some(c) => !c.eq_ignore_ascii_case("none"),
        None => compress > 0,
    } || compress_level;
    if compressing {
        if let Some(k) = is_refused("compress") {
            return Some(refuse_message(k));
        }
    }
    if !iconv {
        if let Some(k) = is_refused("no-iconv") {
            return Some(refuse_message(k));
        }
    }
    let timed = delete_before || delete_during || delete_after;
    if !timed && (delete_mode || delete_excluded) {
        if let (Some(k), Some(_)) = (is_refused("delete-before"), is_refused("delete-during")) {
            return Some(refuse_message(k));
        }
    }
    let deleting = timed || delete_mode || delete_excluded;
    if let Some(k) = is_refused("delete") {
        if deleting || missing_args & 2 != 0 || (remove_source && args.sender) {
            return Some(refuse_message(k));
        }
    }
    if append || write_devices {
        if let Some(k) = is_refused("inplace") {
            return Some(refuse_message(k));
        }
        inplace = true;
    }
    if inplace {
        if partial_dir.is_none() {
            if let Some(k) = partial {
                return Some(refuse_message(k));
            }
        }
    } else if let Some(dir) = partial_dir {
        if let Some(k) = partial.filter(|_| is_current_dir(&dir)) {
            return Some(refuse_message(k));
        }
    }
    None
}

/// Whether a `--partial-dir` value names no directory of its own (empty, `.`, `./.` …), which
/// stock treats as no partial directory at all.
fn is_current_dir(dir: &str) -> bool {
    dir.split('/').all(|c| c.is_empty() || c == ".")
}

/// Checks a `--max-size`/`--min-size` value the way stock's option parser does, giving its
/// message (`--NAME=VALUE is invalid` / `is too large`, cut to stock's 198-byte buffer) for
/// a value it rejects.
pub fn size_error(name: &str, value: &str) -> Option<String> {
    let size_max = i64::MAX;
    let b = value.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    let fail = |err: &str| {
        let mut msg = format!("--{name}={value} is {err}");
        if msg.len() > 198 {
            let mut cut = 198;
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg.truncate(cut);
        }
        Some(msg)
    };
    let suffix = match b.get(i) {
        Some(&c) if c != b'+' && c != b'-' => {
            i += 1;
            c
        }
        _ => b'b',
    };
    let reps = match suffix.to_ascii_lowercase() {
        b'b' => 0,
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return fail("invalid"),
    };
    let mult: i64 = match b.get(i) {
        Some(b'b' | b'B') => {
            i += 1;
            1000
        }
        None | Some(b'+' | b'-') => 1024,
        Some(_) if b[i..].len() >= 2 && b[i..i + 2].eq_ignore_ascii_case(b"ib") => {
            i += 2;
            1024
        }
        Some(_) => return fail("invalid"),
    };
    let mut size: i64 = 1;
    for _ in 0..reps {
        if size > size_max / mult {
            return fail("too large");
        }
        size *= mult;
    }
    // strtod of the leading number (a sign included).
    let num_end = value
        .char_indices()
        .find(|&(k, c)| !(c.is_ascii_digit() || c == '.' || (k == 0 && (c == '-' || c == '+'))))
        .map_or(value.len(), |(k, _)| k);
    let dsize: f64 = value[..num_end].parse().unwrap_or(0.0);
    let limit = size_max as f64 / size as f64;
    if !dsize.is_finite() || dsize < 0.0 || dsize >= limit {
        return fail("too large");
    }
    let mut total = (dsize * size as f64) as i64;
    if i > 0 && b.len() >= i + 2 && (b[i] == b'+' || b[i] == b'-') && b[i + 1] == b'1' {
        if b[i] == b'+' {
            if total == size_max {
                return fail("too large");
            }
            total += 1;
        } else {
            total -= 1;
        }
        i += 2;
    }
    if i < b.len() {
        return fail("invalid");
    }
    if total < 0 {
        return fail("too large");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn size_values_are_checked_like_stock() {
        for ok in ["0", "10", "1.5k", "10G", "1kb+1", "2MiB-1", "100b", "1P"] {
            assert_eq!(size_error("max-size", ok), None, "{ok}");
        }
        for (bad, err) in [
            ("1x", "invalid"),
            ("abc", "invalid"),
            ("+5", "invalid"),
            ("1k+2", "invalid"),
            ("-1", "too large"),
            ("9999999999999999999", "too large"),
            ("5000000000000000000000", "too large"),
            ("99999999P", "too large"),
        ] {
            assert_eq!(
                size_error("min-size", bad),
                Some(format!("--min-size={bad} is {err}")),
                "{bad}"
            );
        }
        let huge = "9".repeat(5000);
        let msg = size_error("max-size", &huge).unwrap();
        assert_eq!(msg.len(), 198);
        assert!(msg.starts_with("--max-size=999"));
    }

    #[test]
    fn exact_refusals_cover_every_spelling() {
        let find = |n: &str| OPTIONS.iter().position(|o| o.0 == n).unwrap();
        let r = refused_set("delete-during", false);
        assert!(r[find("del")] && r[find("delete-during")] && !r[find("delete")]);
        let r = refused_set("del", false);
        assert!(r[find("del")] && r[find("delete-during")]);
        let r = refused_set("protect-args", false);
        assert!(r[find("secluded-args")]);
        // A wildcard names spellings, not capabilities.
        let r = refused_set("delete-d*", false);
        assert!(!r[find("del")] && r[find("delete-during")]);
    }

    #[test]
    fn reads_nul_terminated_until_empty() {
        let mut r = Reader::new(&b"--server\0-logDtpre.iLsfxCIvu\0.\0mod/\0\0rest"[..]);
        let got = read_raw(&mut r).unwrap();
        assert_eq!(got, ["--server", "-logDtpre.iLsfxCIvu", ".", "mod/"]);
        let mut r = Reader::new(&b"--server\0"[..]);
        assert!(matches!(read_raw(&mut r), Err(ArgsError::Eof)));
    }

    #[test]
    fn interprets_a_push_and_a_pull() {
        let push = interpret(
            raw(&["--server", "-logDtpre.iLsfxCIvu", ".", "mod/"]),
            "mod",
        );
        assert!(!push.sender);
        assert_eq!(push.capabilities.as_deref(), Some(".iLsfxCIvu"));
        assert!(push.has_short('r') && push.has_short('t'));
        assert!(push.capability('v') && !push.capability('V'));
        assert_eq!(push.paths, ["/"]);
        assert_eq!(push.request, "mod/");
        assert!(push.unknown.is_empty());

        let pull = interpret(
            raw(&[
                "--server",
                "--sender",
                "-vlogDtpre.iLsfxCIvu",
                "--delete",
                "--log-format=%i",
                ".",
                "mod/a mod/b",
                "x",
            ]),
            "mod",
        );
        assert!(pull.sender);
        assert!(pull.has("delete") && pull.has("log-format"));
        assert_eq!(pull.paths, ["/a", "/b", "x"]);
        assert_eq!(pull.request, "mod/a mod/b x");
    }

    #[test]
    fn refuse_options_table() {
        let push = |extra: &[&str]| {
            let mut v = raw(&["--server", "-logDtprce.iLsfxCIvu"]);
            v.extend(raw(extra));
            v.extend(raw(&[".", "m/"]));
            interpret(v, "m")
        };
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("", &[], None),
            (
                "delete",
                &["--delete"],
                Some("The server is configured to refuse --delete"),
            ),
            (
                "delete",
                &["--delete-after"],
                Some("The server is configured to refuse --delete"),
            ),
            (
                "delete*",
                &["--delete-after"],
                Some("The server is configured to refuse --delete-after"),
            ),
            (
                "c",
                &[],
                Some("The server is configured to refuse --checksum (-c)"),
            ),
            (
                "checksum",
                &[],
                Some("The server is configured to refuse --checksum (-c)"),
            ),
            (
                "a",
                &[],
                Some("The server is configured to refuse --links (-l)"),
            ),
            ("* !c !l !o !g !D !t !p !r", &[], None),
            (
                "*",
                &[],
                Some("The server is configured to refuse --links (-l)"),
            ),
            (
                "",
                &["--log-file=/x"],
                Some("The server is configured to refuse --log-file"),
            ),
            (
                "",
                &["--copy-devices"],
                Some("The server is configured to refuse --copy-devices"),
            ),
            ("!copy-devices", &["--copy-devices"], None),
            (
                "",
                &["--iconv=utf8"],
                Some("The server is configured to refuse --iconv"),
            ),
        ];
        for (refuse, extra, want) in cases {
            let args = push(extra);
            let set = refused_set(refuse, false);
            assert_eq!(
                refusal(&args, &set).as_deref(),
                *want,
                "refuse={refuse:?} {extra:?}"
            );
        }
    }
}
