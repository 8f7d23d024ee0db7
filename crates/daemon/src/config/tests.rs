//! Table-driven tests of the rsyncd.conf syntax rules and parameter semantics.

use super::*;

fn parse(text: &str) -> Config {
    Config::parse_str(text, "test.conf").expect("parses")
}

#[test]
fn syntax_rules() {
    // (config text, module, parameter, expected string value)
    let cases: &[(&str, &str, P, &str)] = &[
        ("[m]\npath = /a\n", "m", P::Path, "/a"),
        ("[m]\n  path   =   /a b  \n", "m", P::Path, "/a b"),
        ("[m]\npath = /a///\n", "m", P::Path, "/a"),
        ("[m]\npath = /\n", "m", P::Path, "/"),
        ("[m]\n# path = /x\npath = /a\n", "m", P::Path, "/a"),
        ("[m]\n; path = /x\npath = /a\n", "m", P::Path, "/a"),
        (
            "[m]\n   # indented comment\npath = /a\n",
            "m",
            P::Path,
            "/a",
        ),
        (
            "[m]\ncomment = a # not a comment\n",
            "m",
            P::Comment,
            "a # not a comment",
        ),
        ("[m]\ncomment = one \\\ntwo\n", "m", P::Comment, "one two"),
        ("[m]\ncomment = one\\\n  two\n", "m", P::Comment, "one  two"),
        ("[m]\ncomment = a\\  \nb\n", "m", P::Comment, "ab"),
        ("[m]\ncomment = a\r\n", "m", P::Comment, "a"),
        ("[m]\nCOMMENT = x\n", "m", P::Comment, "x"),
        ("[m]\nCom  ment = x\n", "m", P::Comment, "x"),
        ("[m]\ncomment=x\n", "m", P::Comment, "x"),
        ("[m]\ncomment =\n", "m", P::Comment, ""),
        ("[m]\ncomment = a=b\n", "m", P::Comment, "a=b"),
        ("[m]\ncom\\\nment = x\n", "m", P::Comment, "x"),
        ("comment = dflt\n[m]\n", "m", P::Comment, "dflt"),
        (
            "comment = dflt\n[m]\ncomment = own\n",
            "m",
            P::Comment,
            "own",
        ),
        ("[global]\ncomment = g\n[m]\n", "m", P::Comment, "g"),
        (
            "[m]\n[global]\ncomment = late\n[n]\n",
            "n",
            P::Comment,
            "late",
        ),
        ("[m]\n[global]\ncomment = late\n[n]\n", "m", P::Comment, ""),
        ("[  my   mod ]\ncomment = x\n", "my mod", P::Comment, "x"),
        ("[m] trailing junk\ncomment = x\n", "m", P::Comment, "x"),
        ("[m]\ncomment = a\n[M]\nuid = u\n", "m", P::Uid, "u"),
        ("[m]\ncomment = a\n[M]\nuid = u\n", "m", P::Comment, "a"),
        ("[m]\nuid = a\nuid = b\n", "m", P::Uid, "b"),
        ("[m]\ncomment = a\0comment = b\n", "m", P::Comment, "a"),
        ("\\\n[m]\nuid = x\n", "m", P::Uid, "x"),
    ];
    for (text, module, p, want) in cases {
        let cfg = parse(text);
        let m = cfg
            .module(module)
            .unwrap_or_else(|| panic!("module {module} in {text:?}"));
        assert_eq!(m.params.string(*p), *want, "{text:?}");
    }
}

#[test]
fn booleans_and_integers() {
    let cases: &[(&str, P, Value)] = &[
        ("read only = no", P::ReadOnly, Value::Bool(false)),
        ("read only = False", P::ReadOnly, Value::Bool(false)),
        ("read only = 0", P::ReadOnly, Value::Bool(false)),
        ("read only = YES", P::ReadOnly, Value::Bool(true)),
        ("read only = maybe", P::ReadOnly, Value::Bool(true)),
        ("list = no", P::List, Value::Bool(false)),
        ("use chroot = unset", P::UseChroot, Value::Bool3(None)),
        ("use chroot = -1", P::UseChroot, Value::Bool3(None)),
        ("use chroot = no", P::UseChroot, Value::Bool3(Some(false))),
        ("max connections = 4", P::MaxConnections, Value::Int(4)),
        ("max connections = 4x", P::MaxConnections, Value::Int(4)),
        ("max connections = x", P::MaxConnections, Value::Int(0)),
        ("timeout = -5", P::Timeout, Value::Int(-5)),
        (
            "syslog facility = local3",
            P::SyslogFacility,
            Value::Facility(libc::LOG_LOCAL3),
        ),
        (
            "syslog facility = 16",
            P::SyslogFacility,
            Value::Facility(16),
        ),
        (
            "syslog facility = nonsense",
            P::SyslogFacility,
            Value::Facility(libc::LOG_DAEMON),
        ),
    ];
    for (line, p, want) in cases {
        let cfg = parse(&format!("[m]\n{line}\n"));
        assert_eq!(cfg.module("m").unwrap().params.get(*p), want, "{line}");
    }
}

#[test]
fn defaults_match_rsyncd_conf_5() {
    let cfg = parse("[m]\n");
    let m = cfg.module("m").unwrap();
    assert!(m.read_only() && m.list() && m.strict_modes() && m.reverse_lookup());
    assert!(!m.write_only() && !m.ignore_errors() && !m.transfer_logging());
    assert_eq!(m.use_chroot(), None);
    assert_eq!(m.lock_file(), "/var/run/rsyncd.lock");
    assert_eq!(m.log_format(), "%o %h [%a] %m (%u) %f %l");
    assert_eq!(m.max_verbosity(), 1);
    assert_eq!(m.max_connections(), 0);
    assert!(m.dont_compress().contains("*.gz"));
    assert_eq!(cfg.listen_backlog(), 5);
    assert_eq!(cfg.port(), 0);
}

#[test]
fn reported_and_ignored_with_file_and_line() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "[m]\nbogus = 1\n",
            2,
            "IGNORING unknown parameter \"bogus\"",
        ),
        (
            "\n\n[m]\npid file = /x\n",
            4,
            "Global parameter pid file found in module section!",
        ),
        (
            "[m]\nread only = perhaps\n",
            2,
            "Badly formed boolean in configuration file: \"perhaps\".",
        ),
        (
            "[m]\njust words\n",
            2,
            "Ignoring badly formed line in config file: just words",
        ),
        ("[m]\nno equals", 2, "Unexpected end-of-file at: no equals"),
    ];
    for (text, line, msg) in cases {
        let cfg = parse(text);
        assert_eq!(
            cfg.warnings,
            vec![Warning {
                file: "test.conf".into(),
                line: *line,
                message: msg.to_string()
            }],
            "{text:?}"
        );
        assert!(cfg.module("m").is_some());
    }
}

#[test]
fn structural_errors_fail() {
    let cases: &[(&str, usize, &str)] = &[
        ("[]\n", 1, "Empty section name in config file."),
        ("\n[m\npath=/\n", 2, "Badly formed line in config file: m"),
        ("[m", 1, "Unexpected EOF in the config file: m"),
        (
            "[a/b]\n",
            1,
            "Warning: invalid section name in configuration file: a/b",
        ),
        ("[m]\n= x\n", 2, "Invalid parameter name in config file."),
        ("[m]\n&bogus x\n", 2, "Unknown directive: &bogus."),
    ];
    for (text, line, msg) in cases {
        match Config::parse_str(text, "t.conf") {
            Err(ConfigError::Syntax {
                line: l, message, ..
            }) => {
                assert_eq!((l, message.as_str()), (*line, *msg), "{text:?}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn module_lookup_is_exact() {
    let cfg = parse("[Files]\npath=/x\n");
    assert!(cfg.module("Files").is_some());
    assert!(cfg.module("files").is_none());
}

#[test]
fn include_saves_globals_and_merge_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let inc = dir.path().join("mods.conf");
    std::fs::write(&inc, "comment = inner\n[a]\npath = /a\n").unwrap();
    let merged = dir.path().join("x.inc");
    std::fs::write(&merged, "uid = merged\n").unwrap();
    let d = dir.path().join("conf.d");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("2.conf"), "[c]\npath = /c\n").unwrap();
    std::fs::write(d.join("1.conf"), "comment = one\n[b]\npath = /b\n").unwrap();
    std::fs::write(d.join("ignored.txt"), "[z]\n").unwrap();
    let text = format!(
        "comment = outer\n&include {}\n&merge {}\n&include {}\n[after]\n",
        inc.display(),
        merged.display(),
        d.display()
    );
    let cfg = parse(&text);
    let names: Vec<&str> = cfg.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "after"]);
    assert_eq!(cfg.module("a").unwrap().comment(), "inner");
    assert_eq!(cfg.module("b").unwrap().comment(), "one");
    // Each file of a directory starts from the defaults at the &include line.
    assert_eq!(cfg.module("c").unwrap().comment(), "outer");
    assert_eq!(cfg.module("after").unwrap().comment(), "outer");
    assert_eq!(cfg.module("after").unwrap().uid(), "merged");
}

#[test]
fn include_loop_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("self.conf");
    std::fs::write(&f, format!("&include {}\n", f.display())).unwrap();
    assert!(matches!(
        Config::load(&f, &[]),
        Err(ConfigError::TooDeep { .. })
    ));
    let missing = dir.path().join("nope");
    assert!(matches!(
        Config::load(&missing, &[]),
        Err(ConfigError::Open { .. })
    ));
}

#[test]
fn dparams_apply_at_end_of_global_section() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.conf");
    std::fs::write(&f, "read only = yes\n[m]\n[n]\nread only = yes\n").unwrap();
    let cfg = Config::load(&f, &["readonly=no".into(), "pidfile = /p".into()]).unwrap();
    assert!(!cfg.module("m").unwrap().read_only());
    assert!(cfg.module("n").unwrap().read_only());
    assert_eq!(cfg.pid_file(), "/p");
}

#[test]
fn vars_expand_from_environment() {
    std::env::set_var("RTSYNC_TEST_VAR", "val");
    set_session_var("RTSYNC_SESSION_VAR", "sess");
    assert_eq!(expand_vars("/home/%RTSYNC_SESSION_VAR%"), "/home/sess");
    for (raw, want) in [
        ("/home/%RTSYNC_TEST_VAR%/x", "/home/val/x"),
        ("%RTSYNC_NOT_SET_VAR%", "%RTSYNC_NOT_SET_VAR%"),
        ("100%", "100%"),
        ("%lower%", "%lower%"),
        ("%RTSYNC_TEST_VAR", "%RTSYNC_TEST_VAR"),
    ] {
        assert_eq!(expand_vars(raw), want, "{raw}");
    }
}

#[test]
fn hook_expansion_quotes_and_refuses_like_stock() {
    set_session_var("RSYNC_HOOKTEST_OK", "alice.b-1_x");
    set_session_var("RSYNC_HOOKTEST_BAD", "$(touch${IFS}x)");
    set_session_var("RSYNC_HOOKTEST_GLOB", "touc?");
    set_session_var("RSYNC_HOOKTEST_SPACE", "/srv/My Backups");
    set_session_var("OTHER_HOOKTEST", "a b;c");
    let ok = |s: &str| expand_vars_shell(s).unwrap();
    assert_eq!(
        ok("printf %s %RSYNC_HOOKTEST_OK%"),
        "printf %s 'alice.b-1_x'"
    );
    assert_eq!(ok("printf '%RSYNC_HOOKTEST_OK%'"), "printf 'alice.b-1_x'");
    assert_eq!(
        ok("printf \"%RSYNC_HOOKTEST_OK%\""),
        "printf \"'alice.b-1_x'\""
    );
    assert_eq!(
        ok("printf \"it's %RSYNC_HOOKTEST_OK%\""),
        "printf \"it's 'alice.b-1_x'\""
    );
    // Only RSYNC_* values are the peer's or the session's; others expand as written.
    assert_eq!(ok("echo %OTHER_HOOKTEST%"), "echo a b;c");
    assert_eq!(ok("echo 100% %NOPE_HOOKTEST%"), "echo 100% %NOPE_HOOKTEST%");
    for bad in [
        "RSYNC_HOOKTEST_BAD",
        "RSYNC_HOOKTEST_GLOB",
        "RSYNC_HOOKTEST_SPACE",
    ] {
        for t in ["x %V%", "x '%V%'", "x \"%V%\"", "sh -c 'x %V%'"] {
            let cmd = t.replace("V", bad);
            assert_eq!(
                expand_vars_shell(&cmd).unwrap_err(),
                format!("refusing to run shell hook: %{bad}% holds a shell metacharacter"),
                "{cmd}"
            );
        }
    }
}
