//! Ending a session with a fatal error after the arguments were read, the way stock does it:
//! the server finishes the protocol setup (compat flags, checksum/compression name lists, seed),
//! switches to multiplexed output, sends the messages and its exit code, and waits for the
//! client to acknowledge. Clients then print exactly what they print for a stock daemon.
//!
//! This covers refusals decided by the daemon (refused options, `read only`, `write only`); the
//! transfer engine has its own, complete implementation of the same setup.

use std::io::{self, Read, Write};
use std::time::Duration;

use crate::args::ClientArgs;

/// Multiplexed message tags used here.
const MSG_ERROR: u8 = 3;
const MSG_ERROR_EXIT: u8 = 86;
/// Our checksum and compression name lists, as stock 3.5.0 sends them.
pub const CHECKSUM_LIST: &str = "xxh128 xxh3 xxh64 md5 md4 sha1 none";
/// See [`CHECKSUM_LIST`].
pub const COMPRESS_LIST: &str = "zstd lz4 zlibx zlib none";

/// A fatal error to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fatal {
    /// Message lines (each ending in `\n`) sent as MSG_ERROR.
    pub messages: Vec<String>,
    /// The exit code (also sent as MSG_ERROR_EXIT).
    pub code: i32,
    /// Where stock's exit happens, e.g. `main.c(1185)`.
    pub location: &'static str,
    /// Whether the client's options were understood (stock parses the capability letters only
    /// then; a refused option stops parsing before them).
    pub options_parsed: bool,
    /// Pause before exiting (stock waits 400 ms after an option error).
    pub delay: Duration,
    /// Stock's option-error exit, when the daemon is the sender, closes the connection right
    /// after the messages (no exit line, no exit code); clients then report a socket error.
    pub abrupt_as_sender: bool,
}

/// rsync's text for an exit code.
pub fn exit_text(code: i32) -> &'static str {
    match code {
        0 => "success",
        1 => "syntax or usage error",
        2 => "protocol incompatibility",
        3 => "errors selecting input/output files, dirs",
        4 => "requested action not supported",
        5 => "error starting client-server protocol",
        10 => "error in socket IO",
        11 => "error in file IO",
        12 => "error in rsync protocol data stream",
        20 => "received SIGINT, SIGTERM, or SIGHUP",
        23 => "some files/attrs were not transferred (see previous errors)",
        24 => "some files vanished before they could be transferred",
        30 => "timeout in data send/receive",
        35 => "timeout waiting for daemon connection",
        _ => "unexplained error",
    }
}

impl Fatal {
    /// `ERROR: module is read only` (a push to a read-only module).
    pub fn read_only() -> Fatal {
        Fatal {
            messages: vec!["ERROR: module is read only\n".into()],
            code: 1,
            location: "main.c(1185)",
            options_parsed: true,
            delay: Duration::ZERO,
            abrupt_as_sender: false,
        }
    }

    /// `ERROR: module is write only` (a pull from a write-only module).
    pub fn write_only() -> Fatal {
        Fatal {
            messages: vec!["ERROR: module is write only\n".into()],
            code: 1,
            location: "main.c(951)",
            options_parsed: true,
            delay: Duration::ZERO,
            abrupt_as_sender: false,
        }
    }

    /// `--remove-source-files` (or `--remove-sent-files`) pulling from a read-only module.
    pub fn remove_from_read_only(word: &str) -> Fatal {
        Fatal {
            messages: vec![format!(
                "ERROR: --remove-{word}-files cannot be used with a read-only module\n"
            )],
            code: 1,
            location: "main.c(957)",
            options_parsed: true,
            delay: Duration::ZERO,
            abrupt_as_sender: false,
        }
    }

    /// A refused option; `message` from [`crate::args::refusal`].
    pub fn refused(message: &str) -> Fatal {
        Fatal {
            messages: vec![format!("rsync: {message}\n")],
            code: 4,
            location: "clientserver.c(1267)",
            options_parsed: false,
            delay: Duration::from_millis(400),
            abrupt_as_sender: true,
        }
    }
}

fn varint(out: &mut Vec<u8>, v: u32) {
    // rsync's varint: the count of extra bytes is encoded in the high bits of the first byte.
    let bytes = v.to_le_bytes();
    let mut cnt = 4;
    while cnt > 1 && bytes[cnt - 1] == 0 {
        cnt -= 1;
    }
    let bit = 1u8 << (7 - cnt + 1);
    if bytes[cnt - 1] >= bit {
        cnt += 1;
        out.push(!(bit - 1));
    } else if cnt > 1 {
        out.push(bytes[cnt - 1] | !(bit * 2 - 1));
    } else {
        out.push(bytes[0]);
        return;
    }
    out.extend_from_slice(&bytes[..cnt - 1]);
}

fn vstring(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len > 0x7f {
        out.push((len >> 8) as u8 | 0x80);
    }
    out.push(len as u8);
    out.extend_from_slice(s.as_bytes());
}

fn read_vstring(input: &mut dyn Read) -> io::Result<()> {
    let mut b = [0u8; 1];
    input.read_exact(&mut b)?;
    let mut len = usize::from(b[0]);
    if len & 0x80 != 0 {
        input.read_exact(&mut b)?;
        len = (len & 0x7f) << 8 | usize::from(b[0]);
    }
    let mut buf = vec![0; len.min(1024)];
    input.read_exact(&mut buf)
}

fn frame(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    let header = ((u32::from(tag) + 7) << 24) | payload.len() as u32;
    out.extend_from_slice(&header.to_le_bytes());
    out.extend_from_slice(payload);
}

/// The compat flags a server sends a client with these arguments.
pub fn compat_flags(args: &ClientArgs, options_parsed: bool) -> u32 {
    let mut flags = 0x02 | 0x04; // symlink times, symlink iconv
    if !options_parsed {
        return flags;
    }
    let recursive = args.has_short('r');
    let blocks_inc = !args.sender
        && (args.has("delete-before")
            || args.has("delete-after")
            || args.has("delay-updates")
            || args.has_short('m'));
    if args.capability('i') && recursive && !blocks_inc && !args.has("qsort") {
        flags |= 0x01;
    }
    for (c, bit) in [
        ('f', 0x08),
        ('x', 0x10),
        ('C', 0x20),
        ('I', 0x40),
        ('v', 0x80),
        ('u', 0x100),
    ] {
        if args.capability(c) {
            flags |= bit;
        }
    }
    flags
}

/// Delivers `fatal` to the client and waits (bounded) for its acknowledgement.
pub fn send_fatal(
    input: &mut dyn Read,
    output: &mut dyn Write,
    args: &ClientArgs,
    protocol: u32,
    fatal: &Fatal,
) -> io::Result<()> {
    let mut out = Vec::new();
    let flags = compat_flags(args, fatal.options_parsed);
    varint(&mut out, flags);
    let negotiate = fatal.options_parsed && args.capability('v');
    let compressing = (args.has_short('z')
        || args.has("compress")
        || args.has("new-compress")
        || args.has("old-compress"))
        && !args.has("compress-choice")
        && !args.has("zc");
    let send_sums = negotiate && !args.has("checksum-choice") && !args.has("cc");
    let send_zips = negotiate && compressing;
    if send_sums {
        vstring(&mut out, CHECKSUM_LIST);
    }
    if send_zips {
        vstring(&mut out, COMPRESS_LIST);
    }
    output.write_all(&out)?;
    output.flush()?;
    out.clear();
    if send_sums {
        read_vstring(input)?;
    }
    if send_zips {
        read_vstring(input)?;
    }
    let seed = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0))
        ^ (std::process::id() << 6);
    out.extend_from_slice(&seed.to_le_bytes());
    for m in &fatal.messages {
        frame(&mut out, MSG_ERROR, m.as_bytes());
    }
    output.write_all(&out)?;
    output.flush()?;
    out.clear();
    std::thread::sleep(fatal.delay);
    if fatal.abrupt_as_sender && args.sender {
        return Ok(());
    }
    let who = if args.sender { "sender" } else { "Receiver" };
    let exit = format!(
        "rsync error: {} (code {}) at {} [{who}=3.5.0]\n",
        exit_text(fatal.code),
        fatal.code,
        fatal.location
    );
    frame(&mut out, MSG_ERROR, exit.as_bytes());
    if protocol >= 31 {
        frame(&mut out, MSG_ERROR_EXIT, &fatal.code.to_le_bytes());
    }
    output.write_all(&out)?;
    output.flush()?;
    // A stock sender waits for the client's acknowledgement; a stock receiver does not, so the
    // client's late bytes meet a closed socket and it reports the reset. Clients print what
    // they saw either way, so do the same.
    if args.sender {
        drain_until_exit_ack(input);
    }
    std::thread::sleep(Duration::from_millis(100));
    Ok(())
}

/// Reads multiplexed frames until the client's MSG_ERROR_EXIT, EOF or an error (the caller has
/// a read timeout on the socket), discarding them.
fn drain_until_exit_ack(input: &mut dyn Read) {
    let mut header = [0u8; 4];
    let mut sink = vec![0u8; 64 * 1024];
    let mut budget: usize = 256 << 20;
    while input.read_exact(&mut header).is_ok() {
        let h = u32::from_le_bytes(header);
        let tag = (h >> 24) as u8;
        let len = (h & 0xff_ffff) as usize;
        if len > budget {
            return;
        }
        budget -= len;
        let mut left = len;
        while left > 0 {
            let n = left.min(sink.len());
            if input.read_exact(&mut sink[..n]).is_err() {
                return;
            }
            left -= n;
        }
        if tag == MSG_ERROR_EXIT + 7 || tag < 7 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_rsync() {
        let cases: &[(u32, &[u8])] = &[
            (0, &[0]),
            (0x06, &[0x06]),
            (0x7f, &[0x7f]),
            (0x80, &[0x80, 0x80]),
            (0x1fe, &[0x81, 0xfe]),
            (0x1ff, &[0x81, 0xff]),
            (0x3fff, &[0xbf, 0xff]),
            (0x4000, &[0xc0, 0x00, 0x40]),
        ];
        for (v, want) in cases {
            let mut out = Vec::new();
            varint(&mut out, *v);
            assert_eq!(out, *want, "{v:#x}");
        }
    }

    #[test]
    fn compat_flags_follow_capabilities() {
        let push = crate::args::interpret(
            ["--server", "-logDtpre.iLsfxCIvu", ".", "m/"]
                .map(String::from)
                .to_vec(),
            "m",
        );
        assert_eq!(compat_flags(&push, true), 0x1ff);
        assert_eq!(compat_flags(&push, false), 0x06);
    }

    #[test]
    fn fatal_stream_layout() {
        let args = crate::args::interpret(
            ["--server", "-logDtpre.iLsfxCIvu", ".", "m/"]
                .map(String::from)
                .to_vec(),
            "m",
        );
        // The client's checksum list, then its exit acknowledgement.
        let mut input: Vec<u8> = vec![3];
        input.extend_from_slice(b"md5");
        input.extend_from_slice(&[0, 0, 0, 0x5d]);
        let mut out = Vec::new();
        send_fatal(&mut &input[..], &mut out, &args, 31, &Fatal::read_only()).unwrap();
        assert_eq!(&out[..3], &[0x81, 0xff, 35]);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("ERROR: module is read only\n"));
        assert!(text.contains(
            "rsync error: syntax or usage error (code 1) at main.c(1185) [Receiver=3.5.0]\n"
        ));
        assert!(out.ends_with(&[4, 0, 0, 0x5d, 1, 0, 0, 0]));
    }
}
