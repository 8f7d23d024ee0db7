//! What the `--debug=filter` trace says of the rule that decided a check
//! ([`Matched::describe`]): the pattern with a directory-only rule's `/`, the list it is
//! in, and nothing of a pattern read from a file. Stock's own output is compared in
//! rtsync's `filter_trace` tests; this pins the pieces.

use rtsync_filter::{Check, Decision, FilterSet, MemSource, NoFiles, Side};

/// A name checked: path, directory?, side, and the decision and description expected.
type Case<'a> = (&'a str, bool, Side, Option<(Decision, &'a str)>);

fn described(set: &FilterSet, path: &str, is_dir: bool, side: Side) -> Option<(Decision, String)> {
    set.check_match(path.as_bytes(), is_dir, Check::side(side))
        .map(|m| (m.decision(), String::from_utf8(m.describe()).unwrap()))
}

#[test]
fn names_the_deciding_rule() {
    let mut set = FilterSet::new();
    for rule in [
        "- *.o",
        "+ keep/",
        "P prot",
        "R risky",
        ": .rsync-filter",
        "-C",
    ] {
        set.add_filter(rule.as_bytes(), &mut NoFiles).unwrap();
    }
    set.add_from_bytes("rules".as_ref(), b"- secret-*\n", false)
        .unwrap();
    let mut files = MemSource::default().with("sub/.rsync-filter", "- hidden\n: .inner\n");
    set.enter_dir(b"", &mut files).unwrap();
    set.enter_dir(b"sub", &mut files).unwrap();
    let from_file = "<rule from a file read earlier>";
    let cases: &[Case<'_>] = &[
        ("a.o", false, Side::Sender, Some((Decision::Exclude, "*.o"))),
        (
            "keep",
            true,
            Side::Sender,
            Some((Decision::Include, "keep/")),
        ),
        ("keep", false, Side::Sender, None),
        (
            "prot",
            false,
            Side::Receiver,
            Some((Decision::Exclude, "prot")),
        ),
        ("prot", false, Side::Sender, None),
        (
            "risky",
            false,
            Side::Receiver,
            Some((Decision::Include, "risky")),
        ),
        (
            "secret-1",
            false,
            Side::Sender,
            Some((Decision::Exclude, from_file)),
        ),
        (
            "sub/hidden",
            false,
            Side::Sender,
            Some((
                Decision::Exclude,
                "<rule from a file read earlier> [per-dir .rsync-filter]",
            )),
        ),
        (
            "x.bak",
            false,
            Side::Sender,
            Some((Decision::Exclude, "*.bak [global CVS]")),
        ),
        ("plain", false, Side::Sender, None),
    ];
    for &(path, is_dir, side, want) in cases {
        let got = described(&set, path, is_dir, side);
        let want = want.map(|(d, text)| (d, text.to_string()));
        assert_eq!(got, want, "{path} ({side:?})");
    }
    // The check itself answers as before.
    assert!(set.is_excluded(b"sub/hidden", false));
    assert!(!set.is_excluded(b"plain", false));
}

#[test]
fn a_dir_merge_named_in_a_file_is_not_named_either() {
    let mut set = FilterSet::new();
    let mut files = MemSource::default()
        .with("outer", ": .inner\n")
        .with("d/.inner", "- x\n");
    set.add_filter(b". outer", &mut files).unwrap();
    set.enter_dir(b"", &mut files).unwrap();
    set.enter_dir(b"d", &mut files).unwrap();
    let got = described(&set, "d/x", false, Side::Sender).unwrap().1;
    assert_eq!(
        got,
        "<rule from a file read earlier> [per-dir <rule from outer line 1>]"
    );
}

#[test]
fn a_daemon_list_says_so() {
    let params = rtsync_filter::daemon::ModuleFilterParams {
        exclude: Some(b"*.tmp".to_vec()),
        ..Default::default()
    };
    let set = rtsync_filter::daemon::module_filter(&params, &mut NoFiles).unwrap();
    let got = described(&set, "a.tmp", false, Side::Sender).unwrap();
    assert_eq!(got, (Decision::Exclude, "*.tmp [daemon]".to_string()));
}
