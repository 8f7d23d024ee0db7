//! Command-line paths as text without loss. Arguments travel through the client and server
//! as `String`s; a name in another charset is not UTF-8, so its stray bytes are carried as
//! private-use characters (the convention of `rtsync_engine::report::lossless_text`) and
//! turned back into the bytes wherever a path meets the filesystem or the wire.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// An argument's bytes as text, stray bytes kept.
pub fn text(bytes: &[u8]) -> String {
    rtsync_engine::report::lossless_text(bytes).into_owned()
}

/// [`text`] of an OS string.
pub fn os_text(s: &OsStr) -> String {
    text(s.as_bytes())
}

/// The bytes an argument stands for.
pub fn bytes(text: &str) -> Cow<'_, [u8]> {
    rtsync_engine::report::raw_bytes(text.as_bytes())
}

/// The path an argument names.
pub fn path(text: &str) -> PathBuf {
    PathBuf::from(os(text))
}

/// The argument as an OS string (for a command line).
pub fn os(text: &str) -> OsString {
    OsString::from_vec(bytes(text).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stray_bytes_survive_the_round_trip() {
        let raw = b"caf\xe9/\xff\xfe-\xc3\xa9";
        let t = text(raw);
        assert_eq!(&*bytes(&t), raw);
        assert_eq!(path(&t).as_os_str().as_bytes(), raw);
        assert_eq!(text(b"plain/utf8-\xc3\xa9"), "plain/utf8-é");
    }
}
