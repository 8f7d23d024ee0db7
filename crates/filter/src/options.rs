//! Building a [`FilterSet`] from rsync's command-line filter options, given
//! in command-line order.

use std::path::PathBuf;

use crate::cvs::CvsEnv;
use crate::error::FilterError;
use crate::set::FilterSet;
use crate::source::FileSource;

/// One filter-related command-line option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterOption {
    /// `--filter=RULE` / `-f RULE`.
    Filter(Vec<u8>),
    /// `--exclude=PATTERN`.
    Exclude(Vec<u8>),
    /// `--include=PATTERN`.
    Include(Vec<u8>),
    /// `--exclude-from=FILE`.
    ExcludeFrom(PathBuf),
    /// `--include-from=FILE`.
    IncludeFrom(PathBuf),
    /// `-F` (give it twice for `-FF`).
    F,
    /// `--delete-excluded` (affects rules parsed after it, as in rsync).
    DeleteExcluded,
    /// `--from0` (affects rule files read after it, and all per-directory
    /// files).
    From0,
}

impl FilterSet {
    /// Applies `options` in order; `cvs_exclude` (`-C`) appends the CVS
    /// rules at the end, wherever `-C` appeared, as rsync does; `cvs_env`
    /// is what a `-C` (or `--filter=-C`) adds to the default CVS list.
    /// Files are read through `source`.
    pub fn from_options(
        options: &[FilterOption],
        cvs_exclude: bool,
        cvs_env: CvsEnv,
        source: &mut dyn FileSource,
    ) -> Result<FilterSet, FilterError> {
        let mut set = FilterSet::new();
        set.set_cvs_env(cvs_env);
        for option in options {
            set.apply_option(option, source)?;
        }
        if cvs_exclude {
            set.add_cvs_exclude()?;
        }
        Ok(set)
    }

    /// Applies one option (see [`FilterSet::from_options`]).
    pub fn apply_option(
        &mut self,
        option: &FilterOption,
        source: &mut dyn FileSource,
    ) -> Result<(), FilterError> {
        match option {
            FilterOption::Filter(rule) => self.add_filter(rule, source),
            FilterOption::Exclude(pattern) => self.add_exclude(pattern),
            FilterOption::Include(pattern) => self.add_include(pattern),
            FilterOption::ExcludeFrom(path) => self.add_from_file(path, false, source),
            FilterOption::IncludeFrom(path) => self.add_from_file(path, true, source),
            FilterOption::F => self.add_f_option(),
            FilterOption::DeleteExcluded => {
                self.set_delete_excluded(true);
                Ok(())
            }
            FilterOption::From0 => {
                self.set_from0(true);
                Ok(())
            }
        }
    }
}
