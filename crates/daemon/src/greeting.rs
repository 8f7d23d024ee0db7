//! The `@RSYNCD:` greeting each side sends first, and the protocol version both then use.

/// The protocol we speak.
pub const PROTOCOL_VERSION: u32 = 32;
/// Our sub-protocol (0: a released protocol).
pub const SUBPROTOCOL_VERSION: u32 = 0;
/// The oldest protocol we can serve.
pub const MIN_PROTOCOL_VERSION: u32 = 30;

/// Our greeting line, digest list included, offering `ours` (the daemon's `--protocol`, else
/// [`PROTOCOL_VERSION`]) as stock's daemon offers its protocol_version.
pub fn our_greeting(ours: u32) -> String {
    format!(
        "@RSYNCD: {ours}.{} {}\n",
        subprotocol(ours),
        crate::auth::digest_list()
    )
}

/// The sub-protocol that goes with offering `ours`: only our newest protocol has one.
fn subprotocol(ours: u32) -> u32 {
    if ours < PROTOCOL_VERSION {
        0
    } else {
        SUBPROTOCOL_VERSION
    }
}

/// What the peer's greeting said and what follows from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerGreeting {
    /// The peer's protocol.
    pub protocol: u32,
    /// The peer's sub-protocol.
    pub sub: u32,
    /// The digest names the peer listed (`None`: no list).
    pub digests: Option<String>,
    /// The protocol both sides will use.
    pub negotiated: u32,
}

/// Parses the client's greeting line (without its newline), answering our offer of `ours`.
/// `Err` is the `@ERROR` line body a stock daemon sends for it.
pub fn parse_client_greeting(line: &str, ours: u32) -> Result<PeerGreeting, String> {
    let Some(rest) = line.strip_prefix("@RSYNCD:") else {
        return Err("protocol startup error".into());
    };
    let rest = rest.trim_start();
    let (major, after) = leading_int(rest).ok_or_else(|| "protocol startup error".to_string())?;
    let sub = after
        .strip_prefix('.')
        .and_then(leading_int)
        .map(|(s, _)| s);
    let protocol = u32::try_from(major).unwrap_or(0);
    let sub = match sub {
        Some(s) => u32::try_from(s).unwrap_or(0),
        None if protocol >= 30 => {
            return Err(format!("your client omitted the subprotocol value: {line}"));
        }
        None => 0,
    };
    // The digest list is whatever follows the first space after the "@RSYNCD: " prefix.
    let digests = line
        .get(9..)
        .and_then(|s| s.find(' ').map(|i| s[i + 1..].to_string()));
    if digests.is_none() && protocol > 31 {
        return Err(format!("your client omitted the digest name list: {line}"));
    }
    let negotiated = if ours > protocol {
        if sub != 0 {
            protocol.saturating_sub(1)
        } else {
            protocol
        }
    } else if ours == protocol && sub != subprotocol(ours) {
        ours - 1
    } else {
        ours
    };
    Ok(PeerGreeting {
        protocol,
        sub,
        digests,
        negotiated,
    })
}

/// `%d` as sscanf reads it: optional sign and digits; returns the value and the rest.
fn leading_int(s: &str) -> Option<(i64, &str)> {
    let s = s.trim_start();
    let sign_len = usize::from(s.starts_with(['-', '+']));
    let digits = s[sign_len..].bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let end = sign_len + digits;
    let v: i64 = s[sign_len..end].parse().unwrap_or(i64::MAX);
    Some((if s.starts_with('-') { -v } else { v }, &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_greetings() {
        let all = "sha512 sha256 sha1 md5 md4";
        type Want<'a> = Result<(u32, Option<&'a str>, u32), &'a str>;
        let cases: &[(&str, Want)] = &[
            (
                "@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4",
                Ok((32, Some(all), 32)),
            ),
            ("@RSYNCD: 31.0", Ok((31, None, 31))),
            ("@RSYNCD: 31.0 md5", Ok((31, Some("md5"), 31))),
            ("@RSYNCD: 30.0", Ok((30, None, 30))),
            ("@RSYNCD: 33.0 md5", Ok((33, Some("md5"), 32))),
            ("@RSYNCD: 32.1 md5", Ok((32, Some("md5"), 31))),
            ("@RSYNCD: 31.1", Ok((31, None, 30))),
            ("@RSYNCD: 29", Ok((29, None, 29))),
            ("@RSYNCD:32.0 md5", Ok((32, Some("md5"), 32))),
            (
                "@RSYNCD: 32",
                Err("your client omitted the subprotocol value: @RSYNCD: 32"),
            ),
            (
                "@RSYNCD: 32.0",
                Err("your client omitted the digest name list: @RSYNCD: 32.0"),
            ),
            ("hello", Err("protocol startup error")),
            ("@RSYNCD: x", Err("protocol startup error")),
            ("", Err("protocol startup error")),
        ];
        for (line, want) in cases {
            let got = parse_client_greeting(line, PROTOCOL_VERSION)
                .map(|g| (g.protocol, g.digests, g.negotiated));
            let want = want
                .map(|(p, d, n)| (p, d.map(str::to_string), n))
                .map_err(str::to_string);
            assert_eq!(got, want, "{line:?}");
        }
    }

    #[test]
    fn greeting_text() {
        assert_eq!(
            our_greeting(PROTOCOL_VERSION),
            "@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n"
        );
        assert_eq!(
            our_greeting(30),
            "@RSYNCD: 30.0 sha512 sha256 sha1 md5 md4\n"
        );
    }

    /// A daemon started with `--protocol=30` offers 30 and settles on no more.
    #[test]
    fn a_lower_offer_caps_the_protocol() {
        let line = "@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4";
        assert_eq!(parse_client_greeting(line, 30).unwrap().negotiated, 30);
        assert_eq!(parse_client_greeting(line, 31).unwrap().negotiated, 31);
        let line = "@RSYNCD: 30.0";
        assert_eq!(parse_client_greeting(line, 31).unwrap().negotiated, 30);
    }
}
