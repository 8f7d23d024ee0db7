use super::*;
use proptest::prelude::*;

fn opts() -> FlistOptions {
    FlistOptions {
        protocol: 31,
        relative: false,
        varint_flags: true,
        safe_flist: true,
        id0_names: true,
        preserve_uid: true,
        preserve_gid: true,
        preserve_links: true,
        preserve_devices: true,
        preserve_specials: true,
        preserve_hard_links: true,
        checksum_len: None,
        numeric_ids: false,
        inc_recurse: false,
        missing_entries: false,
        preserve_atimes: false,
        xattrs: None,
        preserve_acls: false,
        skip_implied: false,
        iconv: None,
        symlink_iconv: false,
    }
}

fn entry(name: &str, kind: FileKind, perm: u32) -> FileEntry {
    let ifmt = match kind {
        FileKind::Regular => libc::S_IFREG,
        FileKind::Directory => libc::S_IFDIR,
        FileKind::Symlink => libc::S_IFLNK,
        FileKind::BlockDevice => libc::S_IFBLK,
        FileKind::CharDevice => libc::S_IFCHR,
        FileKind::Fifo => libc::S_IFIFO,
        FileKind::Socket => libc::S_IFSOCK,
    };
    FileEntry {
        name: name.as_bytes().to_vec(),
        kind,
        mode: ifmt | perm,
        size: 0,
        mtime: 1_700_000_000,
        mtime_nsec: 0,
        atime: 0,
        uid: 1000,
        gid: 1000,
        rdev: 0,
        link_target: (kind == FileKind::Symlink).then(|| b"target".to_vec()),
        hardlink_key: None,
        checksum: None,
        top_dir: false,
        xattrs: None,
        acl: None,
    }
}

fn encode(o: &FlistOptions, entries: &[FileEntry]) -> Vec<u8> {
    let mut enc = FlistEncoder::new(o.clone());
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        enc.put_entry(&mut out, e, i).unwrap();
    }
    enc.put_end(&mut out, 0);
    enc.put_id_lists(
        &mut out,
        &[(1000, b"alice".to_vec())],
        &[(1000, b"staff".to_vec())],
    );
    out
}

fn sample() -> Vec<FileEntry> {
    let mut root = entry(".", FileKind::Directory, 0o755);
    root.top_dir = true;
    let mut big = entry("a/big", FileKind::Regular, 0o644);
    big.size = 5_000_000_000;
    big.mtime_nsec = 123_456_789;
    let mut dev = entry("a/dev", FileKind::CharDevice, 0o600);
    dev.rdev = libc::makedev(4, 300);
    let mut h1 = entry("a/h1", FileKind::Regular, 0o644);
    h1.hardlink_key = Some((1, 77));
    h1.size = 10;
    let mut h2 = entry("a/h2", FileKind::Regular, 0o644);
    h2.hardlink_key = Some((1, 77));
    h2.size = 10;
    let long = format!("a/{}", "x".repeat(300));
    vec![
        root,
        entry("z", FileKind::Regular, 0o600),
        entry("a", FileKind::Directory, 0o755),
        big,
        dev,
        h1,
        h2,
        entry("a/link", FileKind::Symlink, 0o777),
        entry("a/fifo", FileKind::Fifo, 0o644),
        entry(&long, FileKind::Regular, 0o644),
    ]
}

#[test]
fn access_times_travel_for_non_directories_only() {
    let o = FlistOptions {
        preserve_atimes: true,
        ..opts()
    };
    let mut sent = sample();
    for (i, e) in sent.iter_mut().enumerate() {
        // Runs of equal values (sent once) and changes, directories included.
        e.atime = 1_600_000_000 + (i as i64 / 2) * 1000;
        if e.hardlink_key.is_some() {
            // One inode, one access time (a follower takes its leader's).
            e.atime = 1_650_000_000;
        }
    }
    let bytes = encode(&o, &sent);
    let without = encode(&opts(), &sent);
    assert!(bytes.len() > without.len(), "no access times were sent");
    let list = FlistDecoder::new(o.clone())
        .read_list(&mut &bytes[..])
        .unwrap();
    for got in &list.entries {
        let want = sent.iter().find(|e| e.name == got.name).unwrap();
        let atime = if want.is_dir() { 0 } else { want.atime };
        assert_eq!(got.atime, atime, "{:?}", String::from_utf8_lossy(&got.name));
    }
}

#[test]
fn roundtrip_sorts_and_keeps_attributes() {
    for varint_flags in [true, false] {
        for protocol in [30, 31] {
            let o = FlistOptions {
                varint_flags,
                protocol,
                ..opts()
            };
            let sent = sample();
            let bytes = encode(&o, &sent);
            let list = FlistDecoder::new(o.clone())
                .read_list(&mut &bytes[..])
                .unwrap();
            let mut want = sent.clone();
            rtsync_tree::sort_entries(&mut want);
            let names: Vec<_> = list.entries.iter().map(|e| e.name.clone()).collect();
            let want_names: Vec<_> = want.iter().map(|e| e.name.clone()).collect();
            assert_eq!(names, want_names);
            for (got, want) in list.entries.iter().zip(&want) {
                assert_eq!(got.mode, want.mode, "{:?}", want.name);
                assert_eq!(got.size, want.size);
                assert_eq!(got.mtime, want.mtime);
                let nsec = if protocol >= 31 { want.mtime_nsec } else { 0 };
                assert_eq!(got.mtime_nsec, nsec);
                assert_eq!(got.rdev, want.rdev);
                assert_eq!(got.link_target, want.link_target);
                assert_eq!(got.hardlink_key.is_some(), want.hardlink_key.is_some());
            }
            let h: Vec<_> = list.entries.iter().filter_map(|e| e.hardlink_key).collect();
            assert_eq!(h.len(), 2);
            assert_eq!(h[0], h[1]);
            // Id 0 is named whether or not the list used it (as stock does).
            let root = crate::local::user_name(0).unwrap_or_default();
            assert_eq!(list.user_names, vec![(1000, b"alice".to_vec()), (0, root)]);
            assert!(list.entries[0].top_dir);
        }
    }
}

/// `--iconv`: a latin1 sender's names and symlink targets arrive as UTF-8 on the wire and in
/// a UTF-8 receiver's list, which records the order they were sent in (the indices the
/// sender uses); a name that has no latin1 form is left out on the latin1 side, inactive.
#[test]
fn iconv_converts_names_and_records_the_order_sent() {
    let latin1 = crate::iconv::Iconv::new("ISO-8859-1").unwrap();
    let utf8 = crate::iconv::Iconv::new("UTF-8").unwrap();
    let with = |ic: &crate::iconv::Iconv| FlistOptions {
        iconv: Some(ic.clone()),
        symlink_iconv: true,
        preserve_hard_links: false,
        ..opts()
    };
    // Sent as a sender walks a directory: not in sorted order.
    let named = |name: &[u8], kind, perm| {
        let mut e = entry("x", kind, perm);
        e.name = name.to_vec();
        e
    };
    let mut link = named(b"z\xe9", FileKind::Symlink, 0o777);
    link.link_target = Some(b"caf\xe9".to_vec());
    let sent = vec![
        named(b"b\xfc", FileKind::Regular, 0o644),
        named(b"a", FileKind::Regular, 0o644),
        link,
        named(b"\xe9t\xe9", FileKind::Directory, 0o755),
    ];
    let bytes = encode(&with(&latin1), &sent);
    let list = FlistDecoder::new(with(&utf8))
        .read_list(&mut &bytes[..])
        .unwrap();
    let names: Vec<String> = list
        .entries
        .iter()
        .map(|e| String::from_utf8(e.name.clone()).unwrap())
        .collect();
    assert_eq!(names, ["a", "bü", "zé", "été"]);
    assert_eq!(list.sent, [1, 0, 2, 3]);
    assert_eq!(
        list.entries[2].link_target.as_deref(),
        Some("café".as_bytes())
    );
    assert!(list.active.iter().all(|&a| a));

    let sent = vec![
        entry("€", FileKind::Regular, 0o644),
        entry("ok", FileKind::Regular, 0o644),
    ];
    let bytes = encode(&with(&utf8), &sent);
    let list = FlistDecoder::new(with(&latin1))
        .read_list(&mut &bytes[..])
        .unwrap();
    assert_eq!(list.active, [true, false], "{:?}", list.entries);
    assert_eq!(list.io_error, IOERR_GENERAL);
}

/// Builds a raw single-entry list with the given name bytes.
fn raw_entry_list(name: &[u8], mode: u32) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, (xmit::SAME_UID | xmit::SAME_GID) as i32);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    put_varlong(&mut out, 0, 3);
    put_varlong(&mut out, 0, 4);
    put_i32(&mut out, mode as i32);
    put_varint(&mut out, 0);
    put_varint(&mut out, 0);
    out
}

#[test]
fn hostile_names_are_refused() {
    let o = FlistOptions {
        preserve_uid: false,
        preserve_gid: false,
        ..opts()
    };
    let reg = libc::S_IFREG | 0o644;
    let cases: &[(&[u8], u32, i32)] = &[
        (b"../x", reg, 4),
        (b"/etc/x", reg, 4),
        (b"a/../../x", reg, 4),
        (b"a//b", reg, 4),
        (b"a/./b", reg, 4),
        (b"..", libc::S_IFDIR | 0o755, 4),
        (b"a\0b", reg, 4),
        (b".", reg, 2),
        (b"", reg, 4),
        (b"ok", 0o170000 | 0o644, 2),
    ];
    for &(name, mode, code) in cases {
        let bytes = raw_entry_list(name, mode);
        let err = FlistDecoder::new(o.clone())
            .read_list(&mut &bytes[..])
            .unwrap_err();
        assert_eq!(
            err.exit_code(),
            code,
            "{:?}: {err}",
            String::from_utf8_lossy(name)
        );
    }
}

#[test]
fn same_name_prefix_longer_than_previous_is_refused() {
    let mut out = Vec::new();
    put_varint(
        &mut out,
        (xmit::SAME_NAME | xmit::SAME_UID | xmit::SAME_GID) as i32,
    );
    out.push(10); // l1 = 10 with no previous name: would read uninitialised bytes
    out.push(1);
    out.push(b'x');
    let err = FlistDecoder::new(opts())
        .read_list(&mut &out[..])
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn bad_hardlink_reference_is_refused() {
    let mut out = Vec::new();
    put_varint(
        &mut out,
        (xmit::HLINKED | xmit::SAME_UID | xmit::SAME_GID) as i32,
    );
    out.push(1);
    out.push(b'x');
    put_varint(&mut out, 0); // refers to itself / nothing before it
    let err = FlistDecoder::new(opts())
        .read_list(&mut &out[..])
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn duplicates_are_deactivated_and_order_is_rsyncs() {
    let o = FlistOptions {
        preserve_uid: false,
        preserve_gid: false,
        ..opts()
    };
    let mut bytes = Vec::new();
    let mut enc = FlistEncoder::new(o.clone());
    let list = [
        entry("b", FileKind::Regular, 0o644),
        entry("a", FileKind::Regular, 0o644),
        entry("b", FileKind::Regular, 0o644),
    ];
    for (i, e) in list.iter().enumerate() {
        enc.put_entry(&mut bytes, e, i).unwrap();
    }
    enc.put_end(&mut bytes, 0);
    let got = FlistDecoder::new(o).read_list(&mut &bytes[..]).unwrap();
    let names: Vec<&[u8]> = got.entries.iter().map(|e| &e.name[..]).collect();
    assert_eq!(names, vec![&b"a"[..], b"b", b"b"]);
    assert_eq!(got.active, vec![true, true, false]);
}

#[test]
fn truncated_lists_fail_cleanly() {
    let bytes = encode(&opts(), &sample());
    for cut in 0..bytes.len() {
        let r = FlistDecoder::new(opts()).read_list(&mut &bytes[..cut]);
        assert!(r.is_err(), "cut at {cut}");
    }
}

proptest! {
    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = FlistDecoder::new(opts()).read_list(&mut &bytes[..]);
        let o = FlistOptions { varint_flags: false, checksum_len: Some(16), ..opts() };
        let _ = FlistDecoder::new(o).read_list(&mut &bytes[..]);
    }
}

/// `-A`: every non-symlink entry (hard-link followers too) carries its ACLs; the receiver
/// gets them condensed, with the mask filled, and the named ids join the id lists.
#[test]
fn acls_round_trip() {
    use rtsync_tree::acl::{Acl, AclName, EntryAcl};
    let mut o = opts();
    o.preserve_acls = true;
    o.preserve_uid = false;
    let mut named = EntryAcl::plain(libc::S_IFREG | 0o664);
    named.access.mask = Some(6);
    named.access.names = vec![
        AclName {
            id: 0,
            perm: 6,
            user: true,
        },
        AclName {
            id: 4321,
            perm: 4,
            user: false,
        },
    ];
    let named = std::sync::Arc::new(named);
    let mut dir = entry(".", FileKind::Directory, 0o755);
    let mut dacl = EntryAcl::plain(dir.mode);
    dacl.default = Some(Acl {
        user_obj: Some(7),
        group_obj: Some(5),
        mask: None,
        other: Some(0),
        names: Vec::new(),
    });
    dir.acl = Some(std::sync::Arc::new(dacl.clone()));
    let mut f = entry("f", FileKind::Regular, 0o664);
    f.acl = Some(named.clone());
    f.hardlink_key = Some((1, 2));
    let mut g = entry("g", FileKind::Regular, 0o664);
    g.acl = Some(named.clone());
    g.hardlink_key = Some((1, 2));
    let plain = entry("p", FileKind::Regular, 0o600);
    let link = entry("l", FileKind::Symlink, 0o777);
    let list = [dir, f, g, plain, link];
    let mut enc = FlistEncoder::new(o.clone());
    let mut out = Vec::new();
    for (i, e) in list.iter().enumerate() {
        enc.put_entry(&mut out, e, i).unwrap();
    }
    enc.put_end(&mut out, 0);
    enc.put_id_lists(&mut out, &[], &[]);
    let got = FlistDecoder::new(o).read_list(&mut &out[..]).unwrap();
    let by_name = |n: &str| got.entries.iter().find(|e| e.name == n.as_bytes()).unwrap();
    let want = rtsync_tree::acl::as_received(&named, libc::S_IFREG | 0o664);
    assert_eq!(by_name("f").acl.as_deref(), Some(&want));
    assert_eq!(by_name("g").acl.as_deref(), Some(&want));
    assert!(by_name("p").acl.as_ref().unwrap().access.is_empty());
    assert!(by_name("l").acl.is_none());
    assert_eq!(
        by_name(".").acl.as_ref().unwrap().default,
        dacl.default,
        "a default ACL travels whole"
    );
    // uid 0 has a name (sent last, as id 0's); the nameless gid is not listed.
    assert!(got.user_names.iter().any(|(id, _)| *id == 0));
    assert!(got.group_names.iter().all(|(id, _)| *id != 4321));
}
