//! Filter rules on the wire: what a client sends, what a server builds from what it received,
//! and a scan filter over a received rule set. The rules themselves are `rtsync-filter`'s.

use std::io::{self, Read};
use std::path::Path;

use rtsync_engine::filters::Filters;
use rtsync_engine::Options;
use rtsync_filter::wire::{
    client_rules, encode_list, read_list, server_rules, ClientContext, ServerContext,
};
use rtsync_filter::{FilterSet, NoFiles};
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
#[derive(Clone, Debug)]
pub enum MergeFiles {
    /// Not at all (a daemon module).
    Never,
    /// As stock does over a remote shell, inside `--confine-root` when one was given.
    Read { confine: Option<std::path::PathBuf> },
}

/// Scans with a received rule set, plus a daemon module's own rules (`exclude`, `filter`, …
/// in rsyncd.conf), which hide what they exclude whatever the client asked for.
pub struct SetFilter(pub FilterSet, pub Option<FilterSet>, pub MergeFiles);

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
                    Ok(()) => Ok(()),
                    // Unreadable rules: enter with none, keeping enter/leave balanced.
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
            && (self.0.is_excluded(name, is_dir)
                || self.1.as_ref().is_some_and(|d| d.is_excluded(name, is_dir)))
    }
}
