//! Filter rules on the wire: what a client sends, what a server builds from what it received,
//! and a scan filter over a received rule set. The rules themselves are `rtsync-filter`'s.

use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rtsync_engine::filters::{check_traced, FilterTrace, Filters};
use rtsync_engine::Options;
use rtsync_filter::wire::{
    client_rules, encode_list, read_list, server_rules, ClientContext, ServerContext,
};
use rtsync_filter::{FileSource, FilterSet, NoFiles, Side};
use rtsync_tree::ScanFilter;

use crate::error::{Error, Result};
use crate::negotiate::Negotiated;

/// The client's rules from its command line.
pub fn client_filters(opts: &Options) -> Result<Filters> {
    Filters::from_options(opts).map_err(|e| Error::Usage(e.to_string()))
}

/// The encoded list a client sends (empty when rsync sends none for this role).
pub fn client_list(
    opts: &Options,
    neg: &Negotiated,
    filters: &Filters,
    am_sender: bool,
) -> Result<Vec<u8>> {
    let ctx = ClientContext {
        am_sender,
        protocol: neg.protocol,
        delete: opts.deleting(),
        delete_excluded: opts.delete_excluded,
        prune_empty_dirs: opts.prune_empty_dirs,
    };
    let rules = client_rules(&filters.set, &ctx).map_err(|e| Error::Usage(e.to_string()))?;
    Ok(rules.map(|r| encode_list(&r)).unwrap_or_default())
}

/// Reads a client's list and builds the server's rule set. Merge files named by the client
/// are not read (a server must not open files on a client's say-so outside its tree).
pub fn server_filters<R: Read>(
    r: &mut R,
    opts: &Options,
    neg: &Negotiated,
    am_sender: bool,
) -> Result<FilterSet> {
    let rules = read_list(r).map_err(|e| crate::mux::from_io(e, "reading filter list"))?;
    let ctx = ServerContext {
        am_sender,
        protocol: neg.protocol,
        delete_excluded: opts.delete_excluded,
        cvs_exclude: opts.cvs_exclude,
    };
    server_rules(
        &rules,
        &ctx,
        rtsync_filter::CvsEnv::from_process(),
        &mut NoFiles,
    )
    .map_err(|e| Error::Protocol(e.to_string()))
}

/// How a server reads the per-directory merge files (`dir-merge`) a client's rules name.
#[derive(Clone)]
pub enum MergeFiles {
    /// Not at all.
    Never,
    /// As stock does over a remote shell, inside `--confine-root` when one was given.
    Read { confine: Option<std::path::PathBuf> },
    /// As a daemon does: only files inside the module (`root`, canonical), an absolute name
    /// meaning one under the module's root, and never one the module's own rules hide.
    Module {
        root: std::path::PathBuf,
        filter: Option<FilterSet>,
    },
}

/// A daemon module's per-directory rule files (see [`MergeFiles::Module`]).
struct ModuleSource<'a> {
    name: &'a [u8],
    path: &'a Path,
    root: &'a Path,
    filter: Option<&'a FilterSet>,
}

impl FileSource for ModuleSource<'_> {
    fn read(&mut self, rel: &Path) -> io::Result<Option<Vec<u8>>> {
        use std::path::Component;
        // Where the file is: a transfer-relative name inside the directory being entered,
        // an absolute one under the module's root.
        let full = if rel.is_absolute() {
            self.root.join(rel.strip_prefix("/").unwrap_or(rel))
        } else {
            let bytes = rel.as_os_str().as_bytes();
            let inside = if self.name.is_empty() {
                Some(bytes)
            } else {
                bytes
                    .strip_prefix(self.name)
                    .and_then(|r| r.strip_prefix(b"/"))
            };
            match inside {
                Some(r) => self.path.join(std::ffi::OsStr::from_bytes(r)),
                None => return Ok(None),
            }
        };
        // Its name in the module, `..` collapsed without climbing above the root.
        let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
        for c in full.strip_prefix(self.root).unwrap_or(&full).components() {
            match c {
                Component::Normal(n) => parts.push(n),
                Component::ParentDir => {
                    parts.pop();
                }
                _ => {}
            }
        }
        let in_module: PathBuf = parts.iter().collect();
        if let Some(f) = self.filter {
            if f.is_excluded(in_module.as_os_str().as_bytes(), false) {
                return Ok(None);
            }
        }
        let mut source = rtsync_engine::filters::DirSource {
            name: b"",
            path: self.root,
            confine: Some(self.root),
        };
        source.read(&in_module)
    }
}

/// Scans with a received rule set, plus a daemon module's own rules (`exclude`, `filter`, …
/// in rsyncd.conf), which hide what they exclude whatever the client asked for.
/// The fourth field traces the deciding rules (`--debug=filter`); the last is a daemon's
/// log, which also has the module rules' traces (they never reach the client).
pub struct SetFilter(
    pub FilterSet,
    pub Option<FilterSet>,
    pub MergeFiles,
    pub Option<FilterTrace>,
    pub Option<crate::server::LogSink>,
);

impl SetFilter {
    /// Whether the daemon's module rules hide `name`; traced to the daemon's log only, as
    /// stock's (which checks them first).
    fn module_excludes(&self, name: &[u8], is_dir: bool) -> bool {
        let Some(module) = &self.1 else {
            return false;
        };
        let (Some(_), Some(log)) = (&self.3, &self.4) else {
            return module.is_excluded(name, is_dir);
        };
        let how = rtsync_filter::Check::side(Side::Sender);
        let Some(m) = module.check_match(name, is_dir, how) else {
            return false;
        };
        let kind = if is_dir { "directory" } else { "file" };
        (log.0)(&rtsync_engine::filters::trace_line(
            "sender", &m, name, kind,
        ));
        m.decision().is_excluded()
    }
}

impl ScanFilter for SetFilter {
    fn enter_dir(&mut self, name: &[u8], path: &Path) -> io::Result<()> {
        let name = if name == b"." { &b""[..] } else { name };
        let read = match &self.2 {
            MergeFiles::Never => self.0.enter_dir(name, &mut NoFiles),
            MergeFiles::Read { confine } => {
                let mut source = rtsync_engine::filters::DirSource {
                    name,
                    path,
                    confine: confine.as_deref(),
                };
                match self.0.enter_dir(name, &mut source) {
                    Ok(()) => {
                        rtsync_engine::filters::print_warnings(&mut self.0);
                        Ok(())
                    }
                    Err(e) => {
                        // A rule that does not parse ends the run, as stock's; unreadable
                        // rules: enter with none, keeping enter/leave balanced.
                        rtsync_engine::filters::fatal_rule_error(e, "sender", false);
                        self.0.enter_dir(name, &mut NoFiles)
                    }
                }
            }
            MergeFiles::Module { root, filter } => {
                let mut source = ModuleSource {
                    name,
                    path,
                    root,
                    filter: filter.as_ref(),
                };
                match self.0.enter_dir(name, &mut source) {
                    Ok(()) => Ok(()),
                    Err(_) => self.0.enter_dir(name, &mut NoFiles),
                }
            }
        };
        read.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }

    fn leave_dir(&mut self) {
        self.0.leave_dir();
    }

    fn excluded(&self, name: &[u8], is_dir: bool) -> bool {
        let name = if name == b"." { &b""[..] } else { name };
        !name.is_empty()
            && (self.module_excludes(name, is_dir)
                || check_traced(&self.0, name, is_dir, Side::Sender, self.3.as_ref()))
    }

    fn take_notes(&mut self) -> Vec<String> {
        // (A daemon logs them as it tells its client: see `MuxWriter::set_message_log`.)
        self.3.as_ref().map(FilterTrace::take).unwrap_or_default()
    }
}

/// A daemon module's `ignore nonreadable`: an entry this process may not read (a symlink
/// aside) is left out of the list as if excluded, as stock's `make_file` checks it with
/// `access(R_OK)` (a directory that cannot be read goes with all it holds). Inactive, it
/// is the inner filter alone.
pub struct SkipUnreadable<F> {
    inner: F,
    active: bool,
    /// The directories entered, innermost last (their entries are checked beneath them).
    dirs: Vec<PathBuf>,
}

impl<F: ScanFilter> SkipUnreadable<F> {
    pub fn new(inner: F, active: bool) -> Self {
        SkipUnreadable {
            inner,
            active,
            dirs: Vec::new(),
        }
    }
}

impl<F: ScanFilter> ScanFilter for SkipUnreadable<F> {
    fn enter_dir(&mut self, name: &[u8], path: &Path) -> io::Result<()> {
        self.inner.enter_dir(name, path)?;
        self.dirs.push(path.to_path_buf());
        Ok(())
    }

    fn leave_dir(&mut self) {
        self.dirs.pop();
        self.inner.leave_dir();
    }

    fn excluded(&self, name: &[u8], is_dir: bool) -> bool {
        if self.inner.excluded(name, is_dir) {
            return true;
        }
        let Some(dir) = self.dirs.last().filter(|_| self.active) else {
            return false;
        };
        let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
        let path = dir.join(std::ffi::OsStr::from_bytes(base));
        unreadable(&path)
    }

    fn take_notes(&mut self) -> Vec<String> {
        self.inner.take_notes()
    }
}

/// Whether `path` is something other than a symlink that our effective ids may not read.
fn unreadable(path: &Path) -> bool {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return false;
    }
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path; faccessat only reads it.
    unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::R_OK, libc::AT_EACCESS) != 0 }
}
