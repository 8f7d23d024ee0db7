//! rsync's `--itemize-changes` summary: `YXcstpoguax`.

/// What happened to one item, in the terms of rsync's itemize string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Itemize {
    /// `Y`: `>` received, `c` local change/creation, `h` hard link, `.` attributes only,
    /// `*` a message (deleting).
    pub update: u8,
    /// `X`: `f` file, `d` directory, `L` symlink, `D` device, `S` special.
    pub kind: u8,
    pub is_new: bool,
    pub checksum: bool,
    pub size: bool,
    /// `t` or, for a time not preserved but set to the transfer time, `T`.
    pub time: Option<u8>,
    pub perms: bool,
    pub owner: bool,
    pub group: bool,
    /// `u`: the access time was set (`-U`).
    pub atime: bool,
    /// `x`: extended attributes differ (`-X`).
    pub xattr: bool,
    /// `a`: the ACL differs (`-A`).
    pub acl: bool,
}

impl Itemize {
    pub fn new(update: u8, kind: u8) -> Itemize {
        Itemize {
            update,
            kind,
            ..Itemize::default()
        }
    }

    /// Whether any attribute is reported (an item with nothing is only shown with `-ii`).
    pub fn has_changes(&self) -> bool {
        self.is_new
            || self.update != b'.'
            || self.checksum
            || self.size
            || self.time.is_some()
            || self.perms
            || self.owner
            || self.group
            || self.atime
            || self.xattr
            || self.acl
    }

    /// The 11-character itemize string.
    pub fn render(&self) -> String {
        let mut s = [b'.'; 11];
        s[0] = self.update;
        s[1] = self.kind;
        if self.is_new {
            s[2..].fill(b'+');
        } else {
            if self.checksum {
                s[2] = b'c';
            }
            if self.size {
                s[3] = b's';
            }
            if let Some(t) = self.time {
                s[4] = t;
            }
            if self.perms {
                s[5] = b'p';
            }
            if self.owner {
                s[6] = b'o';
            }
            if self.group {
                s[7] = b'g';
            }
            if self.atime {
                s[8] = b'u';
            }
            if self.xattr {
                s[10] = b'x';
            }
            if self.acl {
                s[9] = b'a';
            }
            if s[2..].iter().all(|&c| c == b'.') && matches!(self.update, b'.' | b'h' | b'c') {
                s[2..].fill(b' ');
            }
        }
        String::from_utf8(s.to_vec()).expect("ASCII")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_rsync() {
        let mut i = Itemize::new(b'>', b'f');
        i.is_new = true;
        assert_eq!(i.render(), ">f+++++++++");
        let mut i = Itemize::new(b'>', b'f');
        i.size = true;
        i.time = Some(b't');
        assert_eq!(i.render(), ">f.st......");
        let mut i = Itemize::new(b'.', b'd');
        i.time = Some(b't');
        assert_eq!(i.render(), ".d..t......");
        assert_eq!(Itemize::new(b'.', b'f').render(), ".f         ");
        assert_eq!(Itemize::new(b'>', b'f').render(), ">f.........");
        let mut i = Itemize::new(b'.', b'f');
        i.atime = true;
        assert_eq!(i.render(), ".f......u..");
    }
}
