//! [`FilterSet`]: an ordered rule list with its per-directory merge state,
//! built from command-line style options and checked path by path.

use std::path::{Path, PathBuf};

use crate::cvs::{CvsEnv, DEFAULT_CVSIGNORE};
use crate::error::FilterError;
use crate::parse::{is_space, next_rule, Mode};
use crate::rule::{bits, Decision, Rule, Side};
use crate::source::{FileSource, MAX_RULE_FILE_BYTES};

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
    /// The dir-merge rule's flags: the template for the file's rules.
    flags: u32,
    /// Directory depth at which the rule naming this file was read.
    level: usize,
    /// False once a `clear` dropped the rule naming this file.
    active: bool,
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
    entries: Vec<Entry>,
    cvs: Vec<Entry>,
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
        let template = if include { bits::INCLUDE } else { 0 };
        let mode = Mode {
            old_prefixes: true,
            fatal_missing: true,
            ..Mode::default()
        };
        let mut entries = std::mem::take(&mut self.entries);
        let mut ctx = Ctx {
            source,
            depth: 0,
            dir: None,
        };
        let what = if include { "include" } else { "exclude" };
        let result = self.load_file(
            &mut entries,
            &mut false,
            path,
            template,
            mode,
            what,
            &mut ctx,
        );
        self.entries = entries;
        result
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
        let mut entries = std::mem::take(&mut self.entries);
        let mut ctx = Ctx {
            source: &mut crate::source::NoFiles,
            depth: 0,
            dir: None,
        };
        let result = self.add_file_data(
            &mut entries,
            &mut false,
            name,
            data,
            template,
            mode,
            &mut ctx,
        );
        self.entries = entries;
        result
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

    /// Rules in the daemon's module-parameter syntax (see [`crate::daemon`]).
    pub(crate) fn add_daemon_text(
        &mut self,
        text: &[u8],
        template: u32,
        old_prefixes: bool,
    ) -> Result<(), FilterError> {
        let mode = Mode {
            old_prefixes,
            abs_if_slash: true,
            dir_to_wild3: true,
            fatal_missing: true,
            ..Mode::default()
        };
        self.add_top(text, template, mode, &mut crate::source::NoFiles)
    }

    pub(crate) fn add_daemon_file(
        &mut self,
        path: &Path,
        include: bool,
        source: &mut dyn FileSource,
    ) -> Result<(), FilterError> {
        let template = if include { bits::INCLUDE } else { 0 };
        let mode = Mode {
            old_prefixes: true,
            abs_if_slash: true,
            dir_to_wild3: true,
            fatal_missing: true,
            ..Mode::default()
        };
        let mut entries = std::mem::take(&mut self.entries);
        let mut ctx = Ctx {
            source,
            depth: 0,
            dir: None,
        };
        let what = if include { "include" } else { "exclude" };
        let result = self.load_file(
            &mut entries,
            &mut false,
            path,
            template,
            mode,
            what,
            &mut ctx,
        );
        self.entries = entries;
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
        let mut entries = std::mem::take(&mut self.entries);
        let mut ctx = Ctx {
            source,
            depth: 0,
            dir: None,
        };
        let result = self.add_text(&mut entries, &mut false, text, template, mode, &mut ctx);
        self.entries = entries;
        result
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
                return Err(FilterError::TooLong {
                    len: token.pattern.len(),
                    limit: MAX_PATTERN_LEN - 1,
                });
            }
            let mut flags = token.flags;
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
                    self.push_rule(out, basename(pattern), 0, Mode::default(), None);
                    flags &= !bits::EXCLUDE_SELF;
                }
                if flags & bits::PERDIR == 0 {
                    let path = merge_path(pattern, ctx.dir.as_deref());
                    let nested = Mode {
                        fatal_missing: true,
                        ..Mode::default()
                    };
                    self.load_file(out, stop, &path, flags, nested, "merge", ctx)?;
                    continue;
                }
            }
            let dir = ctx.dir.clone();
            self.push_rule(out, pattern, flags, mode, dir.as_deref());
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
                if let Some(dir) = dir.filter(|d| !d.is_empty()) {
                    let mut full = Vec::with_capacity(dir.len() + pat.len() + 1);
                    full.push(b'/');
                    full.extend_from_slice(dir);
                    full.extend_from_slice(&pat);
                    pat = full;
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
                flags,
                level: self.level,
                active: true,
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
        let mut cvs = std::mem::take(&mut self.cvs);
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
        self.cvs = cvs;
        result
    }

    /// Reads a rule file through the context's source and parses it.
    #[allow(clippy::too_many_arguments)]
    fn load_file(
        &mut self,
        out: &mut Vec<Entry>,
        stop: &mut bool,
        path: &Path,
        template: u32,
        mode: Mode,
        what: &'static str,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), FilterError> {
        if ctx.depth >= MAX_MERGE_DEPTH {
            return Err(FilterError::MergeDepth {
                path: path.to_path_buf(),
                limit: MAX_MERGE_DEPTH,
            });
        }
        let data = match ctx.source.read(path) {
            Ok(Some(data)) => data,
            Ok(None) if mode.fatal_missing => {
                return Err(FilterError::NotFound {
                    what,
                    path: path.to_path_buf(),
                })
            }
            Ok(None) => return Ok(()),
            Err(source) => {
                return Err(FilterError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        if data.len() > MAX_RULE_FILE_BYTES {
            return Err(FilterError::FileTooLarge {
                path: path.to_path_buf(),
                limit: MAX_RULE_FILE_BYTES,
            });
        }
        ctx.depth += 1;
        let result = self.add_file_data(out, stop, path, &data, template, mode, ctx);
        ctx.depth -= 1;
        result
    }

    /// Splits a rule file into rules (lines, or words for `w`/`C` files)
    /// and parses each; errors carry the file and line.
    #[allow(clippy::too_many_arguments)]
    fn add_file_data(
        &mut self,
        out: &mut Vec<Entry>,
        stop: &mut bool,
        path: &Path,
        data: &[u8],
        template: u32,
        mode: Mode,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), FilterError> {
        let word_split = template & bits::WORD_SPLIT != 0;
        let from0 = self.from0;
        let at = |line: Option<usize>, e: FilterError| match e {
            e @ FilterError::InFile { .. } => e,
            e => FilterError::InFile {
                path: path.to_path_buf(),
                line,
                source: Box::new(e),
            },
        };
        for (index, line) in split_rule_lines(data, word_split, from0).enumerate() {
            let line_no = (!word_split).then_some(index + 1);
            if line.len() > MAX_LINE_LEN {
                return Err(at(
                    line_no,
                    FilterError::TooLong {
                        len: line.len(),
                        limit: MAX_LINE_LEN,
                    },
                ));
            }
            if line.is_empty() || (!word_split && (line[0] == b';' || line[0] == b'#')) {
                continue;
            }
            self.add_text(out, stop, line, template, mode, ctx)
                .map_err(|e| at(line_no, e))?;
        }
        Ok(())
    }

    /// Enters directory `dir` (relative to the transfer root, `""` for the
    /// root itself): reads its dir-merge files through `source` and makes
    /// their rules active for checks of this directory's entries.
    ///
    /// Always pair with [`FilterSet::leave_dir`], even when this returns an
    /// error (the directory is entered either way).
    pub fn enter_dir(
        &mut self,
        dir: &[u8],
        source: &mut dyn FileSource,
    ) -> Result<(), FilterError> {
        self.level += 1;
        let level = self.level;
        let dir = dir.strip_suffix(b"/").unwrap_or(dir);
        let mut ctx = Ctx {
            source,
            depth: 0,
            dir: Some(dir.to_vec()),
        };
        let mode = Mode {
            anchored_to_dir: true,
            ..Mode::default()
        };
        let mut first_error = None;
        // Slots added while reading (nested dir-merge rules) are read for
        // this same directory too: the loop re-checks the length.
        let mut i = 0;
        while i < self.slots.len() {
            let slot = &self.slots[i];
            let flags = slot.flags;
            let mut stop = flags & bits::NO_INHERIT != 0;
            let mut entries = Vec::new();
            if slot.active {
                let mut file = dir.to_vec();
                if !file.is_empty() {
                    file.push(b'/');
                }
                file.extend_from_slice(&slot.name);
                let path = bytes_to_path(&file);
                if let Err(e) = self.load_file(
                    &mut entries,
                    &mut stop,
                    &path,
                    flags,
                    mode,
                    "dir-merge",
                    &mut ctx,
                ) {
                    first_error.get_or_insert(e);
                }
            }
            self.slots[i].frames.push(Frame {
                level,
                entries,
                stop,
            });
            i += 1;
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Leaves the directory entered last, dropping its dir-merge rules.
    pub fn leave_dir(&mut self) {
        let level = self.level;
        if level == 0 {
            return;
        }
        while self.slots.last().is_some_and(|s| s.level == level) {
            self.slots.pop();
        }
        for slot in &mut self.slots {
            if slot.frames.last().is_some_and(|f| f.level == level) {
                slot.frames.pop();
            }
        }
        self.level -= 1;
    }

    /// How many directories are entered.
    pub fn depth(&self) -> usize {
        self.level
    }

    /// Checks `path` (relative to the transfer root, no leading `/`) for
    /// `side`. The first matching rule decides.
    pub fn check(&self, path: &[u8], is_dir: bool, side: Side) -> Decision {
        self.check_with(path, is_dir, Check::side(side))
    }

    /// [`FilterSet::check`] with all options.
    pub fn check_with(&self, path: &[u8], is_dir: bool, how: Check) -> Decision {
        let path = path.strip_prefix(b"/").unwrap_or(path);
        if path.is_empty() {
            return Decision::NoMatch;
        }
        self.eval(&self.entries, path, is_dir, how)
    }

    /// Sender-side shorthand: is `path` left out of the file list?
    pub fn is_excluded(&self, path: &[u8], is_dir: bool) -> bool {
        self.check(path, is_dir, Side::Sender).is_excluded()
    }

    /// Receiver-side shorthand: may `--delete` not remove `path`?
    pub fn is_protected(&self, path: &[u8], is_dir: bool) -> bool {
        self.check(path, is_dir, Side::Receiver).is_excluded()
    }

    fn eval(&self, entries: &[Entry], path: &[u8], is_dir: bool, how: Check) -> Decision {
        for entry in entries {
            let rule = entry.rule();
            if how.ignore_perishable && rule.perishable() {
                continue;
            }
            let decision = match entry {
                Entry::Rule(rule) => self.eval_rule(rule, path, is_dir, how),
                Entry::DirMerge(_, slot) => self.eval_slot(*slot, path, is_dir, how),
                Entry::CvsImport(_) => self.eval(&self.cvs, path, is_dir, how),
            };
            if decision != Decision::NoMatch {
                return decision;
            }
        }
        Decision::NoMatch
    }

    fn eval_slot(&self, slot: usize, path: &[u8], is_dir: bool, how: Check) -> Decision {
        let Some(slot) = self.slots.get(slot) else {
            return Decision::NoMatch;
        };
        for frame in slot.frames.iter().rev() {
            let decision = self.eval(&frame.entries, path, is_dir, how);
            if decision != Decision::NoMatch || frame.stop {
                return decision;
            }
        }
        Decision::NoMatch
    }

    fn eval_rule(&self, rule: &Rule, path: &[u8], is_dir: bool, how: Check) -> Decision {
        if rule.xattr() != how.xattr || !rule.applies_to(how.side, self.delete_excluded) {
            return Decision::NoMatch;
        }
        let hit = rule
            .matcher
            .matches(path, is_dir, rule.absolute(), &self.abs_root)
            != rule.negated();
        match (hit, rule.flags & bits::INCLUDE != 0) {
            (false, _) => Decision::NoMatch,
            (true, true) => Decision::Include,
            (true, false) => Decision::Exclude,
        }
    }
}

/// The path a `merge` rule names: as given, or (inside a per-directory
/// file, for a name with a `/`) relative to that file's directory.
fn merge_path(name: &[u8], dir: Option<&[u8]>) -> PathBuf {
    match dir {
        Some(dir) if !dir.is_empty() && name.first() != Some(&b'/') && name.contains(&b'/') => {
            let mut full = dir.to_vec();
            full.push(b'/');
            full.extend_from_slice(name);
            bytes_to_path(&full)
        }
        _ => bytes_to_path(name),
    }
}

/// Splits rule-file bytes as rsync reads them: on `\n`, `\r` or `\r\n`
/// (or on NUL with `--from0`); word-split files also on whitespace.
fn split_rule_lines(data: &[u8], word_split: bool, from0: bool) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .iter()
            .position(|&c| {
                (word_split && is_space(c))
                    || if from0 {
                        c == 0
                    } else {
                        c == b'\n' || c == b'\r'
                    }
            })
            .unwrap_or(rest.len());
        let line = &rest[..end];
        let mut next = end;
        if next < rest.len() {
            if rest[next] == b'\r' && rest.get(next + 1) == Some(&b'\n') {
                next += 1;
            }
            next += 1;
        }
        rest = &rest[next..];
        Some(line)
    })
}
