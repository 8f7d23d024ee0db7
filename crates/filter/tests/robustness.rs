//! Property tests: no input makes the parsers or matcher panic, and a few
//! algebraic facts about wildmatch hold.

use proptest::prelude::*;

use rtsync_filter::wildmatch::wildmatch;
use rtsync_filter::wire::{server_rules, ServerContext};
use rtsync_filter::{FilterSet, MemSource, Side};

/// Bytes biased towards the characters the grammar cares about.
fn rule_bytes() -> impl Strategy<Value = Vec<u8>> {
    let interesting =
        prop::sample::select(b"-+:.!/_, *?[]^\\:abcCenwsrpx#;\n\r\tHSPR\0\xff".to_vec());
    prop::collection::vec(prop_oneof![interesting, any::<u8>()], 0..40)
}

fn escape(literal: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &c in literal {
        if matches!(c, b'*' | b'?' | b'[' | b'\\') {
            out.push(b'\\');
        }
        out.push(c);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(rule in rule_bytes(), path in rule_bytes(), is_dir in any::<bool>()) {
        let mut set = FilterSet::new();
        let _ = set.add_filter(&rule, &mut MemSource::default().with("x", rule.clone()));
        let _ = set.add_exclude(&rule);
        let _ = set.add_include(&rule);
        let _ = set.add_from_bytes(std::path::Path::new("f"), &rule, false);
        let mut files = MemSource::default().with(".f", rule.clone()).with("d/.f", rule.clone());
        let _ = set.add_filter(b": .f", &mut files);
        let _ = set.enter_dir(b"", &mut files);
        let _ = set.enter_dir(b"d", &mut files);
        let _ = set.check(&path, is_dir, Side::Sender);
        let _ = set.check(&path, is_dir, Side::Receiver);
        set.leave_dir();
        set.leave_dir();
        let ctx = ServerContext { am_sender: true, protocol: 31, delete_excluded: false, cvs_exclude: true };
        let _ = server_rules(std::slice::from_ref(&rule), &ctx, Default::default(), &mut MemSource::default());
        let _ = rtsync_filter::daemon::exclude_param(&rule);
    }

    #[test]
    fn implied_never_panics(arg in rule_bytes(), name in rule_bytes(), flags in any::<[bool; 4]>()) {
        let mut implied = rtsync_filter::ImpliedIncludes::new(flags[0], flags[1], flags[2]);
        implied.add_arg(&arg, flags[3]);
        let _ = implied.allows(&name, flags[0]);
        let _ = implied.is_parent_only(&name);
    }

    #[test]
    fn wildmatch_never_panics(pattern in rule_bytes(), text in rule_bytes()) {
        let _ = wildmatch(&pattern, &text);
    }

    #[test]
    fn escaped_literal_matches_only_itself(a in rule_bytes(), b in rule_bytes()) {
        let pattern = escape(&a);
        prop_assert!(wildmatch(&pattern, &a));
        prop_assert_eq!(wildmatch(&pattern, &b), a == b);
    }

    #[test]
    fn double_star_matches_everything(text in rule_bytes()) {
        prop_assert!(wildmatch(b"**", &text));
        prop_assert_eq!(wildmatch(b"*", &text), !text.contains(&b'/'));
    }
}
