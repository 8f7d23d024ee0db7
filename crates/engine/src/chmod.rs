//! `--chmod` rules: comma-separated `[DF][ugoa][+-=][rwxXst|ugo]` clauses or octal modes.
//!
//! The semantics follow rsync's, which differ from chmod(1) in places users notice: a clause
//! without a "who" (`+w`, `D+w`) is masked by the umask, `X` looks at the mode the entry had
//! before any clause applied, `=` leaves setuid/setgid alone unless `s` is named, and a clause
//! may copy another class's bits (`g=u`).

const CHMOD_BITS: u32 = 0o7777;

/// One parsed clause, as the AND/OR masks it applies to a mode.
struct Clause {
    /// Applies only to directories (`D`) or only to non-directories (`F`), when set.
    dirs_only: bool,
    files_only: bool,
    /// `X`: execute bits are added only to directories and already executable entries.
    x_keep: bool,
    and: u32,
    or: u32,
    /// `g=u`-style copies: the classes copied from, the classes copied to, and a mask.
    copy_src: u32,
    copy_dst: u32,
    copy_and: u32,
    subtract: bool,
}

/// Applies `--chmod` rule strings to permission bits of a file or directory; `umask` masks the
/// clauses that name no class.
pub fn apply_chmod(rules: &[String], mode: u32, is_dir: bool, umask: u32) -> u32 {
    let original_x = mode & 0o111 != 0;
    let mut mode = mode & CHMOD_BITS;
    for rule in rules {
        for clause in rule.split(',').filter_map(|c| parse_clause(c, umask)) {
            if (clause.dirs_only && !is_dir) || (clause.files_only && is_dir) {
                continue;
            }
            let copied = copy_bits(mode, clause.copy_src, clause.copy_dst) & clause.copy_and;
            mode &= clause.and;
            if clause.x_keep && !original_x && !is_dir {
                mode |= clause.or & !0o111;
            } else {
                mode |= clause.or;
            }
            if clause.subtract {
                mode &= CHMOD_BITS & !copied;
            } else {
                mode |= copied;
            }
        }
    }
    mode
}

/// Whether every clause of a `--chmod` argument parses.
pub fn is_valid_chmod(rule: &str) -> bool {
    rule.split(',').all(|c| parse_clause(c, 0).is_some())
}

fn copy_bits(mode: u32, src: u32, dst: u32) -> u32 {
    let mut bits = 0;
    if src & 0o100 != 0 {
        bits |= (mode >> 6) & 7;
    }
    if src & 0o010 != 0 {
        bits |= (mode >> 3) & 7;
    }
    if src & 0o001 != 0 {
        bits |= mode & 7;
    }
    dst * bits
}

fn parse_clause(clause: &str, umask: u32) -> Option<Clause> {
    let c = clause.as_bytes();
    let (mut dirs_only, mut files_only) = (false, false);
    let mut who = 0u32;
    let mut special_of_who = 0u32;
    let mut i = 0;
    let op = loop {
        match *c.get(i)? {
            b'D' if !files_only => dirs_only = true,
            b'F' if !dirs_only => files_only = true,
            b'u' => (who, special_of_who) = (who | 0o100, special_of_who | 0o4000),
            b'g' => (who, special_of_who) = (who | 0o010, special_of_who | 0o2000),
            b'o' => who |= 0o001,
            b'a' => (who, special_of_who) = (who | 0o111, special_of_who | 0o6000),
            op @ (b'+' | b'-' | b'=') => break op,
            b'0'..=b'7' if who == 0 => return parse_octal(&c[i..], dirs_only, files_only),
            _ => return None,
        }
        i += 1;
    };
    let (mut what, mut special, mut copy_src, mut x_keep) = (0u32, 0u32, 0u32, false);
    for &b in &c[i + 1..] {
        let perm = matches!(b, b'r' | b'w' | b'x' | b'X' | b's' | b't');
        if perm && copy_src != 0 {
            return None;
        }
        match b {
            b'r' => what |= 4,
            b'w' => what |= 2,
            b'X' => (what, x_keep) = (what | 1, true),
            b'x' => what |= 1,
            b's' if special_of_who != 0 => special |= special_of_who,
            b's' => special = 0o4000,
            b't' => special |= 0o1000,
            b'u' | b'g' | b'o' if what != 0 || special != 0 || copy_src != 0 => return None,
            b'u' => copy_src = 0o100,
            b'g' => copy_src = 0o010,
            b'o' => copy_src = 0o001,
            _ => return None,
        }
    }
    let who_named = who != 0;
    let (where_, bits) = if who_named {
        (who, who * what)
    } else {
        (0o111, (0o111 * what) & !umask)
    };
    let copy_and = if who_named { CHMOD_BITS } else { !umask };
    let (and, or) = match op {
        b'+' => (CHMOD_BITS, bits | special),
        b'-' => (CHMOD_BITS & !bits & !special, 0),
        _ => {
            let mut keep = CHMOD_BITS & !(where_ * 7);
            if special != 0 {
                keep &= !special_of_who;
            }
            if copy_src != 0 {
                keep &= !dest_special_bits(where_);
            }
            (keep, bits | special)
        }
    };
    Some(Clause {
        dirs_only,
        files_only,
        x_keep,
        and,
        or,
        copy_src,
        copy_dst: where_,
        copy_and,
        subtract: op == b'-',
    })
}

/// The setuid/setgid/sticky bits belonging to the classes in `where_`.
fn dest_special_bits(where_: u32) -> u32 {
    let mut bits = 0;
    if where_ & 0o100 != 0 {
        bits |= 0o4000;
    }
    if where_ & 0o010 != 0 {
        bits |= 0o2000;
    }
    if where_ & 0o001 != 0 {
        bits |= 0o1000;
    }
    bits
}

fn parse_octal(digits: &[u8], dirs_only: bool, files_only: bool) -> Option<Clause> {
    let mut value = 0u32;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) {
            return None;
        }
        value = value * 8 + u32::from(d - b'0');
        if value > CHMOD_BITS {
            return None;
        }
    }
    Some(Clause {
        dirs_only,
        files_only,
        x_keep: false,
        and: 0,
        or: value,
        copy_src: 0,
        copy_dst: 0,
        copy_and: CHMOD_BITS,
        subtract: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Vec<String> {
        vec![s.to_string()]
    }

    #[test]
    fn clauses() {
        assert_eq!(apply_chmod(&r("D755,F644"), 0o700, true, 0o22), 0o755);
        assert_eq!(apply_chmod(&r("D755,F644"), 0o700, false, 0o22), 0o644);
        assert_eq!(apply_chmod(&r("go-w"), 0o666, false, 0o22), 0o644);
        assert_eq!(apply_chmod(&r("a+rX"), 0o600, true, 0o22), 0o755);
        assert_eq!(apply_chmod(&r("a+rX"), 0o600, false, 0o22), 0o644);
        assert_eq!(apply_chmod(&r("u=rw,go=r"), 0o777, false, 0o22), 0o644);
        assert_eq!(apply_chmod(&r("Fo-rwx"), 0o777, false, 0o22), 0o770);
    }

    #[test]
    fn a_clause_without_who_is_masked_by_the_umask() {
        assert_eq!(apply_chmod(&r("D+w"), 0o555, true, 0o002), 0o775);
        assert_eq!(apply_chmod(&r("+x"), 0o644, false, 0o022), 0o755);
    }

    #[test]
    fn setuid_and_copies() {
        assert_eq!(apply_chmod(&r("ug-s,a+rX"), 0o4700, false, 0o22), 0o755);
        assert_eq!(apply_chmod(&r("u=rw"), 0o4700, false, 0o22), 0o4600);
        assert_eq!(apply_chmod(&r("g=u"), 0o740, false, 0o22), 0o770);
        assert!(!is_valid_chmod("q+r"));
        assert!(is_valid_chmod("D2775,F664"));
    }
}
