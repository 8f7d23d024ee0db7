//! rsync's multiplexed stream: 4-byte little-endian headers `((7 + tag) << 24) | len`.
//!
//! [`MuxReader`] yields the MSG_DATA payload as a plain byte stream and hands every
//! out-of-band message (INFO, ERROR, IO_ERROR, DELETED, ...) to a [`MessageHandler`].
//! [`MuxWriter`] coalesces data into frames and writes to the socket only on flush (or when
//! its buffer fills), which avoids the Nagle/delayed-ACK stall described in DESIGN.md.

use std::io::{self, Read, Write};

use crate::error::{Error, Result};

/// Message tags of the multiplexed stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgTag {
    Data = 0,
    ErrorXfer = 1,
    Info = 2,
    Error = 3,
    Warning = 4,
    ErrorSocket = 5,
    Log = 6,
    Client = 7,
    ErrorUtf8 = 8,
    Redo = 9,
    Stats = 10,
    IoError = 22,
    IoTimeout = 33,
    Noop = 42,
    ErrorExit = 86,
    Success = 100,
    Deleted = 101,
    NoSend = 102,
}

impl MsgTag {
    /// The tag for a wire number, if it is one rsync defines.
    pub fn from_u8(n: u8) -> Option<MsgTag> {
        use MsgTag::*;
        Some(match n {
            0 => Data,
            1 => ErrorXfer,
            2 => Info,
            3 => Error,
            4 => Warning,
            5 => ErrorSocket,
            6 => Log,
            7 => Client,
            8 => ErrorUtf8,
            9 => Redo,
            10 => Stats,
            22 => IoError,
            33 => IoTimeout,
            42 => Noop,
            86 => ErrorExit,
            100 => Success,
            101 => Deleted,
            102 => NoSend,
            _ => return None,
        })
    }
}

/// The offset rsync adds to a tag in the header's top byte.
const MPLEX_BASE: u32 = 7;
/// Largest payload a header can describe.
pub const MAX_FRAME: usize = 0x00FF_FFFF;
/// Largest out-of-band message we accept (stock uses a few KiB line buffers).
pub const MAX_OOB_MESSAGE: usize = 64 * 1024;
/// Data is sent in frames of at most this many bytes.
const DATA_FRAME: usize = 32 * 1024;

/// Encodes a frame header.
pub fn frame_header(tag: MsgTag, len: usize) -> [u8; 4] {
    debug_assert!(len <= MAX_FRAME);
    (((MPLEX_BASE + tag as u32) << 24) | len as u32).to_le_bytes()
}

/// What the reader saw out of band, for the roles to act upon.
#[derive(Debug, Default, Clone)]
pub struct OobState {
    /// OR of every MSG_IO_ERROR value (the sender's io_error flags).
    pub io_error: i32,
    /// True once an error-level message (ERROR, ERROR_XFER, ERROR_SOCKET) arrived.
    pub saw_error: bool,
    /// True once a MSG_ERROR_XFER arrived: the peer could not transfer something (stock's
    /// `got_xfer_error`, which makes the exit code 23).
    pub xfer_error: bool,
    /// Names reported as deleted by the receiving side (MSG_DELETED).
    pub deleted: Vec<Vec<u8>>,
    /// Indices the sender could not open (MSG_NO_SEND).
    pub no_send: Vec<i32>,
    /// Indices reported as successfully updated (MSG_SUCCESS).
    pub success: Vec<i32>,
    /// Indices the peer asks to redo (MSG_REDO).
    pub redo: Vec<i32>,
    /// Raw payload of the last MSG_STATS.
    pub stats: Option<Vec<u8>>,
    /// The daemon's `--timeout` (MSG_IO_TIMEOUT).
    pub io_timeout: Option<i32>,
}

/// Receives out-of-band message text (INFO/ERROR/WARNING/LOG lines).
pub trait MessageHandler: Send {
    /// Called with the tag and the raw text (which normally ends in `\n`).
    fn message(&mut self, tag: MsgTag, text: &[u8]);
}

/// Prints messages as the stock client does: INFO/CLIENT to stdout, errors and warnings to
/// stderr, LOG dropped.
#[derive(Debug, Default)]
pub struct PrintMessages;

/// `-8` on a client: messages it prints keep their 8-bit bytes (see [`client_text`]).
static EIGHT_BIT_OUTPUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets how a client prints messages: `-8` leaves 8-bit bytes as they are.
pub fn set_eight_bit_output(on: bool) {
    EIGHT_BIT_OUTPUT.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// `--iconv` on a client: messages from the peer come in UTF-8 and are printed in the local
/// charset (stock's rwrite with is_utf8).
static MESSAGE_ICONV: std::sync::Mutex<Option<crate::iconv::Iconv>> = std::sync::Mutex::new(None);

/// Sets the conversion of the peer's messages (see [`MESSAGE_ICONV`]).
pub fn set_message_iconv(ic: Option<crate::iconv::Iconv>) {
    *MESSAGE_ICONV.lock().unwrap_or_else(|p| p.into_inner()) = ic;
}

/// A peer's message text in the local charset.
fn from_peer(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match &*MESSAGE_ICONV.lock().unwrap_or_else(|p| p.into_inner()) {
        Some(ic) => std::borrow::Cow::Owned(ic.message_from_wire(text)),
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// Whether a message's payload is text (converted under `--iconv`).
fn is_text(tag: MsgTag) -> bool {
    use MsgTag::*;
    matches!(
        tag,
        ErrorXfer | Info | Error | Warning | ErrorSocket | Log | Client | Deleted
    )
}

impl MessageHandler for PrintMessages {
    fn message(&mut self, tag: MsgTag, text: &[u8]) {
        let text = if is_text(tag) || tag == MsgTag::ErrorUtf8 {
            from_peer(text)
        } else {
            std::borrow::Cow::Borrowed(text)
        };
        let text = client_text(
            &text,
            EIGHT_BIT_OUTPUT.load(std::sync::atomic::Ordering::Relaxed),
        );
        match tag {
            MsgTag::Info | MsgTag::Client => {
                rtsync_engine::report::end_open_list_line(false);
                let mut out = io::stdout().lock();
                let _ = out.write_all(&text);
                let _ = out.flush();
            }
            MsgTag::Log | MsgTag::Deleted => {}
            _ => {
                rtsync_engine::report::end_open_list_line(true);
                let _ = io::stderr().lock().write_all(&text);
            }
        }
    }
}

/// A client's handler: like [`PrintMessages`], and also prints the receiver's deletions
/// (MSG_DELETED) as stock's `log_delete` does.
#[derive(Debug, Default)]
pub struct ClientMessages {
    pub deletions: rtsync_engine::report::DeletionLines,
}

impl MessageHandler for ClientMessages {
    fn message(&mut self, tag: MsgTag, text: &[u8]) {
        if tag != MsgTag::Deleted {
            return PrintMessages.message(tag, text);
        }
        let text = from_peer(text);
        // Directories arrive with their trailing NUL.
        let (name, mode) = match text.split_last() {
            Some((0, rest)) => ([rest, b"/"].concat(), libc::S_IFDIR),
            _ => (text.to_vec(), libc::S_IFREG),
        };
        if let Some(line) = self.deletions.line(&name, mode) {
            let mut out = io::stdout().lock();
            let _ = out.write_all(&line);
            let _ = out.flush();
        }
    }
}

/// Collects messages in memory (tests, library users that log elsewhere).
#[derive(Debug, Default)]
pub struct CollectMessages {
    pub messages: Vec<(MsgTag, Vec<u8>)>,
}

impl MessageHandler for CollectMessages {
    fn message(&mut self, tag: MsgTag, text: &[u8]) {
        self.messages.push((tag, text.to_vec()));
    }
}

/// Demultiplexes a stream: `Read` yields MSG_DATA bytes only.
pub struct MuxReader<R> {
    inner: R,
    /// Whether frames are expected yet (before multiplexing starts the stream is raw).
    muxed: bool,
    /// Bytes left in the current MSG_DATA frame.
    remaining: usize,
    /// What arrived out of band.
    pub oob: OobState,
    handler: Box<dyn MessageHandler>,
    /// `--write-batch`: every data byte read is recorded here too.
    tee: Option<crate::batch::Recorder>,
    /// Data bytes read so far (stock's `total_data_read`, behind `%b` of a receiver).
    pub data_read: u64,
}

impl<R: Read> MuxReader<R> {
    pub fn new(inner: R, handler: Box<dyn MessageHandler>) -> MuxReader<R> {
        MuxReader {
            inner,
            muxed: false,
            remaining: 0,
            oob: OobState::default(),
            handler,
            tee: None,
            data_read: 0,
        }
    }

    /// Records every data byte read from now on (`--write-batch` on the receiving side).
    pub fn set_tee(&mut self, tee: Option<crate::batch::Recorder>) {
        self.tee = tee;
    }

    /// Starts expecting multiplexed frames.
    pub fn start_mux(&mut self) {
        self.muxed = true;
    }

    pub fn is_muxed(&self) -> bool {
        self.muxed
    }

    /// Reads unframed from here on (`false`) or framed again (`true`): protocols before 31
    /// forward `--files-from` names outside the frames. Switching off is only allowed
    /// between frames, as stock's io_end_multiplex_in asserts.
    pub fn set_muxed(&mut self, on: bool) -> Result<()> {
        if !on && self.remaining > 0 {
            return Err(Error::Stream(
                "unframed data inside a multiplexed frame".into(),
            ));
        }
        self.muxed = on;
        Ok(())
    }

    /// The underlying stream (e.g. to read raw greeting lines before multiplexing).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Reads frame headers until a MSG_DATA frame with a non-empty payload starts. Returns
    /// `Ok(false)` on a clean EOF at a frame boundary.
    fn next_data_frame(&mut self) -> Result<bool> {
        loop {
            match self.next_frame()? {
                None => return Ok(false),
                Some(true) => return Ok(true),
                Some(false) => {}
            }
        }
    }

    /// Whether data can be read without waiting on the peer, `pending` telling whether
    /// the underlying stream holds unread bytes. Messages already here are handled first:
    /// bytes that are only messages are no data, and a caller that took them for data
    /// would hold its own output while the peer waits for it.
    pub fn data_pending(&mut self, pending: impl Fn(&mut R) -> bool) -> Result<bool> {
        if !self.muxed {
            return Ok(pending(&mut self.inner));
        }
        while self.remaining == 0 && pending(&mut self.inner) {
            // (The peer writes whole frames: the rest of a frame begun here is on its way.)
            if self.next_frame()?.is_none() {
                return Ok(false);
            }
        }
        Ok(self.remaining > 0 && pending(&mut self.inner))
    }

    /// Waits until data can be read (or the stream ends: the read that follows reports
    /// it); `Ok(false)` when a MSG_NO_SEND came first. A receiver must hear of a file the
    /// sender cannot send while it waits: the sender sends nothing more until the
    /// generator, which waits for that file, moves on.
    pub fn await_data(&mut self) -> Result<bool> {
        if !self.muxed || self.remaining > 0 {
            return Ok(true);
        }
        loop {
            match self.next_frame()? {
                None | Some(true) => return Ok(true),
                Some(false) if !self.oob.no_send.is_empty() => return Ok(false),
                Some(false) => {}
            }
        }
    }

    /// Reads one frame header (and a message's body): `Some(true)` when a MSG_DATA frame
    /// with a payload starts, `Some(false)` after a message or an empty data frame, `None`
    /// on a clean EOF at a frame boundary.
    fn next_frame(&mut self) -> Result<Option<bool>> {
        let mut h = [0u8; 4];
        match read_exact_or_eof(&mut self.inner, &mut h)? {
            0 => return Ok(None),
            4 => {}
            _ => {
                return Err(Error::UnexpectedEof {
                    context: "truncated frame header",
                })
            }
        }
        let word = u32::from_le_bytes(h);
        let len = (word & 0x00FF_FFFF) as usize;
        let raw_tag = (word >> 24) as u8;
        if u32::from(raw_tag) < MPLEX_BASE {
            return Err(Error::Stream(format!(
                "unexpected tag {} (stream not multiplexed?)",
                i32::from(raw_tag) - MPLEX_BASE as i32
            )));
        }
        let tag_num = raw_tag - MPLEX_BASE as u8;
        let tag = MsgTag::from_u8(tag_num)
            .ok_or_else(|| Error::Stream(format!("unexpected tag {tag_num}")))?;
        if tag == MsgTag::Data {
            if len == 0 {
                return Ok(Some(false));
            }
            self.remaining = len;
            return Ok(Some(true));
        }
        if len > MAX_OOB_MESSAGE {
            return Err(Error::Stream(format!(
                "multiplexing overflow {tag_num}:{len}"
            )));
        }
        let mut payload = vec![0u8; len];
        self.inner.read_exact(&mut payload).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                Error::UnexpectedEof {
                    context: "truncated message frame",
                }
            } else {
                Error::io("reading message", e)
            }
        })?;
        self.handle_oob(tag, payload)?;
        Ok(Some(false))
    }

    fn handle_oob(&mut self, tag: MsgTag, payload: Vec<u8>) -> Result<()> {
        let int_payload = |p: &[u8], what: &str| -> Result<i32> {
            <[u8; 4]>::try_from(p)
                .map(i32::from_le_bytes)
                .map_err(|_| Error::Stream(format!("bad {what} message length {}", p.len())))
        };
        match tag {
            MsgTag::Data => unreachable!("handled by caller"),
            MsgTag::Info | MsgTag::Client | MsgTag::Log => self.handler.message(tag, &payload),
            MsgTag::Error | MsgTag::ErrorXfer | MsgTag::ErrorSocket | MsgTag::ErrorUtf8 => {
                self.oob.saw_error = true;
                self.oob.xfer_error |= tag == MsgTag::ErrorXfer;
                self.handler.message(tag, &payload);
            }
            MsgTag::Warning => self.handler.message(tag, &payload),
            MsgTag::IoError => self.oob.io_error |= int_payload(&payload, "IO_ERROR")?,
            MsgTag::IoTimeout => self.oob.io_timeout = Some(int_payload(&payload, "IO_TIMEOUT")?),
            MsgTag::Noop => {}
            MsgTag::Redo => self.oob.redo.push(int_payload(&payload, "REDO")?),
            MsgTag::Success => self.oob.success.push(int_payload(&payload, "SUCCESS")?),
            MsgTag::NoSend => self.oob.no_send.push(int_payload(&payload, "NO_SEND")?),
            MsgTag::Deleted => {
                self.handler.message(tag, &payload);
                let mut name = payload;
                if name.last() == Some(&0) {
                    name.pop();
                }
                self.oob.deleted.push(name);
            }
            MsgTag::Stats => self.oob.stats = Some(payload),
            MsgTag::ErrorExit => {
                let code = if payload.is_empty() {
                    crate::error::exit::PARTIAL
                } else {
                    int_payload(&payload, "ERROR_EXIT")?
                };
                return Err(Error::RemoteExit(code));
            }
        }
        Ok(())
    }
}

/// Reads until `buf` is full or EOF; returns how many bytes were read.
fn read_exact_or_eof<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("reading from peer", e)),
        }
    }
    Ok(got)
}

impl<R: Read> Read for MuxReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.muxed {
            let got = self.inner.read(buf)?;
            self.data_read += got as u64;
            if let Some(t) = &self.tee {
                t.record(&buf[..got]);
            }
            return Ok(got);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 && !self.next_data_frame().map_err(into_io)? {
            return Ok(0);
        }
        let n = buf.len().min(self.remaining);
        let got = self.inner.read(&mut buf[..n])?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated data frame",
            ));
        }
        self.remaining -= got;
        self.data_read += got as u64;
        if let Some(t) = &self.tee {
            t.record(&buf[..got]);
        }
        Ok(got)
    }
}

/// Carries a typed [`Error`] through `io::Read` so that it can be recovered later.
fn into_io(e: Error) -> io::Error {
    io::Error::other(WireIoError(e))
}

/// Wrapper that lets a wire [`Error`] travel inside an `io::Error`.
#[derive(Debug)]
pub(crate) struct WireIoError(pub Error);

impl std::fmt::Display for WireIoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for WireIoError {}

/// Unwraps an `io::Error` produced by [`MuxReader`] back into the typed error it carries.
pub(crate) fn from_io(e: io::Error, context: &str) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<WireIoError>()) {
        let inner = e.into_inner().expect("checked above");
        return inner
            .downcast::<WireIoError>()
            .map(|w| w.0)
            .unwrap_or_else(|other| Error::Stream(other.to_string()));
    }
    Error::io(context.to_string(), e)
}

/// Multiplexing writer: data is framed as MSG_DATA, messages are interleaved in order.
pub struct MuxWriter<W: Write> {
    inner: W,
    muxed: bool,
    /// Pending MSG_DATA payload not yet framed.
    data: Vec<u8>,
    /// Framed bytes ready for the socket.
    out: Vec<u8>,
    /// `--write-batch`: every data byte written is recorded here too.
    tee: Option<crate::batch::Recorder>,
    /// `--only-write-batch`: file data (sum heads, tokens, checksums) goes to the batch only.
    batch_only: bool,
    /// Inside a file's data while `batch_only`: writes skip the peer.
    tee_only: bool,
    /// `--iconv` on a server: text messages go to the client in UTF-8.
    iconv: Option<crate::iconv::Iconv>,
    /// `--bwlimit`: what goes to the peer is held to the rate.
    bw: Option<rtsync_engine::bwlimit::BwLimit>,
    /// A remote-shell server's messages that go to its own stderr instead of the wire
    /// (see [`MuxWriter::set_messages_to_stderr`]).
    to_stderr: Option<StderrMessages>,
    /// A daemon's sending side: its messages to the client are logged too (see
    /// [`MuxWriter::set_message_log`]).
    message_log: Option<rtsync_engine::report::LogFn>,
}

/// Which messages a remote-shell server writes to its stderr, as stock's `--stderr` modes
/// have it, and whether `-8` leaves 8-bit bytes unescaped there.
#[derive(Debug, Clone, Copy)]
struct StderrMessages {
    all: bool,
    eight_bit: bool,
}

/// A message as stock's remote-shell server writes it to stderr (its filtered_fwrite, in
/// the C locale): control characters (not tab) and, without `-8`, every byte that is not
/// printable ASCII become `\\#ooo`, as does the backslash of a literal `\\#ddd`; a leading
/// `\\r` and the trailing newline stay as they are.
pub fn stderr_text(msg: &[u8], eight_bit: bool) -> Vec<u8> {
    rtsync_engine::report::filtered_text(msg, !eight_bit, false)
}

/// A message as stock's client prints it (its own, or one from the peer): control
/// characters (not tab) and a literal `\\#ddd`'s backslash escaped; without `-8` the bytes
/// that are not UTF-8 too (its charset check), where valid UTF-8 passes.
pub fn client_text(msg: &[u8], eight_bit: bool) -> Vec<u8> {
    rtsync_engine::report::filtered_text(msg, false, !eight_bit)
}

impl<W: Write> MuxWriter<W> {
    pub fn new(inner: W) -> MuxWriter<W> {
        MuxWriter {
            inner,
            muxed: false,
            data: Vec::with_capacity(DATA_FRAME),
            out: Vec::with_capacity(2 * DATA_FRAME),
            tee: None,
            batch_only: false,
            tee_only: false,
            iconv: None,
            bw: None,
            to_stderr: None,
            message_log: None,
        }
    }

    /// Also logs every text message (errors, warnings, information) to `log`, a line at a
    /// time, as a stock daemon's `rwrite` logs whatever it tells its client.
    pub fn set_message_log(&mut self, log: Option<rtsync_engine::report::LogFn>) {
        self.message_log = log;
    }

    /// `--bwlimit` (bytes per second, rounded to KiB as stock does): from now on the peer
    /// is sent at most that many bytes a second on average.
    /// A remote-shell server (stock's default `--stderr=errors`): errors and warnings go to
    /// our stderr, which the remote shell joins to the client's, escaped as stock's are;
    /// with `all` (`--msgs2stderr`) informational messages too.
    pub fn set_messages_to_stderr(&mut self, all: bool, eight_bit: bool) {
        self.to_stderr = Some(StderrMessages { all, eight_bit });
    }

    /// `--iconv` on a server: text messages are converted to UTF-8 for the client.
    pub fn set_iconv(&mut self, ic: Option<crate::iconv::Iconv>) {
        self.iconv = ic;
    }

    pub fn set_bwlimit(&mut self, bytes_per_sec: Option<u64>) {
        self.bw = rtsync_engine::bwlimit::BwLimit::new(bytes_per_sec);
    }

    /// Writes the framed bytes out (in rate-sized pieces under `--bwlimit`).
    fn drain(&mut self) -> io::Result<()> {
        match &mut self.bw {
            None => self.inner.write_all(&self.out)?,
            Some(bw) => {
                for piece in self.out.chunks(bw.write_max()) {
                    self.inner.write_all(piece)?;
                    // The pause must not hold back what was written: it goes out first.
                    self.inner.flush()?;
                    bw.spend(piece.len() as u64);
                }
            }
        }
        self.out.clear();
        Ok(())
    }

    /// Records every data byte written from now on (`--write-batch` on the sending side).
    pub fn set_tee(&mut self, tee: Option<crate::batch::Recorder>) {
        self.tee = tee;
    }

    /// The batch recorder, if any.
    pub fn tee(&self) -> Option<&crate::batch::Recorder> {
        self.tee.as_ref()
    }

    /// `--only-write-batch`: file data is recorded but not sent (see [`MuxWriter::file_data`]).
    pub fn set_batch_only(&mut self, on: bool) {
        self.batch_only = on;
    }

    /// The sender marks where a file's data starts (`true`) and ends (`false`); with
    /// `--only-write-batch` those bytes go to the batch file alone, as stock's sender does.
    pub fn file_data(&mut self, on: bool) {
        self.tee_only = on && self.batch_only && self.tee.is_some();
    }

    /// Starts framing everything written from now on.
    pub fn start_mux(&mut self) -> io::Result<()> {
        self.frame_data();
        self.muxed = true;
        Ok(())
    }

    pub fn is_muxed(&self) -> bool {
        self.muxed
    }

    /// Moves pending data into `out`, framed if multiplexing.
    fn frame_data(&mut self) {
        if self.data.is_empty() {
            return;
        }
        if self.muxed {
            for chunk in self.data.chunks(DATA_FRAME) {
                self.out
                    .extend_from_slice(&frame_header(MsgTag::Data, chunk.len()));
                self.out.extend_from_slice(chunk);
            }
        } else {
            self.out.extend_from_slice(&self.data);
        }
        self.data.clear();
    }

    /// Sends `bytes` unframed after everything written so far (framed first); framing goes
    /// on for what follows. Protocols before 31 forward `--files-from` names this way, as
    /// stock's start_filesfrom_forwarding does.
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.frame_data();
        self.out.extend_from_slice(bytes);
        self.drain()?;
        self.inner.flush()
    }

    /// Frames the data written so far without sending it: messages queued later, even
    /// [`MuxWriter::send_msg_ahead`] ones, go after it.
    pub fn settle(&mut self) {
        self.frame_data();
    }

    /// Queues an out-of-band message after everything written so far.
    pub fn send_msg(&mut self, tag: MsgTag, payload: &[u8]) -> io::Result<()> {
        self.frame_data();
        self.queue_msg(tag, payload)
    }

    /// Queues an out-of-band message ahead of the data written but not yet framed, as
    /// stock's I/O does (its message buffer goes out before the data buffer it holds): a
    /// receiving server's deletions and notes reach its client before the requests it
    /// made just before them, and the client prints them first, as stock's does.
    pub fn send_msg_ahead(&mut self, tag: MsgTag, payload: &[u8]) -> io::Result<()> {
        self.queue_msg(tag, payload)
    }

    fn queue_msg(&mut self, tag: MsgTag, payload: &[u8]) -> io::Result<()> {
        if !self.muxed {
            return Err(io::Error::other("message on a non-multiplexed stream"));
        }
        if let Some(log) = &self.message_log {
            if matches!(
                tag,
                MsgTag::Error | MsgTag::ErrorXfer | MsgTag::Warning | MsgTag::Info
            ) {
                for line in String::from_utf8_lossy(payload).lines() {
                    log(line);
                }
            }
        }
        if let Some(m) = self.to_stderr {
            let error = matches!(tag, MsgTag::Error | MsgTag::ErrorXfer | MsgTag::Warning);
            if error || (m.all && tag == MsgTag::Info) {
                let mut err = io::stderr().lock();
                let _ = err.write_all(&stderr_text(payload, m.eight_bit));
                let _ = err.flush();
                return Ok(());
            }
        }
        let payload = &rtsync_engine::report::raw_bytes(payload)[..];
        let converted;
        let payload = match &self.iconv {
            Some(ic) if is_text(tag) => {
                converted = ic.message_to_wire(payload);
                &converted[..]
            }
            _ => payload,
        };
        for chunk in payload.chunks(DATA_FRAME.max(1)) {
            self.out.extend_from_slice(&frame_header(tag, chunk.len()));
            self.out.extend_from_slice(chunk);
        }
        if payload.is_empty() {
            self.out.extend_from_slice(&frame_header(tag, 0));
        }
        self.maybe_drain()
    }

    /// Queues a message whose payload is one int32.
    pub fn send_msg_int(&mut self, tag: MsgTag, v: i32) -> io::Result<()> {
        self.send_msg(tag, &v.to_le_bytes())
    }

    fn maybe_drain(&mut self) -> io::Result<()> {
        if self.out.len() >= 4 * DATA_FRAME {
            self.drain()?;
        }
        Ok(())
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: Write> Write for MuxWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(t) = &self.tee {
            t.record(buf);
            if self.tee_only {
                return Ok(buf.len());
            }
        }
        self.data.extend_from_slice(buf);
        if self.data.len() >= DATA_FRAME {
            self.frame_data();
            self.maybe_drain()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.frame_data();
        if !self.out.is_empty() {
            self.drain()?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::varint::ReadWire;

    fn reader(bytes: Vec<u8>) -> MuxReader<io::Cursor<Vec<u8>>> {
        let mut r = MuxReader::new(io::Cursor::new(bytes), Box::new(CollectMessages::default()));
        r.start_mux();
        r
    }

    #[test]
    fn header_encoding_table() {
        let cases: &[(MsgTag, usize, [u8; 4])] = &[
            (MsgTag::Data, 0, [0, 0, 0, 7]),
            (MsgTag::Data, 5, [5, 0, 0, 7]),
            (MsgTag::Info, 0x0102, [2, 1, 0, 9]),
            (MsgTag::Error, 0xFF_FFFF, [0xFF, 0xFF, 0xFF, 10]),
            (MsgTag::ErrorExit, 4, [4, 0, 0, 93]),
            (MsgTag::NoSend, 4, [4, 0, 0, 109]),
        ];
        for &(tag, len, want) in cases {
            assert_eq!(frame_header(tag, len), want, "{tag:?}/{len}");
        }
    }

    #[test]
    fn writer_then_reader_roundtrip_with_messages() {
        let mut w = MuxWriter::new(Vec::new());
        w.start_mux().unwrap();
        w.write_all(b"hello ").unwrap();
        w.send_msg(MsgTag::Info, b"note\n").unwrap();
        w.write_all(&vec![b'x'; 70_000]).unwrap();
        w.send_msg_int(MsgTag::IoError, 1).unwrap();
        w.send_msg(MsgTag::Deleted, b"gone/file\0").unwrap();
        w.flush().unwrap();
        let bytes = std::mem::take(w.get_mut());
        let mut r = reader(bytes);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(&all[..6], b"hello ");
        assert_eq!(all.len(), 70_006);
        assert_eq!(r.oob.io_error, 1);
        assert_eq!(r.oob.deleted, vec![b"gone/file".to_vec()]);
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        // (bytes, expected exit code)
        let cases: Vec<(Vec<u8>, i32)> = vec![
            (vec![5, 0, 0, 7, b'a'], 12),         // truncated data frame
            (vec![5, 0, 0], 12),                  // truncated header
            (vec![1, 0, 0, 6, 0], 12),            // tag below MPLEX_BASE
            (vec![0, 0, 0, 7 + 50], 12),          // unknown tag
            (vec![0xFF, 0xFF, 0xFF, 9], 12),      // oversize INFO message
            (vec![3, 0, 0, 7 + 22, 1, 2, 3], 12), // IO_ERROR with 3 bytes
            (vec![4, 0, 0, 93, 2, 0, 0, 0], 2),   // ERROR_EXIT 2
            (vec![4, 0, 0, 9, b'a', b'b'], 12),   // truncated INFO
        ];
        for (bytes, code) in cases {
            let mut r = reader(bytes.clone());
            let err = r.read_i32().unwrap_err();
            let err = match err {
                Error::Io { source, .. } => from_io(source, "x"),
                other => other,
            };
            assert_eq!(err.exit_code(), code, "{bytes:?}: {err}");
        }
    }

    proptest::proptest! {
        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut r = reader(bytes);
            let mut sink = Vec::new();
            let _ = r.read_to_end(&mut sink);
        }

        #[test]
        fn data_roundtrip_any_chunking(chunks in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..5000), 0..20)) {
            let mut w = MuxWriter::new(Vec::new());
            w.start_mux().unwrap();
            let mut want = Vec::new();
            for c in &chunks {
                w.write_all(c).unwrap();
                want.extend_from_slice(c);
                w.send_msg(MsgTag::Noop, b"").unwrap();
            }
            w.flush().unwrap();
            let bytes = std::mem::take(w.get_mut());
            let mut got = Vec::new();
            reader(bytes).read_to_end(&mut got).unwrap();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn clean_eof_between_frames() {
        let mut r = reader(vec![1, 0, 0, 7, b'z']);
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        assert_eq!(v, b"z");
    }
}

#[cfg(test)]
mod text_tests {
    use super::{client_text, stderr_text};

    #[test]
    fn a_shell_servers_stderr_escapes_what_is_not_printable_ascii() {
        assert_eq!(
            stderr_text(b"a\x07\tb\xc3\xa9\n", false),
            b"a\\#007\tb\\#303\\#251\n"
        );
        assert_eq!(
            stderr_text(b"a\x07b\xc3\xa9\x7f\n", true),
            b"a\\#007b\xc3\xa9\x7f\n"
        );
        assert_eq!(stderr_text(b"\rx \\#123\n", false), b"\rx \\#134#123\n");
    }

    #[test]
    fn a_client_keeps_utf8_and_escapes_the_rest() {
        assert_eq!(
            client_text(b"\xc3\xa9\x07\xff\n", false),
            b"\xc3\xa9\\#007\\#377\n"
        );
        assert_eq!(client_text(b"\xc3\xa9\xff\n", true), b"\xc3\xa9\xff\n");
        assert_eq!(client_text(b"\\#12", false), b"\\#12");
    }
}
