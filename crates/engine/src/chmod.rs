//! `--chmod` rules: comma-separated `[DF][ugoa][+-=][rwxXst]` clauses or octal modes.

/// Applies `--chmod` rule strings to permission bits of a file or directory.
pub fn apply_chmod(rules: &[String], mode: u32, is_dir: bool) -> u32 {
    let mut mode = mode & 0o7777;
    for rule in rules {
        for clause in rule.split(',') {
            mode = apply_clause(clause.trim(), mode, is_dir);
        }
    }
    mode
}

fn apply_clause(clause: &str, mode: u32, is_dir: bool) -> u32 {
    let mut c = clause.as_bytes();
    match c.first() {
        Some(b'D') if !is_dir => return mode,
        Some(b'F') if is_dir => return mode,
        Some(b'D') | Some(b'F') => c = &c[1..],
        _ => {}
    }
    if !c.is_empty() && c.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return u32::from_str_radix(std::str::from_utf8(c).unwrap_or("0"), 8).unwrap_or(mode);
    }
    let mut who = 0u32;
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            b'u' => who |= 0o4700,
            b'g' => who |= 0o2070,
            b'o' => who |= 0o1007,
            b'a' => who |= 0o7777,
            _ => break,
        }
        i += 1;
    }
    let explicit_who = who != 0;
    if !explicit_who {
        who = 0o7777;
    }
    let mut mode = mode;
    while i < c.len() {
        let op = c[i];
        if !matches!(op, b'+' | b'-' | b'=') {
            return mode;
        }
        i += 1;
        let mut bits = 0u32;
        while i < c.len() && !matches!(c[i], b'+' | b'-' | b'=') {
            bits |= match c[i] {
                b'r' => 0o444,
                b'w' => 0o222,
                b'x' => 0o111,
                b'X' if is_dir || mode & 0o111 != 0 => 0o111,
                b'X' => 0,
                b's' => 0o6000,
                b't' => 0o1000,
                _ => 0,
            };
            i += 1;
        }
        let mut bits = bits & who;
        if !explicit_who {
            // Like chmod(1) without a who: the umask is not consulted by rsync; all classes.
            bits &= 0o7777;
        }
        mode = match op {
            b'+' => mode | bits,
            b'-' => mode & !bits,
            _ => (mode & !(who & 0o7777)) | bits,
        };
    }
    mode
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses() {
        let r = |s: &str| vec![s.to_string()];
        assert_eq!(apply_chmod(&r("D755,F644"), 0o700, true), 0o755);
        assert_eq!(apply_chmod(&r("D755,F644"), 0o700, false), 0o644);
        assert_eq!(apply_chmod(&r("go-w"), 0o666, false), 0o644);
        assert_eq!(apply_chmod(&r("a+rX"), 0o600, true), 0o755);
        assert_eq!(apply_chmod(&r("a+rX"), 0o600, false), 0o644);
        assert_eq!(apply_chmod(&r("u=rw,go=r"), 0o777, false), 0o644);
        assert_eq!(apply_chmod(&r("Fo-rwx"), 0o777, false), 0o770);
    }
}
