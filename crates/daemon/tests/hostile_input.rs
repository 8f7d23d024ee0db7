//! Hostile input never panics: arbitrary bytes through every decoder the daemon runs on
//! client or file input.

use proptest::prelude::*;
use rtsync_daemon::io::Reader;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn config_text(text in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let text = String::from_utf8_lossy(&text);
        let _ = rtsync_daemon::config::Config::parse_str(&text, "fuzz.conf");
    }

    #[test]
    fn config_like_text(lines in proptest::collection::vec("[ \\t]*(\\[[a-z /]*\\]?|[a-z ]{0,12}=?[ -~]{0,20}|[#;&\\\\].{0,10})\\\\?", 0..30)) {
        let text = lines.join("\n");
        let _ = rtsync_daemon::config::Config::parse_str(&text, "fuzz.conf");
    }

    #[test]
    fn greetings(line in "(@RSYNCD:)?[ 0-9.a-z-]{0,40}") {
        if let Ok(g) = rtsync_daemon::greeting::parse_client_greeting(
            &line,
            rtsync_daemon::greeting::PROTOCOL_VERSION,
        ) {
            prop_assert!(g.negotiated <= rtsync_daemon::greeting::PROTOCOL_VERSION);
        }
    }

    #[test]
    fn client_args(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut r = Reader::new(&bytes[..]);
        if let Ok(raw) = rtsync_daemon::args::read_raw(&mut r) {
            let args = rtsync_daemon::args::interpret(raw, "mod");
            let refused = rtsync_daemon::args::refused_set("* !a", false);
            let _ = rtsync_daemon::args::refusal(&args, &refused);
        }
    }

    #[test]
    fn handshake_lines(bytes in proptest::collection::vec(any::<u8>(), 0..4096), max in 0usize..2000) {
        let mut r = Reader::new(&bytes[..]);
        while r.read_line(max).is_ok() {}
    }

    #[test]
    fn refuse_patterns(pattern in "[!*?\\[\\]a-z-]{0,12}( [!*?\\[\\]a-z-]{0,12}){0,3}") {
        let _ = rtsync_daemon::args::refused_set(&pattern, true);
    }

    #[test]
    fn host_rules(list in "[0-9a-f.:/*?\\[\\], @-]{0,40}", addr in "[0-9.:a-f]{0,20}") {
        let mut host = rtsync_daemon::access::HostName::Unknown;
        let _ = rtsync_daemon::access::allow_access(&list, &list, &addr, &mut host, false);
    }

    #[test]
    fn auth_rules(list in "[,@a-z:* ]{0,40}", user in "[a-z#]{0,8}") {
        let rules = rtsync_daemon::secrets::parse_rules(&list);
        let _ = rtsync_daemon::secrets::find_rule(&rules, &user, &["staff".to_string()]);
    }
}
