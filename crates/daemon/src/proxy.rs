//! The PROXY protocol header (v1 text, v2 binary) a load balancer puts in front of a
//! connection when `proxy protocol = yes`: it names the real client, whose address then
//! stands in for the balancer's in `hosts allow` checks and the log. Only a direct peer
//! listed in `proxy protocol hosts` may send one; anything malformed ends the connection.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The v2 signature.
const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Longest v1 line, `\r\n` included (the specification's bound).
const V1_MAX: usize = 107;
/// Largest v2 address block accepted (two UNIX socket paths: the largest family).
const V2_MAX: usize = 216;

/// Reads the header at the start of `r`. `Ok(Some(ip))`: the client is `ip`; `Ok(None)`:
/// the header names no address (v1 `UNKNOWN`, v2 `LOCAL` or an unsupported family) and the
/// direct peer stays the client; `Err`: why the header is refused.
pub fn read_header(r: &mut dyn Read) -> Result<Option<IpAddr>, String> {
    let mut head = [0u8; 12];
    r.read_exact(&mut head)
        .map_err(|e| format!("reading the header: {e}"))?;
    if &head == V2_SIG {
        return read_v2(r);
    }
    if head.starts_with(b"PROXY ") {
        return read_v1(r, &head);
    }
    Err("no PROXY protocol header".into())
}

fn read_v1(r: &mut dyn Read, head: &[u8]) -> Result<Option<IpAddr>, String> {
    let mut line = head.to_vec();
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX {
            return Err("over-long v1 header".into());
        }
        let mut b = [0u8; 1];
        r.read_exact(&mut b)
            .map_err(|e| format!("reading the header: {e}"))?;
        line.push(b[0]);
    }
    let text = std::str::from_utf8(&line[6..line.len() - 2])
        .map_err(|_| "v1 header is not text".to_string())?;
    let fields: Vec<&str> = text.split(' ').collect();
    if fields.first() == Some(&"UNKNOWN") {
        return Ok(None);
    }
    let [fam, src, dst, sport, dport] = fields[..] else {
        return Err("malformed v1 header".into());
    };
    let parse = |s: &str| -> Result<IpAddr, String> {
        match fam {
            "TCP4" => s.parse::<Ipv4Addr>().map(IpAddr::V4),
            "TCP6" => s.parse::<Ipv6Addr>().map(IpAddr::V6),
            _ => return Err(format!("unknown v1 family {fam:?}")),
        }
        .map_err(|_| "bad address in v1 header".to_string())
    };
    let src = parse(src)?;
    parse(dst)?;
    for p in [sport, dport] {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return Err("bad port in v1 header".into());
        }
    }
    Ok(Some(src))
}

fn read_v2(r: &mut dyn Read) -> Result<Option<IpAddr>, String> {
    let mut h = [0u8; 4];
    r.read_exact(&mut h)
        .map_err(|e| format!("reading the header: {e}"))?;
    let (version, command, family) = (h[0] >> 4, h[0] & 0x0f, h[1]);
    let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if version != 2 {
        return Err(format!("unsupported v2 version {version}"));
    }
    if command > 1 {
        return Err(format!("unknown v2 command {command}"));
    }
    if len > V2_MAX {
        return Err("over-long v2 header".into());
    }
    let mut addr = vec![0u8; len];
    r.read_exact(&mut addr)
        .map_err(|e| format!("reading the header: {e}"))?;
    if command == 0 {
        return Ok(None); // LOCAL: the balancer's own connection (health checks).
    }
    match family >> 4 {
        1 => {
            if len < 12 {
                return Err("short v2 IPv4 address block".into());
            }
            let a: [u8; 4] = addr[..4].try_into().expect("4 bytes");
            Ok(Some(IpAddr::V4(Ipv4Addr::from(a))))
        }
        2 => {
            if len < 36 {
                return Err("short v2 IPv6 address block".into());
            }
            let a: [u8; 16] = addr[..16].try_into().expect("16 bytes");
            Ok(Some(IpAddr::V6(Ipv6Addr::from(a))))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<IpAddr>, String> {
        read_header(&mut &bytes[..])
    }

    fn v2(cmd: u8, fam: u8, addr: &[u8]) -> Vec<u8> {
        let mut v = V2_SIG.to_vec();
        v.extend([0x20 | cmd, fam]);
        v.extend((addr.len() as u16).to_be_bytes());
        v.extend_from_slice(addr);
        v
    }

    #[test]
    fn v1_headers() {
        let ip = |s: &str| Ok(Some(s.parse::<IpAddr>().unwrap()));
        assert_eq!(
            parse(b"PROXY TCP4 10.1.2.3 127.0.0.1 40000 873\r\n"),
            ip("10.1.2.3")
        );
        assert_eq!(
            parse(b"PROXY TCP6 fd00::1234 ::1 40000 873\r\n"),
            ip("fd00::1234")
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), Ok(None));
        for bad in [
            &b"PROXY TCP4 10.1.2.3\r\n"[..],
            b"PROXY TCP9 10.1.2.3 127.0.0.1 40000 873\r\n",
            b"PROXY TCP4 10.1.2.3 127.0.0.1 abc 873\r\n",
            b"PROXY TCP4 fd00::1 127.0.0.1 1 2\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut long = b"PROXY TCP4 ".to_vec();
        long.extend([b'1'; 200]);
        assert!(parse(&long).is_err());
    }

    #[test]
    fn v2_headers() {
        let mut a4 = vec![10, 9, 8, 7, 127, 0, 0, 1];
        a4.extend([0, 1, 0, 2]);
        assert_eq!(
            parse(&v2(1, 0x11, &a4)),
            Ok(Some("10.9.8.7".parse().unwrap()))
        );
        let mut a6 = "fd00::abcd".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        a6.extend(Ipv6Addr::LOCALHOST.octets());
        a6.extend([0, 1, 0, 2]);
        assert_eq!(
            parse(&v2(1, 0x21, &a6)),
            Ok(Some("fd00::abcd".parse().unwrap()))
        );
        assert_eq!(parse(&v2(0, 0, b"")), Ok(None));
        assert_eq!(parse(&v2(1, 0x31, &[0; 4])), Ok(None));
        assert!(parse(&v2(1, 0x11, &[0; 8])).is_err());
        assert!(parse(&v2(7, 0x11, &[0; 12])).is_err());
        let mut bad_ver = v2(1, 0x11, &[0; 12]);
        bad_ver[12] = 0x31;
        assert!(parse(&bad_ver).is_err());
        let mut huge = V2_SIG.to_vec();
        huge.extend([0x21, 0x11, 0x10, 0x00]);
        assert!(parse(&huge).is_err());
    }
}
