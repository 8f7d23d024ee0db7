//! inotifywait's output: the `--format` mini-language, the default line and `--csv`.

use std::ffi::CString;

use rtsync_watch::mask;

/// The most an output line may hold, as in the original.
const MAX_LINE: usize = 4096;

/// What a line is made of: the watch's name, the entry name and the raw event.
pub struct Subject<'a> {
    /// Name of the watch (`%w`).
    pub watch: &'a [u8],
    /// Entry name (`%f`), empty when the event is about the watched object itself.
    pub name: &'a [u8],
    /// Event bits (`%e`).
    pub mask: u32,
    /// Rename cookie (`%c`).
    pub cookie: u32,
}

/// Expands `fmt` for one event. `%w %f %e %Xe %c %T %n %0 %%` are understood; anything else
/// after `%` is copied as is.
pub fn format_event(fmt: &[u8], s: &Subject<'_>, timefmt: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let mut i = 0;
    while i < fmt.len() && out.len() < MAX_LINE - 1 {
        let c = fmt[i];
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        let Some(&spec) = fmt.get(i + 1) else {
            break;
        };
        i += 2;
        match spec {
            b'%' => out.push(b'%'),
            b'0' => out.push(0),
            b'n' => out.push(b'\n'),
            b'w' => out.extend_from_slice(s.watch),
            b'f' => out.extend_from_slice(s.name),
            b'c' => out.extend_from_slice(format!("{:x}", s.cookie).as_bytes()),
            b'e' => out.extend_from_slice(mask::mask_to_string(s.mask, ",").as_bytes()),
            b'T' => out.extend_from_slice(&timefmt.map(now_formatted).unwrap_or_default()),
            sep if fmt.get(i) == Some(&b'e') => {
                i += 1;
                let sep = [sep];
                let sep = String::from_utf8_lossy(&sep).into_owned();
                out.extend_from_slice(mask::mask_to_string(s.mask, &sep).as_bytes());
            }
            other => {
                out.push(b'%');
                out.push(other);
            }
        }
    }
    out
}

/// The current local time through `strftime`.
fn now_formatted(timefmt: &[u8]) -> Vec<u8> {
    let Ok(fmt) = CString::new(timefmt) else {
        return Vec::new();
    };
    let mut buf = vec![0u8; MAX_LINE];
    // SAFETY: `tm` is filled by localtime_r before use; `buf` is valid for its length.
    let n = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return Vec::new();
        }
        libc::strftime(buf.as_mut_ptr().cast(), MAX_LINE - 1, fmt.as_ptr(), &tm)
    };
    buf.truncate(n);
    buf
}

/// One field of a CSV line: quoted (with doubled quotes) when it holds a quote, a comma or a
/// newline, or starts or ends with a space.
pub fn csv_field(field: &[u8]) -> Vec<u8> {
    if field.is_empty() || field.len() > MAX_LINE {
        return Vec::new();
    }
    let needs = field.iter().any(|&b| matches!(b, b'"' | b',' | b'\n'))
        || field[0] == b' '
        || field[field.len() - 1] == b' ';
    if !needs {
        return field.to_vec();
    }
    let mut out = vec![b'"'];
    for &b in field {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
    out
}

/// A `--csv` line: `watch,EVENTS,name` (the watch and its comma are left out when the watch
/// has no name).
pub fn csv_line(s: &Subject<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let w = csv_field(s.watch);
    if !w.is_empty() {
        out.extend_from_slice(&w);
        out.push(b',');
    }
    out.extend_from_slice(&csv_field(mask::mask_to_string(s.mask, ",").as_bytes()));
    out.push(b',');
    out.extend_from_slice(&csv_field(s.name));
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_inotifywait() {
        let s = Subject {
            watch: b"dir/",
            name: b"a b",
            mask: mask::CLOSE_WRITE,
            cookie: 0x2a,
        };
        let cases: &[(&str, &str)] = &[
            ("%w %,e %f\n", "dir/ CLOSE_WRITE,CLOSE a b\n"),
            ("%w%f", "dir/a b"),
            ("%:e|%e", "CLOSE_WRITE:CLOSE|CLOSE_WRITE,CLOSE"),
            ("%c%%%n", "2a%\n"),
            ("%x %", "%x "),
            ("%0", "\0"),
        ];
        for (fmt, want) in cases {
            let got = format_event(fmt.as_bytes(), &s, None);
            assert_eq!(String::from_utf8_lossy(&got), *want, "{fmt:?}");
        }
    }

    #[test]
    fn csv_quotes_when_needed() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            (" lead", "\" lead\""),
            ("trail ", "\"trail \""),
            ("", ""),
        ];
        for (field, want) in cases {
            assert_eq!(String::from_utf8_lossy(&csv_field(field.as_bytes())), *want);
        }
        let s = Subject {
            watch: b"",
            name: b"",
            mask: mask::Q_OVERFLOW,
            cookie: 0,
        };
        assert_eq!(csv_line(&s), b"Q_OVERFLOW,\n");
    }
}
