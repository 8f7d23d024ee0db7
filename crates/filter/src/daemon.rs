//! The filter parameters of an rsyncd.conf module (rsyncd.conf.5:
//! `filter`, `include from`, `include`, `exclude from`, `exclude`).
//!
//! They form one list, in that order, with daemon semantics: `filter`,
//! `include` and `exclude` values are split on whitespace; a pattern with a
//! leading or inner `/` is matched against the module-relative path; a
//! `dir/` exclude becomes `dir/***` so nothing beneath it can be reached.
//! Check daemon lists with module-relative paths (and no absolute root);
//! every rule applies whichever [`crate::Side`] asks, as in rsync, where an
//! excluded name can neither be read nor written nor deleted. Like stock
//! rsyncd, sender-only rules (`hide`, `s`) are dropped: the daemon parses
//! its module filters before it knows its role, as a receiver.
//!
//! ```
//! use rtsync_filter::daemon::{module_filter, ModuleFilterParams};
//! use rtsync_filter::NoFiles;
//!
//! let params = ModuleFilterParams {
//!     exclude: Some(b"*.tmp /private/ cache/".to_vec()),
//!     ..Default::default()
//! };
//! let set = module_filter(&params, &mut NoFiles).unwrap();
//! assert!(set.is_excluded(b"private", true));
//! assert!(set.is_excluded(b"private/x/y", false)); // `dir/` becomes `dir/***`
//! assert!(!set.is_excluded(b"a/private", true)); // leading `/`: module root
//! assert!(set.is_excluded(b"a/cache/z", false));
//! ```

use crate::error::FilterError;
use crate::rule::bits;
use crate::set::FilterSet;
use crate::source::FileSource;

/// A module's filter parameters, as read from rsyncd.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleFilterParams {
    /// `filter = ...` (full rule syntax, whitespace-separated).
    pub filter: Option<Vec<u8>>,
    /// `include from = FILE`.
    pub include_from: Option<std::path::PathBuf>,
    /// `include = ...` (whitespace-separated patterns).
    pub include: Option<Vec<u8>>,
    /// `exclude from = FILE`.
    pub exclude_from: Option<std::path::PathBuf>,
    /// `exclude = ...` (whitespace-separated patterns).
    pub exclude: Option<Vec<u8>>,
}

/// Builds the daemon's filter list for a module. `source` reads the
/// `include from` / `exclude from` files and files named by `merge` rules
/// in `filter` (missing ones are errors).
pub fn module_filter(
    params: &ModuleFilterParams,
    source: &mut dyn FileSource,
) -> Result<FilterSet, FilterError> {
    let mut set = FilterSet::new();
    set.set_all_sides();
    if let Some(text) = &params.filter {
        set.add_daemon_text(text, bits::WORD_SPLIT, false, source)?;
    }
    if let Some(path) = &params.include_from {
        set.add_daemon_file(path, true, source)?;
    }
    if let Some(text) = &params.include {
        set.add_daemon_text(text, bits::INCLUDE | bits::WORD_SPLIT, true, source)?;
    }
    if let Some(path) = &params.exclude_from {
        set.add_daemon_file(path, false, source)?;
    }
    if let Some(text) = &params.exclude {
        set.add_daemon_text(text, bits::WORD_SPLIT, true, source)?;
    }
    Ok(set)
}

/// Convenience: one `exclude = ...` value.
pub fn exclude_param(value: &[u8]) -> Result<FilterSet, FilterError> {
    module_filter(
        &ModuleFilterParams {
            exclude: Some(value.to_vec()),
            ..Default::default()
        },
        &mut crate::source::NoFiles,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_is_space_separated() {
        let set = exclude_param(b"a b  *.o\tsecret/").unwrap();
        let rules: Vec<String> = set.rules().map(|r| r.to_string()).collect();
        assert_eq!(rules, ["- a", "- b", "- *.o", "- secret/***"]);
        assert!(set.is_excluded(b"x/a", false));
        assert!(set.is_excluded(b"secret", true));
        assert!(set.is_excluded(b"secret/deep/file", false));
        assert!(set.is_excluded(b"q/secret/deep/file", false));
        assert!(!set.is_excluded(b"secretx", true));
    }

    #[test]
    fn filter_param_full_syntax() {
        let params = ModuleFilterParams {
            filter: Some(b"+ keep/ - /top/*.tmp".to_vec()),
            ..Default::default()
        };
        let set = module_filter(&params, &mut crate::source::NoFiles).unwrap();
        let rules: Vec<String> = set.rules().map(|r| r.to_string()).collect();
        assert_eq!(rules, ["+ keep/", "-/ /top/*.tmp"]);
        assert!(set.is_excluded(b"top/x.tmp", false));
        assert!(!set.is_excluded(b"a/top/x.tmp", false));
    }

    #[test]
    fn sided_rules_as_stock_daemon() {
        let params = ModuleFilterParams {
            filter: Some(b"P secret H hidden -r mine".to_vec()),
            ..Default::default()
        };
        let set = module_filter(&params, &mut crate::source::NoFiles).unwrap();
        for side in [crate::Side::Sender, crate::Side::Receiver] {
            assert!(set.check(b"secret", false, side).is_excluded());
            assert!(set.check(b"mine", false, side).is_excluded());
            assert!(!set.check(b"hidden", false, side).is_excluded());
        }
    }

    #[test]
    fn from_files_and_order() {
        let mut src = crate::source::MemSource::default()
            .with("/etc/inc", "keep.o\n# comment\n")
            .with("/etc/exc", "*.o\n");
        let params = ModuleFilterParams {
            include_from: Some("/etc/inc".into()),
            exclude_from: Some("/etc/exc".into()),
            ..Default::default()
        };
        let set = module_filter(&params, &mut src).unwrap();
        assert!(!set.is_excluded(b"keep.o", false));
        assert!(set.is_excluded(b"other.o", false));
        let missing = ModuleFilterParams {
            exclude_from: Some("/nope".into()),
            ..Default::default()
        };
        assert!(module_filter(&missing, &mut src).is_err());
    }
}
