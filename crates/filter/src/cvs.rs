//! `-C` / `--cvs-exclude`: rsync's default CVS-ignore list and the
//! environment it adds to it.

/// The names rsync's `-C` excludes by default (rsync.1, `--cvs-exclude`),
/// whitespace-separated. They are loaded as perishable rules.
pub const DEFAULT_CVSIGNORE: &str = "RCS SCCS CVS CVS.adm RCSLOG cvslog.* tags TAGS \
.make.state .nse_depinfo *~ #* .#* ,* _$* *$ *.old *.bak *.BAK *.orig *.rej .del-* \
*.a *.olb *.o *.obj *.so *.exe *.Z *.elc *.ln core .svn/ .git/ .hg/ .bzr/";

/// What `-C` adds after the default list: the contents of
/// `$HOME/.cvsignore` and the value of `$CVSIGNORE` (both split on
/// whitespace). Passed in explicitly so the library reads no process state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CvsEnv {
    /// Contents of `$HOME/.cvsignore`, if it exists.
    pub home_cvsignore: Option<Vec<u8>>,
    /// Value of the `CVSIGNORE` environment variable, if set.
    pub cvsignore_var: Option<Vec<u8>>,
}

impl CvsEnv {
    /// Reads `$HOME/.cvsignore` and `$CVSIGNORE` from this process
    /// (a convenience for the binary; libraries should pass values in).
    pub fn from_process() -> Self {
        use std::os::unix::ffi::OsStringExt;
        let home_cvsignore = std::env::var_os("HOME").and_then(|home| {
            let path = std::path::Path::new(&home).join(".cvsignore");
            let data = std::fs::read(path).ok()?;
            (data.len() <= crate::source::MAX_RULE_FILE_BYTES).then_some(data)
        });
        let cvsignore_var = std::env::var_os("CVSIGNORE").map(|v| v.into_vec());
        CvsEnv {
            home_cvsignore,
            cvsignore_var,
        }
    }
}
