//! Hostile-peer tests: a tiny fake rsync daemon written here sends malformed or malicious
//! data to rtsync's client. Each case must end in a clear error with rsync's exit code and
//! leave nothing outside the destination.

mod interop_util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;

use rtsync_wire::varint::{put_i32, put_varlong};

/// Frames `payload` as MSG_DATA.
fn data_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = ((7u32 << 24) | payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while s.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Starts a fake daemon that performs a protocol-31 handshake (md5, byte-sized file-list
/// flags, no negotiation strings) and then runs `script` on the socket.
fn fake_daemon(script: impl FnOnce(&mut TcpStream) + Send + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        s.write_all(b"@RSYNCD: 31.0\n").unwrap();
        let _greeting = read_line(&mut s);
        let _module = read_line(&mut s);
        s.write_all(b"@RSYNCD: OK\n").unwrap();
        // Arguments, NUL-terminated, ending with an empty one.
        let mut prev_nul = false;
        let mut b = [0u8; 1];
        while s.read(&mut b).unwrap_or(0) == 1 {
            if b[0] == 0 && prev_nul {
                break;
            }
            prev_nul = b[0] == 0;
        }
        // compat flags (varint, < 0x80 so one byte): SAFE_FLIST | CHKSUM_SEED_FIX.
        let mut out = vec![0x28u8];
        put_i32(&mut out, 4242); // seed
        s.write_all(&out).unwrap();
        script(&mut s);
        // Drain until the client hangs up.
        let mut sink = [0u8; 4096];
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
        while s.read(&mut sink).map(|n| n > 0).unwrap_or(false) {}
    });
    port
}

/// One file-list entry with byte flags: a regular file (or directory) of `size` bytes.
fn entry(name: &[u8], mode: u32, size: i64) -> Vec<u8> {
    let mut out = vec![0u8]; // flags: none (mode, time and name all sent in full)
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    put_varlong(&mut out, size, 3);
    put_varlong(&mut out, 1_600_000_000, 4);
    put_i32(&mut out, mode as i32);
    // A zero first flag byte would end the list: rsync sets XMIT_TOP_DIR on files for this.
    out[0] = 0x01;
    out
}

fn run_pull(port: u16, dest: &Path) -> i32 {
    let url = format!("rsync://127.0.0.1:{port}/mod/");
    let d = format!("{}/", dest.display());
    interop_util::run_ours(&["-r", &url, &d])
}

/// Runs a pull against a fake daemon sending `flist_and_more` after the handshake.
fn pull_with(payload: Vec<u8>) -> (i32, tempfile::TempDir) {
    let port = fake_daemon(move |s| {
        s.write_all(&payload).unwrap();
    });
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("dest")).unwrap();
    let code = run_pull(port, &work.path().join("dest"));
    (code, work)
}

/// Everything in `work` besides `dest/` is a leak.
fn assert_nothing_outside(work: &Path) {
    let names: Vec<_> = std::fs::read_dir(work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["dest".to_string()],
        "files appeared outside the destination"
    );
}

const REG: u32 = 0o100644;
const DIR: u32 = 0o040755;

#[test]
fn truncated_frame_is_a_stream_error() {
    // A frame announcing 100 bytes that carries one valid entry, then the connection ends.
    let mut bytes = ((7u32 << 24) | 100).to_le_bytes().to_vec();
    bytes.extend(entry(b".", DIR, 0));
    let port = fake_daemon(move |s| {
        s.write_all(&bytes).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("dest")).unwrap();
    let code = run_pull(port, &work.path().join("dest"));
    assert_eq!(code, 12);
}

#[test]
fn parent_dir_names_are_refused() {
    for name in [&b"../x"[..], b"a/../../x", b"/etc/x", b"..", b"a//b"] {
        let mut list = entry(b".", DIR, 0);
        list.extend(entry(name, REG, 5));
        list.push(0);
        let (code, work) = pull_with(data_frame(&list));
        assert_eq!(code, 4, "{:?}", String::from_utf8_lossy(name));
        assert_nothing_outside(work.path());
        assert_eq!(
            std::fs::read_dir(work.path().join("dest")).unwrap().count(),
            0
        );
    }
}

#[test]
fn non_directory_root_is_refused() {
    let mut list = entry(b".", REG, 5);
    list.push(0);
    let (code, work) = pull_with(data_frame(&list));
    assert_eq!(code, 2);
    assert_nothing_outside(work.path());
}

#[test]
fn data_for_a_duplicate_entry_is_refused() {
    // "a" twice: one copy is cleaned away; the sender then answers for the cleared index 2.
    let mut list = entry(b".", DIR, 0);
    list.extend(entry(b"a", REG, 3));
    list.extend(entry(b"a", REG, 3));
    list.push(0);
    let mut payload = data_frame(&list);
    // ndx 2 as a protocol-30 diff from -1: 3; iflags ITEM_TRANSFER.
    payload.extend(data_frame(&[3, 0x00, 0x80]));
    let (code, work) = pull_with(payload);
    assert_eq!(code, 2);
    assert_nothing_outside(work.path());
}

#[test]
fn unrequested_index_is_refused_even_for_out_of_order_lists() {
    // Sent out of order (b before a): we sort, as rsync does; index 1 ("a") exists and is
    // wanted, but the sender answers for index 0 (".", a directory we never requested).
    let mut list = entry(b".", DIR, 0);
    list.extend(entry(b"b", REG, 3));
    list.extend(entry(b"a", REG, 3));
    list.push(0);
    let mut payload = data_frame(&list);
    payload.extend(data_frame(&[1, 0x00, 0x80]));
    let (code, _work) = pull_with(payload);
    assert_eq!(code, 2);
}

#[test]
fn oversize_sum_header_from_a_receiver_is_refused() {
    // We push; the fake receiver asks for file 1 with a strong-sum length beyond MD5's 16
    // bytes (CVE-2024-12084's shape).
    let port = fake_daemon(|s| {
        let mut req = vec![2u8, 0x00, 0x80]; // ndx 1 (diff 2 from -1), ITEM_TRANSFER
        for v in [1i32, 700, 9999, 0] {
            put_i32(&mut req, v);
        }
        s.write_all(&data_frame(&req)).unwrap();
    });
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), b"hello").unwrap();
    let from = format!("{}/", src.path().display());
    let url = format!("rsync://127.0.0.1:{port}/mod/");
    assert_eq!(interop_util::run_ours(&["-r", &from, &url]), 2);
}

#[test]
fn bad_index_from_a_receiver_is_refused() {
    // Index 5 does not exist in the one-file list we sent: nothing may be opened for it.
    let port = fake_daemon(|s| {
        s.write_all(&data_frame(&[6, 0x00, 0x80])).unwrap();
    });
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), b"hello").unwrap();
    let from = format!("{}/", src.path().display());
    let url = format!("rsync://127.0.0.1:{port}/mod/");
    assert_eq!(interop_util::run_ours(&["-r", &from, &url]), 2);
}

#[test]
fn symlinked_parent_planted_in_the_list_is_not_followed() {
    // "a" is a symlink to the parent of dest; "a/evil" must not be written through it.
    let mut list = entry(b".", DIR, 0);
    let mut link = entry(b"a", 0o120777, 2);
    // With -l the target follows: varint length + bytes. We pull with -rl below.
    link.push(2);
    link.extend_from_slice(b"..");
    list.extend(link);
    list.extend(entry(b"a/evil", REG, 4));
    list.push(0);
    let mut payload = data_frame(&list);
    // Request answer for index 2 ("a/evil"), whole-file: header of zeros, token "evil", sum.
    let mut file = vec![3u8, 0x00, 0x80];
    for v in [0i32, 0, 0, 0] {
        put_i32(&mut file, v);
    }
    put_i32(&mut file, 4);
    file.extend_from_slice(b"evil");
    put_i32(&mut file, 0);
    file.extend_from_slice(&[0u8; 16]);
    payload.extend(data_frame(&file));
    let port = fake_daemon(move |s| s.write_all(&payload).unwrap());
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("dest")).unwrap();
    let url = format!("rsync://127.0.0.1:{port}/mod/");
    let d = format!("{}/", work.path().join("dest").display());
    let code = interop_util::run_ours(&["-rl", &url, &d]);
    assert_ne!(code, 0);
    assert!(
        !work.path().join("evil").exists(),
        "wrote through a symlink"
    );
}

#[test]
fn stalled_daemon_times_out_with_code_30_like_stock() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = l.accept() {
            let _ = s.write_all(b"@RSYNCD: 31.0\n");
            held.push(s); // never answers again
        }
    });
    let work = tempfile::tempdir().unwrap();
    let url = format!("rsync://127.0.0.1:{port}/mod/");
    let d = format!("{}/", work.path().join("d").display());
    let stock = interop_util::run_stock(&["--timeout=1", "-a", &url, &d]);
    let ours = interop_util::run_ours(&["--timeout=1", "-a", &url, &d]);
    assert_eq!(stock.status.code(), Some(30));
    assert_eq!(ours, 30);
}

/// A hostile client of an rtsync daemon serving `root` as module `mod`: connected, past the
/// greeting, and with the server (a receiver given `-re.LsfC`, `extra` and `. mod/`) set
/// up to read its file list.
fn hostile_client(root: &Path, extra: &[&str]) -> TcpStream {
    let port = interop_util::inproc::rtsync_daemon(root, 1);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _greeting = read_line(&mut s);
    s.write_all(b"@RSYNCD: 31.0\nmod\n").unwrap();
    assert_eq!(read_line(&mut s), "@RSYNCD: OK");
    let mut args = b"--server\0-re.LsfC\0".to_vec();
    for a in extra.iter().chain(&[".", "mod/"]) {
        args.extend_from_slice(a.as_bytes());
        args.push(0);
    }
    args.push(0);
    s.write_all(&args).unwrap();
    let mut setup = [0u8; 5]; // compat flags (one byte) + seed
    s.read_exact(&mut setup).unwrap();
    s
}

/// A hostile client pushes `list` (raw file-list bytes, byte-sized flags) to rtsync's server;
/// returns the exit code the server reports with MSG_ERROR_EXIT.
fn push_hostile_list_to_rtsync(root: &Path, list: &[u8]) -> i32 {
    let mut s = hostile_client(root, &[]);
    s.write_all(&data_frame(list)).unwrap();
    // Read frames until MSG_ERROR_EXIT (tag 86).
    loop {
        let mut h = [0u8; 4];
        if s.read_exact(&mut h).is_err() {
            return -1;
        }
        let word = u32::from_le_bytes(h);
        let len = (word & 0xFF_FFFF) as usize;
        let tag = (word >> 24) as i32 - 7;
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).unwrap();
        if tag == 86 {
            return i32::from_le_bytes(payload[..4].try_into().unwrap());
        }
    }
}

#[test]
fn rtsync_server_refuses_hostile_names_from_a_client() {
    for name in [&b"../x"[..], b"/etc/x", b"a/../../x"] {
        let work = tempfile::tempdir().unwrap();
        let root = work.path().join("module");
        std::fs::create_dir(&root).unwrap();
        let mut list = entry(b".", DIR, 0);
        list.extend(entry(name, REG, 5));
        list.push(0);
        let code = push_hostile_list_to_rtsync(&root, &list);
        assert_eq!(code, 4, "{:?}", String::from_utf8_lossy(name));
        assert_nothing_outside_module(work.path());
    }
}

fn assert_nothing_outside_module(work: &Path) {
    let names: Vec<_> = std::fs::read_dir(work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["module".to_string()]);
    assert_eq!(std::fs::read_dir(work.join("module")).unwrap().count(), 0);
}

/// Pulls `rsync://…/{path}` with `opts` from a fake daemon sending `list` (then idling a
/// moment and hanging up) into a destination `prepare` made; returns the exit code.
fn pull_path_with(
    path: &str,
    opts: &[&str],
    list: Vec<u8>,
    prepare: impl Fn(&Path),
) -> (i32, tempfile::TempDir) {
    let port = fake_daemon(move |s| {
        s.write_all(&data_frame(&list)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let _ = s.shutdown(std::net::Shutdown::Both);
    });
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    prepare(&dest);
    let url = format!("rsync://127.0.0.1:{port}/{path}");
    let d = format!("{}/", dest.display());
    let mut args = opts.to_vec();
    args.extend([url.as_str(), d.as_str()]);
    (interop_util::run_ours(&args), work)
}

#[test]
fn unrequested_names_are_refused_like_stock() {
    // Asked for dir/file: stock rejects any other name with exit code 4 before writing.
    let mut list = entry(b"file", REG, 3);
    list.extend(entry(b"evil", REG, 3));
    list.push(0);
    let (code, work) = pull_path_with("mod/dir/file", &["-r"], list, |_| {});
    assert_eq!(code, 4);
    assert_nothing_outside(work.path());
    assert_eq!(
        std::fs::read_dir(work.path().join("dest")).unwrap().count(),
        0
    );
}

#[test]
fn a_relative_parent_flagged_as_content_dir_is_not_swept_by_delete() {
    // `dir` sent as a content directory (top-dir flag without no-content-dir).
    let list = || {
        let mut l = entry(b"dir", DIR, 0);
        l.push(0);
        l
    };
    let keep = |d: &Path| {
        std::fs::create_dir(d.join("dir")).unwrap();
        std::fs::write(d.join("dir/keep.txt"), b"stay").unwrap();
    };
    // Asked for dir/file with -R: dir is only an implied parent, its other contents stay.
    let (_, work) = pull_path_with("mod/dir/file", &["-rR", "--delete"], list(), keep);
    assert!(work.path().join("dest/dir/keep.txt").is_file());
    // Control: asked for the whole module, dir is requested and --delete sweeps it.
    let (_, work) = pull_path_with("mod/", &["-rR", "--delete"], list(), keep);
    assert!(!work.path().join("dest/dir/keep.txt").exists());
}

/// MSG_DATA bytes from a server, frame by frame, skipping messages; `exit` is the code of
/// a MSG_ERROR_EXIT.
struct DataReader {
    buf: Vec<u8>,
    exit: Option<i32>,
}

impl DataReader {
    /// The next `want` data bytes; `None` when the server ends the transfer or hangs up
    /// first.
    fn take(&mut self, s: &mut TcpStream, want: usize) -> Option<Vec<u8>> {
        while self.buf.len() < want {
            let mut h = [0u8; 4];
            s.read_exact(&mut h).ok()?;
            let word = u32::from_le_bytes(h);
            let len = (word & 0xFF_FFFF) as usize;
            let tag = (word >> 24) as i32 - 7;
            let mut payload = vec![0u8; len];
            s.read_exact(&mut payload).ok()?;
            match tag {
                0 => self.buf.extend(payload),
                86 => {
                    self.exit = Some(i32::from_le_bytes(payload[..4].try_into().unwrap()));
                    return None;
                }
                _ => {}
            }
        }
        Some(self.buf.drain(..want).collect())
    }
}

/// A hostile client echoes the generator's request for `f` naming another basis (an
/// alternate-directory index, as the suite's chroot-basis-forge-inner-module does) and a
/// block match against it. rtsync's receiver never takes the basis from the sender: it
/// refuses the stream (protocol error, code 2) and the destination file is untouched.
#[test]
fn a_forged_basis_type_from_a_client_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("module");
    std::fs::create_dir_all(root.join("alt")).unwrap();
    std::fs::write(root.join("f"), vec![b'A'; 700]).unwrap();
    std::fs::write(root.join("alt/f"), vec![b'S'; 700]).unwrap();
    let mut s = hostile_client(&root, &["--no-whole-file", "--compare-dest=alt"]);
    let mut list = entry(b".", DIR, 0);
    list.extend(entry(b"f", REG, 701));
    list.push(0);
    s.write_all(&data_frame(&list)).unwrap();
    // The request: index 1 (one byte: the difference from -1), item flags, sum header.
    let mut r = DataReader {
        buf: Vec::new(),
        exit: None,
    };
    let req = r.take(&mut s, 1 + 2 + 16).expect("a request for f");
    assert_eq!(req[0], 2, "request for index 1");
    let head = &req[3..19];
    let count = i32::from_le_bytes(head[..4].try_into().unwrap());
    let s2len = i32::from_le_bytes(head[8..12].try_into().unwrap());
    assert!(count > 0, "the generator sends sums of the existing f");
    r.take(&mut s, count as usize * (4 + s2len as usize))
        .expect("the sums");
    let iflags = u16::from_le_bytes([req[1], req[2]]) | (1 << 11) | (1 << 12);
    let mut forged = vec![2u8];
    forged.extend(iflags.to_le_bytes());
    forged.push(0x84); // FNAMECMP_FUZZY + 1: the first alternate directory
    forged.extend([1, b'f']);
    forged.extend_from_slice(head);
    put_i32(&mut forged, -1); // block 0 of the named basis
    put_i32(&mut forged, 1);
    forged.push(b'X');
    put_i32(&mut forged, 0);
    forged.extend([0u8; 16]);
    s.write_all(&data_frame(&forged)).unwrap();
    let _ = r.take(&mut s, usize::MAX);
    assert_eq!(r.exit, Some(2), "refused as a protocol error");
    assert_eq!(std::fs::read(root.join("f")).unwrap(), vec![b'A'; 700]);
    let names: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "temporary files left: {names:?}");
}
