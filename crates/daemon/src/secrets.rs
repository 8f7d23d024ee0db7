//! `auth users` rules and the `secrets file`.
//!
//! `auth users` is a list of user-name patterns and `@group` patterns, each optionally followed
//! by `:deny`, `:ro` or `:rw`; the first rule matching the user decides. The secrets file has
//! `user:password` and `@group:password` lines; under `strict modes` it must not be readable by
//! others (and must be owned by root when the daemon runs as root).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use crate::access::wildmatch;
use crate::auth::{verify, Digest};

/// What a matching `auth users` rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// No suffix: the module's own `read only`.
    Default,
    /// `:ro`.
    ReadOnly,
    /// `:rw`.
    ReadWrite,
    /// `:deny`.
    Deny,
}

/// One `auth users` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// User-name pattern, or group pattern when `group` is set.
    pub pattern: String,
    /// An `@group` rule.
    pub group: bool,
    /// What it grants.
    pub grant: Grant,
}

/// Splits a list the way rsyncd.conf does: on commas alone when the value starts with a comma,
/// else on commas and whitespace.
pub fn conf_tokens(list: &str) -> Vec<String> {
    if let Some(rest) = list.strip_prefix(',') {
        rest.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    } else {
        list.split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Parses `auth users`.
pub fn parse_rules(list: &str) -> Vec<Rule> {
    conf_tokens(list)
        .into_iter()
        .map(|tok| {
            let (name, opts) = match tok.split_once(':') {
                Some((n, o)) => (n.to_string(), Some(o.to_ascii_lowercase())),
                None => (tok, None),
            };
            let grant = match opts.as_deref() {
                Some(o) if o.starts_with("ro") => Grant::ReadOnly,
                Some(o) if o.starts_with("rw") => Grant::ReadWrite,
                Some(o) if o.starts_with('d') => Grant::Deny,
                _ => Grant::Default,
            };
            match name.strip_prefix('@') {
                Some(g) => Rule {
                    pattern: g.to_string(),
                    group: true,
                    grant,
                },
                None => Rule {
                    pattern: name,
                    group: false,
                    grant,
                },
            }
        })
        .collect()
}

/// The first rule that matches `user` (or one of `groups`), and the group it matched through.
pub fn find_rule<'a>(
    rules: &'a [Rule],
    user: &str,
    groups: &[String],
) -> Option<(&'a Rule, Option<String>)> {
    rules.iter().find_map(|r| {
        if r.group {
            groups
                .iter()
                .find(|g| wildmatch(&r.pattern, g))
                .map(|g| (r, Some(g.clone())))
        } else {
            wildmatch(&r.pattern, user).then_some((r, None))
        }
    })
}

/// Names of the groups of a system user (empty if there is no such user).
pub fn user_groups(user: &str) -> Vec<String> {
    let Ok(cuser) = std::ffi::CString::new(user) else {
        return Vec::new();
    };
    // SAFETY: getpwnam returns a pointer to static storage or null; we copy what we need at once.
    let pw = unsafe { libc::getpwnam(cuser.as_ptr()) };
    if pw.is_null() {
        return Vec::new();
    }
    // SAFETY: pw is non-null and points at a valid passwd record.
    let base_gid = unsafe { (*pw).pw_gid };
    let mut n: libc::c_int = 64;
    let mut gids: Vec<libc::gid_t> = vec![0; n as usize];
    loop {
        // SAFETY: gids has room for n entries, as passed.
        let rc = unsafe { libc::getgrouplist(cuser.as_ptr(), base_gid, gids.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            gids.truncate(n as usize);
            break;
        }
        if n as usize <= gids.len() || n > 65536 {
            return Vec::new();
        }
        gids.resize(n as usize, 0);
    }
    gids.iter().filter_map(|g| group_name(*g)).collect()
}

fn group_name(gid: libc::gid_t) -> Option<String> {
    // SAFETY: as getpwnam above.
    let gr = unsafe { libc::getgrgid(gid) };
    if gr.is_null() {
        return None;
    }
    // SAFETY: gr is valid; gr_name is a NUL-terminated string.
    let name = unsafe { std::ffi::CStr::from_ptr((*gr).gr_name) };
    Some(name.to_string_lossy().into_owned())
}

/// Checks a response against the secrets file. `Err` is the reason logged (stock's words).
pub fn check_secret(
    secrets_file: &str,
    strict_modes: bool,
    user: &str,
    group: Option<&str>,
    digest: Digest,
    challenge: &str,
    response: &str,
) -> Result<(), String> {
    if secrets_file.is_empty() {
        return Err("no secrets file".into());
    }
    let trusted = crate::privs::check_trusted_path(std::path::Path::new(secrets_file));
    let file = match trusted.and_then(|_| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(secrets_file)
    }) {
        Ok(f) => f,
        Err(_) => return Err("no secrets file".into()),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("fstat({secrets_file}): {e}"))?;
    if strict_modes {
        if meta.mode() & 0o006 != 0 {
            return Err("ignoring secrets file: secrets file must not be other-accessible (see strict modes option)".into());
        }
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } == 0 && meta.uid() != 0 {
            return Err("ignoring secrets file: secrets file must be owned by root when running as root (see strict modes)".into());
        }
    }
    if user.starts_with('#') {
        return Err("invalid username".into());
    }
    let mut want_user = Some(user);
    let mut want_group = group;
    let mut err = "secret not found";
    for line in BufReader::new(file.take(1 << 20)).split(b'\n') {
        let Ok(line) = line else { break };
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches('\r');
        let (is_group, entry) = match line.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let want = if is_group {
            &mut want_group
        } else {
            &mut want_user
        };
        let Some(name) = *want else { continue };
        let Some(password) = entry.strip_prefix(name).and_then(|r| r.strip_prefix(':')) else {
            continue;
        };
        if verify(digest, password, challenge, response) {
            return Ok(());
        }
        err = "password mismatch";
        *want = None;
        if want_user.is_none() && want_group.is_none() {
            break;
        }
    }
    Err(err.into())
}

use std::io::Read as _;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn rules_parse() {
        let rules = parse_rules("alice, bob:RO @staff:rw eve:deny  carol:bogus");
        let got: Vec<(&str, bool, Grant)> = rules
            .iter()
            .map(|r| (r.pattern.as_str(), r.group, r.grant))
            .collect();
        assert_eq!(
            got,
            [
                ("alice", false, Grant::Default),
                ("bob", false, Grant::ReadOnly),
                ("staff", true, Grant::ReadWrite),
                ("eve", false, Grant::Deny),
                ("carol", false, Grant::Default),
            ]
        );
        let spaced = parse_rules(",@Domain Users:ro, joe");
        assert_eq!(spaced[0].pattern, "Domain Users");
        assert_eq!(spaced[1].pattern, "joe");
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = parse_rules("eve:deny e*:rw @wheel:ro *");
        let groups = vec!["wheel".to_string()];
        let cases: &[(&str, &[String], &str, Grant)] = &[
            ("eve", &[], "eve", Grant::Deny),
            ("ed", &[], "e*", Grant::ReadWrite),
            ("bob", &groups, "wheel", Grant::ReadOnly),
            ("bob", &[], "*", Grant::Default),
        ];
        for (user, groups, pattern, grant) in cases {
            let (r, _) = find_rule(&rules, user, groups).unwrap();
            assert_eq!((r.pattern.as_str(), r.grant), (*pattern, *grant), "{user}");
        }
        assert!(find_rule(&parse_rules("alice"), "bob", &[]).is_none());
    }

    #[test]
    fn secrets_file_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets");
        std::fs::write(&path, "# comment\nalice:pw1\n@staff:gpw\nbob:pw2\r\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let p = path.to_str().unwrap();
        let d = Digest::Md5;
        let resp = |pw: &str| crate::auth::auth_response(d, pw, "ch");
        let ok = |user, group, pw: &str| check_secret(p, true, user, group, d, "ch", &resp(pw));
        assert_eq!(ok("alice", None, "pw1"), Ok(()));
        assert_eq!(ok("bob", None, "pw2"), Ok(()));
        assert_eq!(ok("alice", None, "nope"), Err("password mismatch".into()));
        assert_eq!(ok("carol", None, "pw1"), Err("secret not found".into()));
        assert_eq!(ok("carol", Some("staff"), "gpw"), Ok(()));
        assert_eq!(ok("#", None, "x"), Err("invalid username".into()));
        assert_eq!(
            check_secret("", true, "alice", None, d, "ch", &resp("pw1")),
            Err("no secrets file".into())
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
        assert!(ok("alice", None, "pw1")
            .unwrap_err()
            .contains("other-accessible"));
        assert_eq!(
            check_secret(p, false, "alice", None, d, "ch", &resp("pw1")),
            Ok(())
        );
    }
}
