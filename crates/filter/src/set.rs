//! [`FilterSet`]: an ordered rule list with its per-directory merge state,
//! built from command-line style options and checked path by path.

use std::path::{Path, PathBuf};
use std::sync::Arc;

mod load;
mod perdir;

use crate::cvs::{CvsEnv, DEFAULT_CVSIGNORE};
use crate::error::FilterError;
use crate::matcher::Subject;
use crate::parse::{next_rule, Mode};
use crate::rule::{bits, Decision, Rule, Side};
use crate::source::FileSource;
use load::merge_path;

/// rsync's MAXPATHLEN: longer patterns are refused.
pub const MAX_PATTERN_LEN: usize = 4096;
/// Longest line read from a rule file (rsync's BIGPATHBUFLEN - 1).
pub const MAX_LINE_LEN: usize = 4096 + 1024 - 1;
/// Deepest nesting of merge files.
pub const MAX_MERGE_DEPTH: usize = 32;

/// One element of a rule list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// An include or exclude rule.
    Rule(Rule),
    /// A dir-merge rule and the index of its per-directory slot.
    DirMerge(Rule, usize),
    /// A `-C` rule: the global CVS-ignore list is consulted here.
    CvsImport(Rule),
}

impl Entry {
    pub(crate) fn rule(&self) -> &Rule {
        match self {
            Entry::Rule(r) | Entry::DirMerge(r, _) | Entry::CvsImport(r) => r,
        }
    }
}

/// The rules of one dir-merge file as seen from the current directory.
#[derive(Clone, Debug)]
struct Slot {
    /// File name looked for in each directory.
    name: Box<[u8]>,
    /// The name as the rule gave it (a path names where parent-directory
    /// scanning starts).
    named: Box<[u8]>,
    /// The dir-merge rule's flags: the template for the file's rules.
    flags: u32,
    /// Directory depth at which the rule naming this file was read.
    level: usize,
    /// False once a `clear` dropped the rule naming this file.
    active: bool,
    /// The rule naming this file was read from a file.
    from_file: bool,
    /// How traces name this file's rules (stock's ` [per-dir NAME]`).
    label: Box<str>,
    /// One frame per entered directory, innermost last.
    frames: Vec<Frame>,
}

/// Rules read from one directory's copy of a dir-merge file.
#[derive(Clone, Debug)]
struct Frame {
    level: usize,
    entries: Vec<Entry>,
    /// Parent directories' rules are not consulted (`n`, or a `!` clear).
    stop: bool,
}

/// How a check is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check {
    /// Which side asks (sender: file list; receiver: deletion protection).
    pub side: Side,
    /// Skip perishable (`p`) rules, as rsync does when deciding whether a
    /// directory with excluded contents may be deleted.
    pub ignore_perishable: bool,
    /// The name is an extended-attribute name (only `x` rules apply).
    pub xattr: bool,
}

impl Check {
    /// A plain check for `side`.
    pub fn side(side: Side) -> Self {
        Check {
            side,
            ignore_perishable: false,
            xattr: false,
        }
    }
}

/// State threaded through parsing.
struct Ctx<'s> {
    source: &'s mut dyn FileSource,
    depth: usize,
    /// Directory (relative to the transfer root) whose dir-merge file is
    /// being read; `None` outside per-directory parsing.
    dir: Option<Vec<u8>>,
    /// Where the text being parsed comes from: `None` for an argument (its
    /// text may be shown), else the file being read and its current line.
    origin: Option<(Origin, usize)>,
    /// The next file loaded is a per-directory file named by a rule read
    /// from a file earlier (its location is gone by now).
    deferred: bool,
    /// Files being read right now: their rules' text is file content.
    in_file: usize,
}

impl<'s> Ctx<'s> {
    fn new(source: &'s mut dyn FileSource, dir: Option<Vec<u8>>) -> Self {
        Ctx {
            source,
            depth: 0,
            dir,
            origin: None,
            deferred: false,
            in_file: 0,
        }
    }
}

/// Where a rule file's rules may be said to come from in messages (stock's
/// `rule_src_where`): its own name when an argument named it; otherwise
/// only where it was named, since its name is file content too.
#[derive(Clone, Debug)]
enum Origin {
    /// Named by an argument: `FILE line N` (just `FILE` for word-split files).
    Shown(String, bool),
    /// Named by a rule read from a file: this description.
    Hidden(String),
}

impl Origin {
    fn place(&self, line: usize) -> String {
        match self {
            Origin::Shown(path, false) => format!("{path} line {line}"),
            Origin::Shown(path, true) => path.clone(),
            Origin::Hidden(text) => text.clone(),
        }
    }
}

/// An ordered filter-rule list plus per-directory merge state.
///
/// Build it by calling the `add_*` methods in command-line order, then
/// check paths with [`FilterSet::check`]. A tree walker calls
/// [`FilterSet::enter_dir`] before checking a directory's entries and
/// [`FilterSet::leave_dir`] when done with it. Clone a configured set to
/// get independent walk state (one per walk or per side).
#[derive(Clone, Debug, Default)]
pub struct FilterSet {
    /// Shared so that clones (one per walk or per directory) are cheap.
    entries: Arc<Vec<Entry>>,
    cvs: Arc<Vec<Entry>>,
    cvs_loaded: bool,
    cvs_env: CvsEnv,
    slots: Vec<Slot>,
    level: usize,
    delete_excluded: bool,
    from0: bool,
    abs_root: Vec<u8>,
    f_count: u32,
    /// Index in `entries` where `add_cvs_exclude` appended its rules.
    cvs_exclude_at: Option<usize>,
    /// Every rule applies to both sides (the daemon's own list: rsync
    /// never elides its rules).
    all_sides: bool,
    /// A dir-merge rule was parsed (even one dropped as a duplicate).
    saw_dir_merge: bool,
    /// Rules discarded without failing (over-long ones, as stock rsync).
    warnings: Warnings,
    /// How traces name the top-level list (stock's list `debug_type`: empty, or
    /// ` [daemon]` for a module's list).
    label: &'static str,
}

/// How traces name the global CVS-ignore list.
const CVS_LABEL: &str = " [global CVS]";

/// The rule that decided a check, and the list it is in: what stock's
/// `--debug=filter` trace reports (see [`FilterSet::check_match`]).
#[derive(Clone, Copy, Debug)]
pub struct Matched<'a> {
    rule: &'a Rule,
    list: &'a str,
}

impl<'a> Matched<'a> {
    /// The matching rule.
    pub fn rule(&self) -> &'a Rule {
        self.rule
    }

    /// What the match decides.
    pub fn decision(&self) -> Decision {
        if self.rule.flags & bits::INCLUDE != 0 {
            Decision::Include
        } else {
            Decision::Exclude
        }
    }

    /// The rule as the trace names it: its pattern with the `/` of a
    /// directory-only rule, then the list it is in (` [per-dir NAME]`,
    /// ` [global CVS]`, ` [daemon]`, or nothing for the top-level list).
    /// A pattern read from a file is not shown, only that it came from one.
    pub fn describe(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rule.pattern.len() + self.list.len() + 1);
        if self.rule.from_file() {
            out.extend_from_slice(b"<rule from a file read earlier>");
        } else {
            out.extend_from_slice(&self.rule.pattern);
            if self.rule.dir_only() {
                out.push(b'/');
            }
        }
        out.extend_from_slice(self.list.as_bytes());
        out
    }
}

/// Collected warnings; a clone starts with none (they belong to whoever
/// built the set).
#[derive(Debug, Default)]
pub(crate) struct Warnings(pub(crate) Vec<FilterError>);

impl Clone for Warnings {
    fn clone(&self) -> Self {
        Warnings(Vec::new())
    }
}

fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&c| c == b'/') {
        Some(pos) => &path[pos + 1..],
        None => path,
    }
}

fn bytes_to_path(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

impl FilterSet {
    /// An empty set: everything is included.
    pub fn new() -> Self {
        Self::default()
    }

    /// `--delete-excluded`: from now on, rules without a side modifier
    /// apply to the sender only (so they no longer protect on the
    /// receiver). Call it where the option appears, as rsync does.
    pub fn set_delete_excluded(&mut self, on: bool) {
        self.delete_excluded = on;
    }

    /// Whether `--delete-excluded` is in effect.
    pub fn delete_excluded(&self) -> bool {
        self.delete_excluded
    }

    /// `--from0`: rule files are NUL-separated (applies to every file read).
    pub fn set_from0(&mut self, on: bool) {
        self.from0 = on;
    }

    /// The environment `-C` reads ($HOME/.cvsignore, $CVSIGNORE). Set it
    /// before adding rules: the CVS list is built by the first `-C` rule.
    pub fn set_cvs_env(&mut self, env: CvsEnv) {
        self.cvs_env = env;
    }

    /// The absolute path of the transfer root (no leading `/`), used by
    /// rules with the `/` modifier. Empty: such rules see relative paths.
    pub fn set_abs_root(&mut self, root: &[u8]) {
        let trimmed = root.strip_prefix(b"/").unwrap_or(root);
        let trimmed = trimmed.strip_suffix(b"/").unwrap_or(trimmed);
        self.abs_root = trimmed.to_vec();
    }

    /// `--filter=RULE` (`-f`): one rule in full syntax. `merge` rules read
    /// their file through `source`.
    pub fn add_filter(
        &mut self,
        rule: &[u8],
        source: &mut dyn FileSource,
    ) -> Result<(), FilterError> {
        self.add_top(rule, 0, Mode::default(), source)
    }

    /// `--exclude=PATTERN`: only `- `, `+ ` and `!` prefixes are recognised.
    pub fn add_exclude(&mut self, pattern: &[u8]) -> Result<(), FilterError> {
        let mode = Mode {
            old_prefixes: true,
            ..Mode::default()
        };
        self.add_top(pattern, 0, mode, &mut crate::source::NoFiles)
    }

    /// `--include=PATTERN`.
    pub fn add_include(&mut self, pattern: &[u8]) -> Result<(), FilterError> {
        let mode = Mode {
            old_prefixes: true,
            ..Mode::default()
        };
        self.add_top(pattern, bits::INCLUDE, mode, &mut crate::source::NoFiles)
    }

    /// `--exclude-from=FILE` (`include == false`) or `--include-from=FILE`:
    /// one pattern per line, `#`/`;` comments, blank lines skipped, `- `/`+ `
    /// prefixes allowed. A missing file is an error.
    pub fn add_from_file(
        &mut self,
        path: &Path,
        include: bool,
        source: &mut dyn FileSource,
    ) -> Result<(), FilterError> {
        let mode = Mode {
            old_prefixes: true,
            fatal_missing: true,
            ..Mode::default()
        };
        self.load_top_file(path, include, mode, source)
    }

    /// Like [`FilterSet::add_from_file`] with the file's bytes already read
    /// (e.g. `--exclude-from=-` from stdin). `name` is used in errors.
    pub fn add_from_bytes(
        &mut self,
        name: &Path,
        data: &[u8],
        include: bool,
    ) -> Result<(), FilterError> {
        let template = if include { bits::INCLUDE } else { 0 };
        let mode = Mode {
            old_prefixes: true,
            fatal_missing: true,
            ..Mode::default()
        };
        self.edit_top(&mut crate::source::NoFiles, |set, entries, ctx| {
            set.add_file_data(entries, &mut false, name, data, template, mode, ctx)
        })
    }

    /// `-F`: the first adds `dir-merge /.rsync-filter`, the second
    /// `- .rsync-filter`, later ones nothing.
    pub fn add_f_option(&mut self) -> Result<(), FilterError> {
        self.f_count += 1;
        match self.f_count {
            1 => self.add_filter(b": /.rsync-filter", &mut crate::source::NoFiles),
            2 => self.add_filter(b"- .rsync-filter", &mut crate::source::NoFiles),
            _ => Ok(()),
        }
    }

    /// `-C` / `--cvs-exclude`: call once after all other filter options;
    /// appends `:C` (per-directory `.cvsignore`) and `-C` (the default CVS
    /// list, $HOME/.cvsignore, $CVSIGNORE), as rsync does.
    pub fn add_cvs_exclude(&mut self) -> Result<(), FilterError> {
        self.cvs_exclude_at = Some(self.entries.len());
        self.add_filter(b":C", &mut crate::source::NoFiles)?;
        self.add_filter(b"-C", &mut crate::source::NoFiles)
    }

    /// Makes every rule apply to both sides, whatever its modifiers (used
    /// for the daemon's module list).
    pub(crate) fn set_all_sides(&mut self) {
        self.all_sides = true;
        self.label = " [daemon]";
    }

    /// Rules in the daemon's module-parameter syntax (see [`crate::daemon`]).
    pub(crate) fn add_daemon_text(
        &mut self,
        text: &[u8],
        template: u32,
        old_prefixes: bool,
        source: &mut dyn FileSource,
    ) -> Result<(), FilterError> {
        let mode = Mode {
            old_prefixes,
            abs_if_slash: true,
            dir_to_wild3: true,
            fatal_missing: true,
            ..Mode::default()
        };
        self.add_top(text, template, mode, source)
    }

    pub(crate) fn add_daemon_file(
        &mut self,
        path: &Path,
        include: bool,
        source: &mut dyn FileSource,
    ) -> Result<(), FilterError> {
        let mode = Mode {
            old_prefixes: true,
            abs_if_slash: true,
            dir_to_wild3: true,
            fatal_missing: true,
            ..Mode::default()
        };
        self.load_top_file(path, include, mode, source)
    }

    /// Reads an include/exclude file into the top-level list.
    fn load_top_file(
        &mut self,
        path: &Path,
        include: bool,
        mode: Mode,
        source: &mut dyn FileSource,
    ) -> Result<(), FilterError> {
        let template = if include { bits::INCLUDE } else { 0 };
        let what = if include { "include" } else { "exclude" };
        self.edit_top(source, |set, entries, ctx| {
            set.load_file(entries, &mut false, path, template, mode, what, ctx)
        })
    }

    /// Runs `edit` on the top-level list (taken out of its `Arc` for the
    /// duration) with a fresh parsing context.
    fn edit_top(
        &mut self,
        source: &mut dyn FileSource,
        edit: impl FnOnce(&mut Self, &mut Vec<Entry>, &mut Ctx<'_>) -> Result<(), FilterError>,
    ) -> Result<(), FilterError> {
        let mut entries = std::mem::take(Arc::make_mut(&mut self.entries));
        let mut ctx = Ctx::new(source, None);
        let result = edit(self, &mut entries, &mut ctx);
        self.entries = Arc::new(entries);
        result
    }

    /// Parses wire-received or command-line text into the top-level list.
    pub(crate) fn add_top(
        &mut self,
        text: &[u8],
        template: u32,
        mode: Mode,
        source: &mut dyn FileSource,
    ) -> Result<(), FilterError> {
        self.edit_top(source, |set, entries, ctx| {
            set.add_text(entries, &mut false, text, template, mode, ctx)
        })
    }

    /// The top-level rules in order (dir-merge rules included; `-C`
    /// placeholders included; merge files already expanded).
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.entries.iter().map(Entry::rule)
    }

    /// The global CVS-ignore rules (loaded by the first `-C`).
    pub fn cvs_rules(&self) -> impl Iterator<Item = &Rule> {
        self.cvs.iter().map(Entry::rule)
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn cvs_entries(&self) -> &[Entry] {
        &self.cvs
    }

    pub(crate) fn cvs_exclude_at(&self) -> Option<usize> {
        self.cvs_exclude_at
    }

    /// True once any dir-merge rule was given. A receiver then has to
    /// trust the sender's filtering (it cannot see the sender's
    /// per-directory files); otherwise it may reject file-list names its
    /// own sender-side rules exclude, as stock rsync does.
    pub fn has_dir_merge(&self) -> bool {
        self.saw_dir_merge
    }

    /// Takes the warnings collected so far: rules stock rsync also discards
    /// with a message but without failing (over-long patterns and lines).
    /// The caller should print them (`summary()` for peer-visible output).
    pub fn take_warnings(&mut self) -> Vec<FilterError> {
        std::mem::take(&mut self.warnings.0)
    }

    /// True when no rule at all is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Parses every rule in `text` into `out`.
    #[allow(clippy::too_many_arguments)]
    fn add_text(
        &mut self,
        out: &mut Vec<Entry>,
        stop: &mut bool,
        text: &[u8],
        template: u32,
        mode: Mode,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), FilterError> {
        let mut rest = text;
        while let Some((token, remaining)) = next_rule(rest, template, mode, self.delete_excluded)?
        {
            rest = remaining;
            if token.pattern.len() >= MAX_PATTERN_LEN {
                // Stock rsync discards the rule, says so, and goes on.
                self.warnings.0.push(FilterError::TooLong {
                    len: token.pattern.len(),
                    limit: MAX_PATTERN_LEN - 1,
                    rule: crate::error::lossy(token.pattern),
                });
                continue;
            }
            let mut flags = token.flags;
            if ctx.in_file > 0 {
                flags |= bits::FROM_FILE;
            }
            if flags & bits::PERDIR != 0 {
                self.saw_dir_merge = true;
            }
            if flags & bits::CLEAR != 0 {
                self.clear(out);
                *stop = true;
                continue;
            }
            let mut pattern = token.pattern;
            if flags & bits::MERGE != 0 {
                if pattern.is_empty() {
                    pattern = b".cvsignore";
                }
                if flags & bits::EXCLUDE_SELF != 0 {
                    let own = flags & bits::FROM_FILE;
                    self.push_rule(out, basename(pattern), own, Mode::default(), None);
                    flags &= !bits::EXCLUDE_SELF;
                }
                if flags & bits::PERDIR == 0 {
                    let path = merge_path(pattern, ctx.dir.as_deref(), mode.dir_absolute);
                    let nested = Mode {
                        fatal_missing: true,
                        ..Mode::default()
                    };
                    self.load_file(out, stop, &path, flags, nested, "merge", ctx)?;
                    continue;
                }
            }
            let dir = ctx.dir.clone();
            let slots = self.slots.len();
            self.push_rule(out, pattern, flags, mode, dir.as_deref());
            if self.slots.len() > slots {
                let slot = &mut self.slots[slots];
                if flags & bits::FROM_FILE != 0 {
                    let place = ctx
                        .origin
                        .as_ref()
                        .map_or_else(|| "a file read earlier".into(), |(o, n)| o.place(*n));
                    slot.label = format!(" [per-dir <rule from {place}>]").into();
                }
                if ctx.origin.is_some() {
                    // A dir-merge name read from a file: its files are read later, where
                    // messages can no longer say where it was named.
                    slot.from_file = true;
                }
            }
            if flags & bits::CVS != 0 && flags & bits::MERGE == 0 {
                self.load_cvs(flags, ctx)?;
            }
        }
        Ok(())
    }

    /// Empties a list being built, retiring the dir-merge files it named.
    fn clear(&mut self, out: &mut Vec<Entry>) {
        for entry in out.drain(..) {
            if let Entry::DirMerge(_, slot) = entry {
                self.slots[slot].active = false;
            }
        }
    }

    /// rsync's add_rule: final pattern adjustments, then append.
    fn push_rule(
        &mut self,
        out: &mut Vec<Entry>,
        pattern: &[u8],
        mut flags: u32,
        mode: Mode,
        dir: Option<&[u8]>,
    ) {
        if mode.abs_if_slash && flags & bits::SIDES == bits::SENDER {
            // Stock rsyncd parses module filters before it knows its role
            // and drops rules for "the other side" as a receiver would:
            // sender-only rules (hide, `s`) never take effect there.
            return;
        }
        let mut pat = pattern.to_vec();
        if pat.len() > 1 && pat.last() == Some(&b'/') {
            pat.pop();
            flags |= bits::DIRECTORY;
        }
        let has_slash = pat.contains(&b'/');
        if flags & (bits::ABS_PATH | bits::MERGE) == 0 {
            let leading = pat.first() == Some(&b'/');
            if mode.anchored_to_dir && leading {
                // Anchored to the directory holding the merge file.
                if let Some(dir) = dir {
                    if mode.dir_absolute {
                        pat = [dir, &pat].concat();
                        flags |= bits::ABS_PATH;
                    } else if !dir.is_empty() {
                        pat = [b"/", dir, &pat].concat();
                    }
                }
            } else if mode.abs_if_slash && has_slash {
                flags |= bits::ABS_PATH;
            }
        }
        if mode.dir_to_wild3 && flags & (bits::DIRECTORY | bits::INCLUDE) == bits::DIRECTORY {
            flags &= !bits::DIRECTORY;
            pat.extend_from_slice(b"/***");
        }
        if flags & bits::PERDIR != 0 {
            let name = basename(&pat);
            let dup = self.slots.iter().any(|s| s.active && *s.name == *name);
            if dup {
                return;
            }
            self.slots.push(Slot {
                name: name.into(),
                named: pat.as_slice().into(),
                flags,
                level: self.level,
                active: true,
                from_file: false,
                label: format!(" [per-dir {}]", String::from_utf8_lossy(name)).into(),
                frames: Vec::new(),
            });
            out.push(Entry::DirMerge(
                Rule::new(&pat, flags),
                self.slots.len() - 1,
            ));
        } else if flags & bits::CVS != 0 {
            out.push(Entry::CvsImport(Rule::new(&pat, flags)));
        } else {
            out.push(Entry::Rule(Rule::new(&pat, flags)));
        }
    }

    /// Loads the global CVS-ignore list once.
    fn load_cvs(&mut self, flags: u32, ctx: &mut Ctx<'_>) -> Result<(), FilterError> {
        if self.cvs_loaded {
            return Ok(());
        }
        self.cvs_loaded = true;
        let mut cvs = std::mem::take(Arc::make_mut(&mut self.cvs));
        let env = self.cvs_env.clone();
        let mut stop = false;
        let mut result = self.add_text(
            &mut cvs,
            &mut stop,
            DEFAULT_CVSIGNORE.as_bytes(),
            flags | bits::PERISHABLE,
            Mode::default(),
            ctx,
        );
        if result.is_ok() {
            if let Some(home) = &env.home_cvsignore {
                let name = Path::new("$HOME/.cvsignore");
                result = self.add_file_data(
                    &mut cvs,
                    &mut stop,
                    name,
                    home,
                    flags,
                    Mode::default(),
                    ctx,
                );
            }
        }
        if result.is_ok() {
            if let Some(var) = &env.cvsignore_var {
                result = self.add_text(&mut cvs, &mut stop, var, flags, Mode::default(), ctx);
            }
        }
        self.cvs = Arc::new(cvs);
        result
    }

    /// Checks `path` (relative to the transfer root; a leading or trailing
    /// `/` is ignored) for `side`. The first matching rule decides; the
    /// root itself (`""`) never matches.
    pub fn check(&self, path: &[u8], is_dir: bool, side: Side) -> Decision {
        self.check_with(path, is_dir, Check::side(side))
    }

    /// [`FilterSet::check`] with all options.
    pub fn check_with(&self, path: &[u8], is_dir: bool, how: Check) -> Decision {
        self.check_match(path, is_dir, how)
            .map_or(Decision::NoMatch, |m| m.decision())
    }

    /// [`FilterSet::check_with`], saying which rule decided (`None`: no rule
    /// matched), for stock's `--debug=filter` trace.
    pub fn check_match(&self, path: &[u8], is_dir: bool, how: Check) -> Option<Matched<'_>> {
        let path = path.strip_prefix(b"/").unwrap_or(path);
        let path = path.strip_suffix(b"/").unwrap_or(path);
        if path.is_empty() {
            return None;
        }
        self.eval(&self.entries, self.label, &Subject::new(path), is_dir, how)
    }

    /// Sender-side shorthand: is `path` left out of the file list?
    pub fn is_excluded(&self, path: &[u8], is_dir: bool) -> bool {
        self.check(path, is_dir, Side::Sender).is_excluded()
    }

    /// Receiver-side shorthand: may `--delete` not remove `path`?
    pub fn is_protected(&self, path: &[u8], is_dir: bool) -> bool {
        self.check(path, is_dir, Side::Receiver).is_excluded()
    }

    fn eval<'a>(
        &'a self,
        entries: &'a [Entry],
        list: &'a str,
        path: &Subject<'_>,
        is_dir: bool,
        how: Check,
    ) -> Option<Matched<'a>> {
        for entry in entries {
            let rule = entry.rule();
            if how.ignore_perishable && rule.perishable() {
                continue;
            }
            let found = match entry {
                Entry::Rule(rule) => self
                    .rule_hits(rule, path, is_dir, how)
                    .then_some(Matched { rule, list }),
                Entry::DirMerge(_, slot) => self.eval_slot(*slot, path, is_dir, how),
                Entry::CvsImport(_) => self.eval(&self.cvs, CVS_LABEL, path, is_dir, how),
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    fn eval_slot(
        &self,
        slot: usize,
        path: &Subject<'_>,
        is_dir: bool,
        how: Check,
    ) -> Option<Matched<'_>> {
        let slot = self.slots.get(slot)?;
        for frame in slot.frames.iter().rev() {
            let found = self.eval(&frame.entries, &slot.label, path, is_dir, how);
            if found.is_some() || frame.stop {
                return found;
            }
        }
        None
    }

    fn rule_hits(&self, rule: &Rule, path: &Subject<'_>, is_dir: bool, how: Check) -> bool {
        if rule.xattr() != how.xattr
            || !(self.all_sides || rule.applies_to(how.side, self.delete_excluded))
        {
            return false;
        }
        rule.matcher
            .matches(path, is_dir, rule.absolute(), &self.abs_root)
            != rule.negated()
    }
}
