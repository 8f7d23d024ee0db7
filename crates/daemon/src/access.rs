//! `hosts allow` / `hosts deny`: IP addresses, CIDR and address/netmask, host-name wildcards.
//!
//! Semantics of rsyncd.conf(5): a peer matching the allow list is always let in; with an allow
//! list and no deny list everyone else is refused; otherwise a peer matching the deny list is
//! refused and everyone else let in. Deny rules fail closed: a deny host name that cannot be
//! resolved, or a wildcard deny pattern when the peer's own name could not be looked up, counts
//! as a match.

use std::net::{IpAddr, ToSocketAddrs};

/// What is known of the peer's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostName {
    /// Reverse lookup (with forward confirmation) gave this name.
    Name(String),
    /// The lookup failed; shown as `UNKNOWN`.
    Unknown,
    /// `reverse lookup = no`; shown as `UNDETERMINED`.
    Undetermined,
}

impl HostName {
    /// The name as stock shows it in messages and logs.
    pub fn as_str(&self) -> &str {
        match self {
            HostName::Name(n) => n,
            HostName::Unknown => "UNKNOWN",
            HostName::Undetermined => "UNDETERMINED",
        }
    }
}

/// Looks the peer's name up: reverse DNS, then a forward lookup that must give the address back.
/// The second value is what stock logs when the lookup fails.
pub fn lookup_host_name(addr: IpAddr) -> (HostName, Option<String>) {
    let sa = std::net::SocketAddr::new(addr, 0);
    let name = match reverse_lookup(&sa) {
        Ok(name) => name,
        Err(why) => {
            return (
                HostName::Unknown,
                Some(format!("name lookup failed for {addr}: {why}")),
            )
        }
    };
    match (name.as_str(), 0).to_socket_addrs() {
        Ok(mut addrs) => {
            if addrs.any(|a| a.ip() == addr) {
                (HostName::Name(name), None)
            } else {
                let msg = format!("{addr} is not a known address for \"{name}\": spoofed address?");
                (HostName::Unknown, Some(msg))
            }
        }
        Err(e) => (
            HostName::Unknown,
            Some(format!("forward name lookup for {name} failed: {e}")),
        ),
    }
}

fn reverse_lookup(sa: &std::net::SocketAddr) -> Result<String, String> {
    let (storage, len) = sockaddr_of(sa);
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes; `host` is a writable buffer of the
    // size passed; the service buffer is absent.
    let rc = unsafe {
        libc::getnameinfo(
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        // SAFETY: gai_strerror returns a static NUL-terminated message.
        let why = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(rc)) };
        return Err(why.to_string_lossy().into_owned());
    }
    // SAFETY: getnameinfo NUL-terminates the host buffer on success.
    let c = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    Ok(c.to_string_lossy().into_owned())
}

fn sockaddr_of(sa: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match sa {
        std::net::SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Decides whether the peer may use a module. `host` may be replaced by a configured name that
/// a forward lookup confirmed (when reverse lookups are off), as stock does.
pub fn allow_access(
    allow: &str,
    deny: &str,
    addr: &str,
    host: &mut HostName,
    forward_lookup: bool,
) -> bool {
    let allow = (!allow.trim().is_empty()).then_some(allow);
    let deny = (!deny.trim().is_empty()).then_some(deny);
    if let Some(allow) = allow {
        if list_matches(allow, addr, host, forward_lookup, false) {
            return true;
        }
        if deny.is_none() {
            return false;
        }
    }
    if let Some(deny) = deny {
        if list_matches(deny, addr, host, forward_lookup, true) {
            return false;
        }
    }
    true
}

fn list_matches(list: &str, addr: &str, host: &mut HostName, forward: bool, deny: bool) -> bool {
    let list = list.to_ascii_lowercase();
    list.split([' ', ',', '\t'])
        .filter(|t| !t.is_empty())
        .any(|tok| match_hostname(host, addr, tok, forward, deny) || match_address(addr, tok))
}

fn is_address_like(tok: &str) -> bool {
    tok.bytes().all(|c| c == b'.' || c.is_ascii_digit())
}

fn match_hostname(host: &mut HostName, addr: &str, tok: &str, forward: bool, deny: bool) -> bool {
    if tok.starts_with('@') {
        // NIS netgroups are not supported; a netgroup deny rule fails closed.
        return deny;
    }
    if wildmatch_ci(tok, host.as_str()) {
        return true;
    }
    let wild = tok.contains(['*', '?', '[']);
    let address = is_address_like(tok) || tok.contains([':', '/']);
    if deny && wild && !address && *host == HostName::Unknown {
        // We could not learn the peer's name, so we cannot prove it is not a denied one.
        return true;
    }
    if !forward || address || wild {
        return false;
    }
    match (tok, 0).to_socket_addrs() {
        Err(_) => deny,
        Ok(addrs) => {
            let found = addrs
                .filter(|a| a.is_ipv4())
                .any(|a| a.ip().to_string() == addr);
            if found && *host == HostName::Undetermined {
                *host = HostName::Name(tok.to_string());
            }
            found
        }
    }
}

fn match_address(addr: &str, tok: &str) -> bool {
    let (ip_part, mask) = match tok.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (tok, None),
    };
    if !is_address_like(ip_part) && !ip_part.contains(':') {
        return false;
    }
    let (Ok(a), Ok(t)) = (addr.parse::<IpAddr>(), ip_part.parse::<IpAddr>()) else {
        return false;
    };
    let (a, t): (Vec<u8>, Vec<u8>) = match (a, t) {
        (IpAddr::V4(a), IpAddr::V4(t)) => (a.octets().to_vec(), t.octets().to_vec()),
        (IpAddr::V6(a), IpAddr::V6(t)) => (a.octets().to_vec(), t.octets().to_vec()),
        _ => return false,
    };
    let bits_max = a.len() * 8;
    let mask: Vec<u8> = match mask {
        None => make_mask(bits_max, a.len()),
        Some(m) => match m.parse::<IpAddr>() {
            Ok(IpAddr::V4(m)) if a.len() == 4 => m.octets().to_vec(),
            Ok(IpAddr::V6(m)) if a.len() == 16 => m.octets().to_vec(),
            _ => {
                let Ok(bits) = m.parse::<usize>() else {
                    return false;
                };
                if bits == 0 {
                    return true;
                }
                if bits > bits_max {
                    return false;
                }
                make_mask(bits, a.len())
            }
        },
    };
    a.iter()
        .zip(&t)
        .zip(&mask)
        .all(|((x, y), m)| (x ^ y) & m == 0)
}

fn make_mask(bits: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let have = bits.saturating_sub(i * 8).min(8);
            if have == 0 {
                0
            } else {
                0xffu8 << (8 - have)
            }
        })
        .collect()
}

/// Shell-style wildcard match (`*`, `?`, `[...]` with `!`/`^` negation and ranges).
pub fn wildmatch(pattern: &str, text: &str) -> bool {
    wild(pattern.as_bytes(), text.as_bytes(), false)
}

/// [`wildmatch`] ignoring ASCII case.
pub fn wildmatch_ci(pattern: &str, text: &str) -> bool {
    wild(pattern.as_bytes(), text.as_bytes(), true)
}

fn wild(p: &[u8], t: &[u8], ci: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if ci {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    // Iterative matcher with single-star backtracking: linear in practice, no recursion depth.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    while pi < p.len() && p[pi] == b'*' {
                        pi += 1;
                    }
                    star = Some((pi, ti));
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(&p[pi..], t[ti], ci) {
                        if matched {
                            pi += next;
                            ti += 1;
                            continue;
                        }
                    } else if eq(b'[', t[ti]) {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() && eq(p[pi + 1], t[ti]) => {
                    pi += 2;
                    ti += 1;
                    continue;
                }
                c if c != b'\\' && eq(c, t[ti]) => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Matches one `[...]` class at the start of `p`; returns (matched, class length), or `None`
/// when the class is not closed.
fn class(p: &[u8], c: u8, ci: bool) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let c_low = if ci { c.to_ascii_lowercase() } else { c };
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let lo = p[i];
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            let hi = p[i + 2];
            let (lo, hi) = if ci {
                (lo.to_ascii_lowercase(), hi.to_ascii_lowercase())
            } else {
                (lo, hi)
            };
            matched |= (lo..=hi).contains(&c_low);
            i += 3;
        } else {
            let lo = if ci { lo.to_ascii_lowercase() } else { lo };
            matched |= lo == c_low;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> HostName {
        HostName::Name(n.into())
    }

    #[test]
    fn allow_and_deny_tables() {
        // (allow, deny, addr, host, expected)
        let cases: &[(&str, &str, &str, HostName, bool)] = &[
            ("", "", "10.0.0.1", name("a"), true),
            ("127.0.0.1", "", "127.0.0.1", name("localhost"), true),
            ("127.0.0.1", "", "127.0.0.2", name("x"), false),
            ("127.0.0.0/8", "", "127.1.2.3", name("x"), true),
            ("127.0.0.0/255.0.0.0", "", "127.1.2.3", name("x"), true),
            ("127.0.0.0/255.255.255.0", "", "127.0.1.3", name("x"), false),
            ("10.0.0.0/0", "", "127.0.0.2", name("x"), true),
            ("127.0.0.0/33", "", "127.0.0.2", name("x"), false),
            ("127.0.0.0/x", "", "127.0.0.2", name("x"), false),
            ("127.0.0.2, 127.0.0.3", "", "127.0.0.3", name("x"), true),
            ("::1", "", "::1", name("x"), true),
            ("::1", "", "127.0.0.1", name("x"), false),
            ("fe80::/10", "", "fe80::1", name("x"), true),
            ("", "127.0.0.2", "127.0.0.2", name("x"), false),
            ("", "127.0.0.2", "127.0.0.1", name("x"), true),
            ("127.0.0.1", "*", "127.0.0.1", name("x"), true),
            ("127.0.0.1", "*", "127.0.0.2", name("x"), false),
            (
                "*.example.com",
                "",
                "10.1.1.1",
                name("Host.EXAMPLE.com"),
                true,
            ),
            ("LOCALHOST", "", "127.0.0.1", name("localhost"), true),
            ("local?ost", "", "127.0.0.1", name("localhost"), true),
            ("", "*.evil.net", "10.1.1.1", name("good.org"), true),
            ("", "*.evil.net", "10.1.1.1", HostName::Unknown, false),
            ("", "unknown", "10.1.1.1", HostName::Unknown, false),
            ("", "@netgroup", "10.1.1.1", name("x"), false),
        ];
        for (allow, deny, addr, host, want) in cases {
            let mut h = host.clone();
            assert_eq!(
                allow_access(allow, deny, addr, &mut h, false),
                *want,
                "allow={allow:?} deny={deny:?} addr={addr} host={host:?}"
            );
        }
    }

    #[test]
    fn unresolvable_deny_name_fails_closed() {
        let mut h = HostName::Undetermined;
        let bad = "no-such-host.invalid";
        assert!(!allow_access("", bad, "127.0.0.1", &mut h, true));
        assert!(!allow_access(bad, "", "127.0.0.1", &mut h, true));
    }

    #[test]
    fn wildmatch_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "abc", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbb", false),
            ("a?c", "abc", true),
            ("[ab]x", "bx", true),
            ("[!ab]x", "bx", false),
            ("[a-c]", "b", true),
            ("[a-c]", "d", false),
            ("*.example.*", "www.example.org", true),
            ("fred", "fred", true),
            ("fred", "freddy", false),
            ("\\*", "*", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(wildmatch(p, t), *want, "{p} ~ {t}");
        }
        assert!(wildmatch_ci("ABC*", "abcd"));
        assert!(!wildmatch("ABC*", "abcd"));
    }
}
