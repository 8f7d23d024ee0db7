//! inotify event bits, their names, and the textual forms inotify-tools uses.
//!
//! The names and their order are part of the output format of `inotifywait`, so they are kept
//! in one table; parsing accepts the same spellings (case-insensitive) and the same
//! comma-separated lists.

/// File was accessed (read).
pub const ACCESS: u32 = 0x0000_0001;
/// File was modified.
pub const MODIFY: u32 = 0x0000_0002;
/// Metadata changed.
pub const ATTRIB: u32 = 0x0000_0004;
/// Writable file was closed.
pub const CLOSE_WRITE: u32 = 0x0000_0008;
/// Unwritable file was closed.
pub const CLOSE_NOWRITE: u32 = 0x0000_0010;
/// File was opened.
pub const OPEN: u32 = 0x0000_0020;
/// File was moved from X.
pub const MOVED_FROM: u32 = 0x0000_0040;
/// File was moved to Y.
pub const MOVED_TO: u32 = 0x0000_0080;
/// Subfile was created.
pub const CREATE: u32 = 0x0000_0100;
/// Subfile was deleted.
pub const DELETE: u32 = 0x0000_0200;
/// The watched object itself was deleted.
pub const DELETE_SELF: u32 = 0x0000_0400;
/// The watched object itself was moved.
pub const MOVE_SELF: u32 = 0x0000_0800;
/// Backing filesystem was unmounted.
pub const UNMOUNT: u32 = 0x0000_2000;
/// The event queue overflowed.
pub const Q_OVERFLOW: u32 = 0x0000_4000;
/// The watch was removed (explicitly or because the object went away).
pub const IGNORED: u32 = 0x0000_8000;
/// Only watch the path if it is a directory.
pub const ONLYDIR: u32 = 0x0100_0000;
/// Do not follow a symbolic link.
pub const DONT_FOLLOW: u32 = 0x0200_0000;
/// Exclude events on unlinked objects.
pub const EXCL_UNLINK: u32 = 0x0400_0000;
/// The subject of the event is a directory.
pub const ISDIR: u32 = 0x4000_0000;
/// Only send the event once.
pub const ONESHOT: u32 = 0x8000_0000;

/// Both close events.
pub const CLOSE: u32 = CLOSE_WRITE | CLOSE_NOWRITE;
/// Both move events.
pub const MOVE: u32 = MOVED_FROM | MOVED_TO;
/// Every event a watch can ask for.
pub const ALL_EVENTS: u32 = ACCESS
    | MODIFY
    | ATTRIB
    | CLOSE_WRITE
    | CLOSE_NOWRITE
    | OPEN
    | MOVED_FROM
    | MOVED_TO
    | CREATE
    | DELETE
    | DELETE_SELF
    | MOVE_SELF;

/// Names in the order inotify-tools prints them; `CLOSE` is the combined bit pair and is printed
/// after `IGNORED`, as stock does.
const PRINT_ORDER: &[(u32, &str)] = &[
    (ACCESS, "ACCESS"),
    (MODIFY, "MODIFY"),
    (ATTRIB, "ATTRIB"),
    (CLOSE_WRITE, "CLOSE_WRITE"),
    (CLOSE_NOWRITE, "CLOSE_NOWRITE"),
    (OPEN, "OPEN"),
    (MOVED_FROM, "MOVED_FROM"),
    (MOVED_TO, "MOVED_TO"),
    (CREATE, "CREATE"),
    (DELETE, "DELETE"),
    (DELETE_SELF, "DELETE_SELF"),
    (UNMOUNT, "UNMOUNT"),
    (Q_OVERFLOW, "Q_OVERFLOW"),
    (IGNORED, "IGNORED"),
    (CLOSE, "CLOSE"),
    (MOVE_SELF, "MOVE_SELF"),
    (ISDIR, "ISDIR"),
    (ONESHOT, "ONESHOT"),
];

/// Names accepted when parsing, with the bits they stand for.
const PARSE_NAMES: &[(&str, u32)] = &[
    ("access", ACCESS),
    ("modify", MODIFY),
    ("attrib", ATTRIB),
    ("close_write", CLOSE_WRITE),
    ("close_nowrite", CLOSE_NOWRITE),
    ("open", OPEN),
    ("moved_from", MOVED_FROM),
    ("moved_to", MOVED_TO),
    ("create", CREATE),
    ("delete", DELETE),
    ("delete_self", DELETE_SELF),
    ("unmount", UNMOUNT),
    ("q_overflow", Q_OVERFLOW),
    ("ignored", IGNORED),
    ("close", CLOSE),
    ("move_self", MOVE_SELF),
    ("move", MOVE),
    ("isdir", ISDIR),
    ("oneshot", ONESHOT),
    ("all_events", ALL_EVENTS),
];

/// The bits one event name stands for (case-insensitive), or `None` if it is not a name.
pub fn event_from_name(name: &str) -> Option<u32> {
    PARSE_NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, bits)| bits)
}

/// Outcome of parsing an event list such as `modify,close_write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParsedEvents {
    /// All names were known; their bits or-ed together.
    Mask(u32),
    /// An empty list, or a list with an empty item: inotify-tools treats it as "nothing asked".
    Empty,
    /// A name that is not an event.
    Invalid,
}

/// Parses a `sep`-separated list of event names with inotify-tools' rules: an empty item ends
/// the list as "nothing", an unknown name makes the whole list invalid.
pub fn parse_event_list(list: &str, sep: char) -> ParsedEvents {
    if sep == '_' || sep.is_ascii_alphabetic() {
        return ParsedEvents::Invalid;
    }
    if list.is_empty() {
        return ParsedEvents::Empty;
    }
    let mut bits = 0;
    let mut rest = list;
    loop {
        let (item, tail) = match rest.find(sep) {
            Some(i) => (&rest[..i], Some(&rest[i + sep.len_utf8()..])),
            None => (rest, None),
        };
        if item.is_empty() {
            return ParsedEvents::Empty;
        }
        match event_from_name(item) {
            Some(b) => bits |= b,
            None => return ParsedEvents::Invalid,
        }
        match tail {
            None => return ParsedEvents::Mask(bits),
            Some("") => return ParsedEvents::Empty,
            Some(t) => rest = t,
        }
    }
}

/// The event names in `mask`, joined by `sep`, in inotify-tools' order; a mask with no known bit
/// is printed as `0x%08x`.
pub fn mask_to_string(mask: u32, sep: &str) -> String {
    let mut out = String::new();
    for &(bits, name) in PRINT_ORDER {
        // CLOSE is printed whenever either close bit is set.
        if mask & bits != 0 {
            if !out.is_empty() {
                out.push_str(sep);
            }
            out.push_str(name);
        }
    }
    if out.is_empty() {
        out = format!("0x{mask:08x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_render_in_stock_order() {
        let cases: &[(u32, &str, &str)] = &[
            (CLOSE_WRITE, ",", "CLOSE_WRITE,CLOSE"),
            (CLOSE_NOWRITE | ISDIR, ",", "CLOSE_NOWRITE,CLOSE,ISDIR"),
            (CREATE | ISDIR, ":", "CREATE:ISDIR"),
            (MOVE_SELF, ",", "MOVE_SELF"),
            (IGNORED, ",", "IGNORED"),
            (0x1000, ",", "0x00001000"),
            (MODIFY | ATTRIB, "", "MODIFYATTRIB"),
        ];
        for &(mask, sep, want) in cases {
            assert_eq!(mask_to_string(mask, sep), want, "mask {mask:#x}");
        }
    }

    #[test]
    fn lists_parse_like_inotify_tools() {
        let cases: &[(&str, ParsedEvents)] = &[
            ("modify", ParsedEvents::Mask(MODIFY)),
            ("MODIFY,Attrib", ParsedEvents::Mask(MODIFY | ATTRIB)),
            ("close", ParsedEvents::Mask(CLOSE)),
            ("move", ParsedEvents::Mask(MOVE)),
            ("", ParsedEvents::Empty),
            ("modify,", ParsedEvents::Empty),
            ("modify,,attrib", ParsedEvents::Empty),
            (",modify", ParsedEvents::Empty),
            ("bogus", ParsedEvents::Invalid),
            ("modify,bogus", ParsedEvents::Invalid),
        ];
        for (text, want) in cases {
            assert_eq!(parse_event_list(text, ','), *want, "{text:?}");
        }
    }
}
