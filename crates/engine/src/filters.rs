//! The user's filter rules, applied while scanning the sender's tree and when deciding what
//! `--delete` may remove.

use crate::options::Options;
use rtsync_filter::{Check, FileSource, FilterError, FilterSet, FsSource, Matched, Side};
use rtsync_tree::ScanFilter;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Reads per-directory merge files of the directory being entered: rule-file paths arrive
/// relative to the transfer root (`sub/.rsync-filter`) and are found under that directory's
/// real location.
pub struct DirSource<'a> {
    /// The directory's name in the transfer (empty for the root).
    pub name: &'a [u8],
    /// Where the directory really is.
    pub path: &'a Path,
    /// `--confine-root` (canonical): a rule file resolving outside it is not read (as if it
    /// did not exist), wherever its symlinks lead.
    pub confine: Option<&'a Path>,
}

/// Whether `full` resolves (physically, all symlinks followed) inside `root`; `None` when it
/// does not exist.
fn resolves_inside(full: &Path, root: &Path) -> Option<bool> {
    let real = std::fs::canonicalize(full).ok()?;
    Some(real.starts_with(root))
}

impl DirSource<'_> {
    /// Where the rule file `rel` (transfer-relative, or absolute) really is.
    fn locate(&self, rel: &Path) -> std::path::PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let bytes = rel.as_os_str().as_bytes();
        let inside = if self.name.is_empty() {
            Some(bytes)
        } else {
            bytes
                .strip_prefix(self.name)
                .and_then(|r| r.strip_prefix(b"/"))
        };
        match inside {
            Some(r) if !rel.is_absolute() => self.path.join(std::ffi::OsStr::from_bytes(r)),
            _ => rel.to_path_buf(),
        }
    }
}

/// `path` made absolute against the working directory, `.`, `..` and doubled slashes
/// collapsed without looking at the filesystem (stock's `dirbuf`).
pub fn lexical_abs(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in joined.as_os_str().as_bytes().split(|&c| c == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return b"/".to_vec();
    }
    parts
        .iter()
        .flat_map(|p| [&b"/"[..], p])
        .flatten()
        .copied()
        .collect()
}

impl FileSource for DirSource<'_> {
    fn display(&self, rel: &Path) -> Option<String> {
        Some(String::from_utf8_lossy(&lexical_abs(&self.locate(rel))).into_owned())
    }

    fn read(&mut self, rel: &Path) -> io::Result<Option<Vec<u8>>> {
        let full = self.locate(rel);
        if let Some(root) = self.confine {
            if resolves_inside(&full, root) != Some(true) {
                return Ok(None);
            }
        }
        match FsSource::default().read(&full) {
            // Another user's symlink as (or on the way to) a per-directory file: stock says
            // so and carries on as if the file were absent.
            Err(e) if rtsync_oppath::is_refusal(&e) => {
                eprintln!("{}", rtsync_oppath::REFUSAL);
                Ok(None)
            }
            r => r,
        }
    }
}

/// The canonical form of `--confine-root`, for [`DirSource::confine`].
pub fn confine_root(opts: &Options) -> Option<std::path::PathBuf> {
    let root = opts.confine_root.as_ref()?;
    // A root that cannot be resolved confines to itself as given (nothing resolves inside a
    // missing directory).
    Some(std::fs::canonicalize(root).unwrap_or_else(|_| root.clone()))
}

/// The client's own rule files: `-` (as in `merge -` or `--exclude-from=-`) is standard
/// input, read once; other names are files.
struct ClientSource {
    files: FsSource,
    stdin_read: bool,
}

impl FileSource for ClientSource {
    fn read(&mut self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        if path.as_os_str() != "-" {
            return self.files.read(path);
        }
        let mut data = Vec::new();
        if !std::mem::replace(&mut self.stdin_read, true) {
            use std::io::Read;
            io::stdin()
                .lock()
                .take(rtsync_filter::MAX_RULE_FILE_BYTES as u64 + 1)
                .read_to_end(&mut data)?;
            if data.len() > rtsync_filter::MAX_RULE_FILE_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "filter file too large",
                ));
            }
        }
        Ok(Some(data))
    }
}

/// Stock's `--debug=filter` trace of the rule that decided each check (`[sender] hiding
/// file x because of pattern *.o`): lines collected as checks are made, for the owner to
/// print or send wherever its role's messages go. Clones share the lines.
#[derive(Clone, Debug)]
pub struct FilterTrace {
    /// Stock's `who_am_i()` of the checking side: `sender`, `generator`, ...
    role: &'static str,
    lines: Arc<Mutex<Vec<String>>>,
}

impl FilterTrace {
    /// A trace for `role` when `opts` ask for one: `--debug=filter` (which `-vv` implies)
    /// traces a sender's and a generator's checks; any other side's from level 3.
    pub fn for_role(opts: &Options, role: &'static str) -> Option<FilterTrace> {
        let wanted = if matches!(role, "sender" | "generator") {
            1
        } else {
            3
        };
        (!opts.quiet && opts.debug_level("filter") >= wanted).then(|| FilterTrace {
            role,
            lines: Arc::default(),
        })
    }

    /// Notes that `m` decided `name` (a directory when `is_dir`).
    pub fn record(&self, m: &Matched<'_>, name: &[u8], is_dir: bool) {
        let line = trace_line(
            self.role,
            m,
            name,
            if is_dir { "directory" } else { "file" },
        );
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    /// The lines recorded since the last call, oldest first (no newlines).
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// One trace line as stock words it: a generator protects or risks, every other side hides
/// or shows; `kind` is `file`, `directory` or `xattr`. Unprintable bytes are escaped as in
/// names.
pub fn trace_line(role: &str, m: &Matched<'_>, name: &[u8], kind: &str) -> String {
    let verb = match (role == "generator", m.decision().is_excluded()) {
        (true, true) => "protecting",
        (true, false) => "risking",
        (false, true) => "hiding",
        (false, false) => "showing",
    };
    let mut line = format!("[{role}] {verb} {kind} ").into_bytes();
    line.extend_from_slice(name);
    line.extend_from_slice(b" because of pattern ");
    line.extend_from_slice(&m.describe());
    String::from_utf8_lossy(&crate::report::escape_name(&line)).into_owned()
}

/// Checks `name` for `side`, recording the deciding rule in `trace` when there is one;
/// true when excluded.
pub fn check_traced(
    set: &FilterSet,
    name: &[u8],
    is_dir: bool,
    side: Side,
    trace: Option<&FilterTrace>,
) -> bool {
    let Some(trace) = trace else {
        return set.check(name, is_dir, side).is_excluded();
    };
    let Some(m) = set.check_match(name, is_dir, Check::side(side)) else {
        return false;
    };
    trace.record(&m, name, is_dir);
    m.decision().is_excluded()
}

/// Filter rules plus the walk state of per-directory merge files.
#[derive(Clone)]
pub struct Filters {
    /// Where the deciding rules of checks are traced (`--debug=filter`); `None`: not traced.
    pub trace: Option<FilterTrace>,
    pub set: FilterSet,
    /// [`confine_root`] of the options: per-directory rule files must resolve inside it.
    confine: Option<std::path::PathBuf>,
    /// Any rule at all? Lets the common no-filter case skip all work.
    active: bool,
    /// The dir-merge files of the first directory's parents are read (once per walk).
    parents_read: bool,
    /// A local copy: a fatal rule error in the sender's walk also ends stock's receiver
    /// process, which says so.
    pub local_copy: bool,
    /// A rule file could not be read in full (stock's I/O error flag: exit 23). Shared by
    /// clones.
    pub incomplete: Arc<std::sync::atomic::AtomicBool>,
}

/// Stock's words and the place its exit line names for a filter error, by what went wrong:
/// (prefix of the message, `file(line)`).
pub fn error_place(e: &FilterError) -> (&'static str, &'static str) {
    use rtsync_filter::FilterError as F;
    match e.detail() {
        F::UnknownRule { .. }
        | F::UnexpectedEnd { .. }
        | F::ClearWithTrailing { .. }
        | F::SidedRuleInSidedMerge { .. } => ("", "exclude.c(136)"),
        F::InvalidModifier { .. } => ("", "exclude.c(1379)"),
        F::NotFound { .. } if matches!(e, F::InFile { .. }) => ("", "exclude.c(1719)"),
        _ => ("rsync: ", "exclude.c(1480)"),
    }
}

/// A rule that does not parse in a per-directory file ends the run, as stock's does: the
/// error (the rule itself withheld: it is file content), the exit line naming `role`, exit
/// code 1. Other errors (an unreadable file) are returned.
pub fn fatal_rule_error(e: FilterError, role: &str, local_copy: bool) -> FilterError {
    if e.rsync_exit_code() != crate::report::exit::SYNTAX {
        return e;
    }
    let (prefix, place) = error_place(&e);
    eprintln!("{prefix}{e}");
    eprintln!(
        "{}",
        crate::report::error_line(crate::report::exit::SYNTAX, place, role)
    );
    if local_copy && role == "sender" {
        // Stock's local receiver is a child the sender's exit signals.
        eprintln!(
            "rsync error: received SIGUSR1 (code 19) at main.c(1660) [Receiver={}]",
            crate::RSYNC_VERSION
        );
    }
    std::process::exit(1);
}

/// Enters `name` (at `path`) in `set`, reading its per-directory files; on the first call
/// also those of its parents that the rules name (`-F`'s `/.rsync-filter`: every directory
/// from `/` down), as stock does for the first directory it enters. `Ok(true)`: entered,
/// but a rule file could not be read in full (see [`print_warnings`]).
pub fn enter_reading(
    set: &mut FilterSet,
    parents_read: &mut bool,
    name: &[u8],
    path: &Path,
    confine: Option<&Path>,
) -> Result<bool, FilterError> {
    if !std::mem::replace(parents_read, true) {
        let abs_dir = lexical_abs(path);
        let mut root = abs_dir.clone();
        if !name.is_empty() {
            for _ in name.split(|&c| c == b'/') {
                let cut = root.iter().rposition(|&c| c == b'/').unwrap_or(0);
                root.truncate(cut);
            }
        }
        set.load_parent_dirs_of(
            &root,
            &abs_dir,
            &mut DirSource {
                name: b"",
                path: Path::new("/"),
                confine,
            },
        )?;
    }
    set.enter_dir(
        name,
        &mut DirSource {
            name,
            path,
            confine,
        },
    )?;
    Ok(print_warnings(set))
}

/// Prints the rule-file problems stock reports and carries on past (over-long rules, merge
/// files whose path is too long); true when one leaves the transfer incomplete.
pub fn print_warnings(set: &mut FilterSet) -> bool {
    let mut partial = false;
    for w in set.take_warnings() {
        eprintln!("{w}");
        partial |= w.rsync_exit_code() == crate::report::exit::PARTIAL;
    }
    partial
}

/// File-list names use `.` for the root; filter paths use the empty string.
fn filter_name(name: &[u8]) -> &[u8] {
    if name == b"." {
        b""
    } else {
        name
    }
}

impl Filters {
    /// Builds the rule list from the command line, reading `--exclude-from` & co. from disk.
    pub fn from_options(opts: &Options) -> Result<Filters, FilterError> {
        // A server's standard input is the protocol stream: `-` is never stdin there.
        let mut client = ClientSource {
            files: FsSource::default(),
            stdin_read: opts.server,
        };
        let mut fs = FsSource::default();
        let source: &mut dyn FileSource = if opts.server { &mut fs } else { &mut client };
        let mut set = FilterSet::from_options(
            &opts.filters,
            opts.cvs_exclude,
            rtsync_filter::CvsEnv::from_process(),
            source,
        )?;
        // Rules stock also discards, with a message, without failing.
        for w in set.take_warnings() {
            eprintln!("{w}");
        }
        set.set_delete_excluded(opts.delete_excluded);
        if opts.backup && opts.deleting() && !opts.delete_excluded && opts.backup_dir.is_none() {
            // rsync protects the backups it makes beside their files from --delete.
            let mut rule = b"P *".to_vec();
            let suffix = opts.suffix.as_deref().map_or(&b"~"[..], |s| {
                use std::os::unix::ffi::OsStrExt;
                s.as_bytes()
            });
            rule.extend_from_slice(suffix);
            set.add_filter(&rule, source)?;
        }
        if let Some(pd) = client_partial_dir(opts) {
            // As stock's client: a relative partial dir (`.~tmp~` of --delay-updates) is
            // excluded, so it is neither sent nor deleted; perishable unless an old
            // protocol cannot carry that.
            let perishable = opts.protocol.is_none_or(|p| p >= 30);
            let mut rule = if perishable {
                b"-p ".to_vec()
            } else {
                b"- ".to_vec()
            };
            rule.extend_from_slice(&pd);
            rule.push(b'/');
            set.add_filter(&rule, source)?;
        }
        let active = !set.is_empty();
        Ok(Filters {
            trace: None,
            set,
            active,
            confine: confine_root(opts),
            parents_read: false,
            local_copy: false,
            incomplete: Arc::default(),
        })
    }

    /// No rules at all.
    pub fn none() -> Filters {
        Filters {
            trace: None,
            set: FilterSet::new(),
            active: false,
            confine: None,
            parents_read: false,
            local_copy: false,
            incomplete: Arc::default(),
        }
    }

    /// Whether `--delete` must leave `name` alone: excluded (without `--delete-excluded`) or
    /// protected, by the rules in force in the directory being walked.
    pub fn protects(&self, name: &[u8], is_dir: bool) -> bool {
        self.active
            && check_traced(
                &self.set,
                filter_name(name),
                is_dir,
                Side::Receiver,
                self.trace.as_ref(),
            )
    }
}

/// `--debug=filter`: as stock's client parses its rule arguments, it points out a pattern
/// that ends in whitespace (easily typed, and kept as part of the pattern). Rules read from
/// files are not shown.
pub fn caution_trailing_whitespace(opts: &Options) {
    // Stock applies `-v`'s debug levels only once its options are parsed.
    if opts.quiet || opts.debug_words_level("filter", 0) < 1 {
        return;
    }
    use rtsync_filter::FilterOption as O;
    let mut set = FilterSet::new();
    for option in &opts.filters {
        if matches!(
            option,
            O::Filter(_) | O::Exclude(_) | O::Include(_) | O::DeleteExcluded
        ) {
            // (Errors are reported when the rules are built for real.)
            let _ = set.apply_option(option, &mut rtsync_filter::NoFiles);
        }
    }
    for rule in set.rules() {
        if !rule.from_file() && matches!(rule.pattern().last(), Some(b' ' | b'\t')) {
            let text = crate::report::escape_name(&rule.to_bytes());
            println!(
                "[client] add_rule({}) -- CAUTION: trailing whitespace!",
                String::from_utf8_lossy(&text)
            );
        }
    }
}

/// The partial dir a client (or a local copy) keeps out of the transfer: a relative
/// `--partial-dir`, or `.~tmp~` with `--delay-updates`.
fn client_partial_dir(opts: &Options) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    if opts.server || opts.inplace {
        return None;
    }
    let pd = match &opts.partial_dir {
        Some(p) => p.as_bytes().to_vec(),
        None if opts.delay_updates => b".~tmp~".to_vec(),
        None => return None,
    };
    let trimmed: &[u8] = {
        let mut t = &pd[..];
        while t.len() > 1 && t.ends_with(b"/") {
            t = &t[..t.len() - 1];
        }
        t
    };
    (!trimmed.is_empty() && trimmed != b"." && !trimmed.starts_with(b"/")).then(|| trimmed.to_vec())
}

impl Filters {
    /// Enters directory `name` reading its per-directory files at `path` (which may not
    /// exist: the directory is entered all the same, with no rules of its own).
    pub fn enter_at(&mut self, name: &[u8], path: &Path) {
        if self.active {
            let name = filter_name(name);
            let read = enter_reading(
                &mut self.set,
                &mut self.parents_read,
                name,
                path,
                self.confine.as_deref(),
            );
            if let Ok(true) = read {
                self.incomplete
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            if let Err(e) = read {
                fatal_rule_error(e, "generator", self.local_copy);
                // Unreadable rules: enter with none, keeping enter/leave balanced.
                let _ = self.set.enter_dir(name, &mut rtsync_filter::NoFiles);
            }
        }
    }
}

impl ScanFilter for Filters {
    fn enter_dir(&mut self, name: &[u8], path: &Path) -> io::Result<()> {
        if !self.active {
            return Ok(());
        }
        let name = filter_name(name);
        let confine = self.confine.as_deref();
        let partial = enter_reading(&mut self.set, &mut self.parents_read, name, path, confine)
            .map_err(|e| {
                let e = fatal_rule_error(e, "sender", self.local_copy);
                io::Error::new(io::ErrorKind::InvalidData, e.to_string())
            })?;
        if partial {
            self.incomplete
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    fn leave_dir(&mut self) {
        if self.active {
            self.set.leave_dir();
        }
    }

    fn take_notes(&mut self) -> Vec<String> {
        self.trace
            .as_ref()
            .map(FilterTrace::take)
            .unwrap_or_default()
    }

    fn excluded(&self, name: &[u8], is_dir: bool) -> bool {
        self.active
            && check_traced(
                &self.set,
                filter_name(name),
                is_dir,
                Side::Sender,
                self.trace.as_ref(),
            )
    }
}

/// The filter rules a client sends to its peer (`None`: no list at all, not even the
/// terminating zero), as stock rsync decides for its role.
pub fn client_wire_rules(
    opts: &Options,
    am_sender: bool,
    protocol: u32,
) -> Result<Option<Vec<Vec<u8>>>, FilterError> {
    let filters = Filters::from_options(opts)?;
    let ctx = rtsync_filter::wire::ClientContext {
        am_sender,
        protocol,
        delete: opts.deleting(),
        delete_excluded: opts.delete_excluded,
        prune_empty_dirs: opts.prune_empty_dirs,
    };
    rtsync_filter::wire::client_rules(&filters.set, &ctx)
}
