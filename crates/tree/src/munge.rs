//! Symlink munging (`--munge-links`, rsyncd.conf's `munge symlinks`): a receiver that munges
//! puts [`MUNGE_PREFIX`] before every symlink target it makes, so the link cannot lead
//! anywhere real; a sender that munges takes the prefix off again, so the original target
//! travels.

use crate::FileEntry;

/// What munging puts before a symlink's target.
pub const MUNGE_PREFIX: &[u8] = b"/rsyncd-munged/";

/// The directory whose existence makes munging unsafe (a munged link would lead into it).
pub const MUNGE_DIR: &str = "/rsyncd-munged";

/// What stock says when munging is asked for while [`MUNGE_DIR`] exists.
pub const MUNGE_DIR_UNSAFE: &str =
    "Symlink munging is unsafe when a /rsyncd-munged directory exists.";

/// Whether [`MUNGE_DIR`] exists as a directory: munged links would then resolve.
pub fn munge_dir_exists() -> bool {
    std::path::Path::new(MUNGE_DIR).is_dir()
}

/// A received symlink target as a munging receiver makes it.
pub fn munge(target: &[u8]) -> Vec<u8> {
    let mut t = MUNGE_PREFIX.to_vec();
    t.extend_from_slice(target);
    t
}

/// A symlink target as a munging sender lists it: without the prefix, when there is more
/// than the prefix to it.
pub fn unmunge(target: &[u8]) -> &[u8] {
    match target.strip_prefix(MUNGE_PREFIX) {
        Some(rest) if !rest.is_empty() => rest,
        _ => target,
    }
}

/// Munges (`receiving`) or unmunges the symlinks of a file list. The listed sizes stay
/// what they were: a receiver munges as it makes the link, and a sender lists a link with
/// its size on disk (the prefix counted).
pub fn munge_entries(entries: &mut [FileEntry], receiving: bool) {
    for e in entries {
        if let Some(target) = e.link_target.as_mut() {
            *target = if receiving {
                munge(target)
            } else {
                unmunge(target).to_vec()
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn munging_round_trips_and_a_bare_prefix_stays() {
        assert_eq!(munge(b"/etc/passwd"), b"/rsyncd-munged//etc/passwd");
        assert_eq!(unmunge(&munge(b"../x")), b"../x");
        assert_eq!(unmunge(b"/rsyncd-munged/"), b"/rsyncd-munged/");
        assert_eq!(unmunge(b"/rsyncd-mungedx"), b"/rsyncd-mungedx");
        assert_eq!(unmunge(b"plain"), b"plain");
    }
}
