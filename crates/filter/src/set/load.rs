//! Reading rule files: merge files, exclude/include-from files and
//! per-directory files, split into rules as rsync reads them.

use std::path::{Path, PathBuf};

use super::{
    bits, bytes_to_path, Ctx, Entry, FilterError, FilterSet, Mode, MAX_LINE_LEN, MAX_MERGE_DEPTH,
};
use crate::parse::is_space;
use crate::source::MAX_RULE_FILE_BYTES;

impl FilterSet {
    /// Reads a rule file through the context's source and parses it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn load_file(
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
            // Stock opens per-directory files by their full path and takes any failure as
            // "none here": a name too long to open is not an error.
            Err(source)
                if !mode.fatal_missing && source.raw_os_error() == Some(libc::ENAMETOOLONG) =>
            {
                return Ok(())
            }
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
        // Where this file's rules come from, for messages: its name when an argument named
        // it, else where it was named (or nothing, for a per-directory file whose name was
        // read from a file long before).
        let word_split = template & bits::WORD_SPLIT != 0;
        let origin = if std::mem::take(&mut ctx.deferred) {
            super::Origin::Hidden("a file read earlier".into())
        } else {
            match &ctx.origin {
                None => super::Origin::Shown(
                    ctx.source
                        .display(path)
                        .unwrap_or_else(|| path.display().to_string()),
                    word_split,
                ),
                Some((parent, line)) => {
                    super::Origin::Hidden(format!("a file named at {}", parent.place(*line)))
                }
            }
        };
        let parent = ctx.origin.replace((origin, 0));
        ctx.depth += 1;
        let result = self.add_file_data(out, stop, path, &data, template, mode, ctx);
        ctx.depth -= 1;
        ctx.origin = parent;
        result
    }

    /// Splits a rule file into rules (lines, or words for `w`/`C` files)
    /// and parses each; errors carry the file and line.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_file_data(
        &mut self,
        out: &mut Vec<Entry>,
        stop: &mut bool,
        path: &Path,
        data: &[u8],
        template: u32,
        mode: Mode,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), FilterError> {
        ctx.in_file += 1;
        let result = self.add_file_lines(out, stop, path, data, template, mode, ctx);
        ctx.in_file -= 1;
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn add_file_lines(
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
        let at = |line: Option<usize>, place: String, e: FilterError| match e {
            e @ FilterError::InFile { .. } => e,
            e => FilterError::InFile {
                path: path.to_path_buf(),
                line,
                place,
                error: Box::new(e),
            },
        };
        for (index, line) in split_rule_lines(data, word_split, from0).enumerate() {
            let line_no = (!word_split).then_some(index + 1);
            if let Some((_, n)) = ctx.origin.as_mut() {
                *n = index + 1;
            }
            let place = ctx
                .origin
                .as_ref()
                .map_or_else(|| path.display().to_string(), |(o, n)| o.place(*n));
            if line.len() > MAX_LINE_LEN {
                // Stock rsync discards the line, says so, and goes on.
                self.warnings.0.push(at(
                    line_no,
                    place,
                    FilterError::TooLong {
                        len: line.len(),
                        limit: MAX_LINE_LEN,
                        rule: String::new(),
                    },
                ));
                continue;
            }
            if line.is_empty() || (!word_split && (line[0] == b';' || line[0] == b'#')) {
                continue;
            }
            let warned = self.warnings.0.len();
            self.add_text(out, stop, line, template, mode, ctx)
                .map_err(|e| at(line_no, place.clone(), e))?;
            // Locate warnings raised by this line.
            for warning in self.warnings.0.iter_mut().skip(warned) {
                let inner = std::mem::replace(warning, FilterError::TooModern { protocol: 0 });
                *warning = at(line_no, place.clone(), inner);
            }
        }
        Ok(())
    }
}

/// The path a `merge` rule names: as given, or (inside a per-directory
/// file, for a name with a `/`) relative to that file's directory.
pub(super) fn merge_path(name: &[u8], dir: Option<&[u8]>, dir_absolute: bool) -> PathBuf {
    match dir {
        Some(dir)
            if name.first() != Some(&b'/')
                && (dir_absolute || (!dir.is_empty() && name.contains(&b'/'))) =>
        {
            bytes_to_path(&[dir, b"/", name].concat())
        }
        _ => bytes_to_path(name),
    }
}

/// Collapses `.`, `..` and repeated `/` in an absolute path; the result
/// has no trailing `/` (the root is `""`).
pub(super) fn clean_abs(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&c| c == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    let mut out = Vec::new();
    for part in parts {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    out
}

/// Splits rule-file bytes as rsync reads them: on `\n`, `\r` or `\r\n`
/// (or on NUL with `--from0`); word-split files also on whitespace. Without
/// `--from0` a NUL ends the line's text (rsync keeps the line in a C string).
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
        match from0 {
            false => line.split(|&c| c == 0).next(),
            true => Some(line),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::split_rule_lines;

    #[test]
    fn a_nul_ends_a_line_unless_from0() {
        let lines: Vec<&[u8]> = split_rule_lines(b"- a\0- b\r\n+ c\r- d\n", false, false).collect();
        assert_eq!(lines, [&b"- a"[..], b"+ c", b"- d"]);
        let lines: Vec<&[u8]> = split_rule_lines(b"- a\0- b\n\0", false, true).collect();
        assert_eq!(lines, [&b"- a"[..], b"- b\n"]);
    }
}
