//! The argument vector a client sends to the server side (`rsync --server ...`), built from
//! the client's options the way stock rsync's `server_options()` orders them.

use rtsync_engine::{DeleteMode, Options};

use crate::negotiate::CLIENT_CAPABILITIES;

/// Builds the server's arguments (without the trailing `.` and paths).
/// `remote_is_sender` is true when we pull (the server sends).
/// Adds `i` to the capabilities after `-e.` in the option bundle: the client asks for
/// incremental recursion (the server grants it with CF_INC_RECURSE).
pub fn offer_inc_recurse(args: &mut [String]) {
    if let Some(bundle) = args
        .iter_mut()
        .find(|a| a.starts_with('-') && !a.starts_with("--") && a.contains("e."))
    {
        let at = bundle.find("e.").expect("found above") + 2;
        bundle.insert(at, 'i');
    }
}

pub fn server_args(o: &Options, remote_is_sender: bool) -> Vec<String> {
    let mut args = vec!["--server".to_string()];
    if remote_is_sender {
        args.push("--sender".into());
    }
    let we_send = !remote_is_sender;
    // -d: given (not implied by --files-from), or needed to list or to delete without -r.
    let explicit_dirs = o.dirs && o.files_from.is_none();
    let dirs_only = o.dirs && !o.recursive;
    let mut s = String::from("-");
    for _ in 0..o.verbose.min(9) {
        s.push('v');
    }
    if o.quiet && o.stderr_mode != Some(0) {
        s.push('q');
    }
    if o.backup {
        s.push('b');
    }
    if o.update {
        s.push('u');
    }
    if o.dry_run {
        s.push('n');
    }
    if o.links {
        s.push('l');
    }
    if (explicit_dirs && !o.recursive) || (dirs_only && (o.list_only || (o.deleting() && we_send)))
    {
        s.push('d');
    }
    if we_send {
        if o.keep_dirlinks {
            s.push('K');
        }
        if o.prune_empty_dirs {
            s.push('m');
        }
        if o.omit_dir_times && !o.omit_dir_times_implied {
            s.push('O');
        }
        if o.omit_link_times {
            s.push('J');
        }
        // (-yy means the basis dirs too: without any it is -y.)
        let fuzzy = if o.basis_dirs.is_empty() {
            o.fuzzy.min(1)
        } else {
            o.fuzzy.min(2)
        };
        for _ in 0..fuzzy {
            s.push('y');
        }
    } else {
        if o.copy_links {
            s.push('L');
        }
        if o.copy_dirlinks {
            s.push('k');
        }
    }
    if o.whole_file == Some(true) {
        s.push('W');
    }
    if o.hard_links {
        s.push('H');
    }
    if o.owner {
        s.push('o');
    }
    if o.group {
        s.push('g');
    }
    if o.devices {
        s.push('D');
    }
    if o.times {
        s.push('t');
    }
    for _ in 0..o.atimes.min(2) {
        s.push('U');
    }
    if o.perms {
        s.push('p');
    } else if o.executability && we_send {
        s.push('E');
    }
    if o.acls {
        s.push('A');
    }
    for _ in 0..o.xattrs.min(2) {
        s.push('X');
    }
    if o.recursive {
        s.push('r');
    }
    if o.checksum {
        s.push('c');
    }
    if o.cvs_exclude {
        s.push('C');
    }
    if o.ignore_times {
        s.push('I');
    }
    if o.relative {
        s.push('R');
    }
    for _ in 0..o.one_file_system.min(2) {
        s.push('x');
    }
    if o.sparse {
        s.push('S');
    }
    let choice = o.compress_choice.as_deref().map(str::to_ascii_lowercase);
    if o.compress && matches!(choice.as_deref(), None | Some("zlib")) {
        s.push('z');
    }
    s.push('e');
    s.push_str(CLIENT_CAPABILITIES);
    args.push(s);
    if let Some(spec) = &o.iconv {
        // The server is told its own charset only.
        let remote = spec.split_once(',').map_or(spec.as_str(), |(_, r)| r);
        args.push(format!("--iconv={remote}"));
    }

    // Pushing with --list-only too: the receiving server's generator lists, and changes nothing.
    if o.list_only {
        args.push("--list-only".into());
    }
    // Deleting with -d but not -r: the server must not take -r from anywhere else.
    if dirs_only && o.deleting() && we_send {
        args.push("--no-r".into());
    }
    // (A level alone implies compression, so it is always passed on.)
    if let Some(level) = o.compress_level {
        args.push(format!("--compress-level={level}"));
    }
    if o.devices && !o.specials {
        args.push("--no-specials".into());
    } else if !o.devices && o.specials {
        args.push("--specials".into());
    }
    // The receiving server itemizes for our log only when told how we print.
    // (Stock prints names, `%n%L`, whenever --info=name is on: -v, --info=name, --progress.)
    if we_send && (o.info_level("name") > 0 || o.itemize > 0 || o.out_format.is_some()) {
        let fmt = o.out_format.as_deref().unwrap_or("");
        if o.itemize > 1 {
            args.push("--log-format=%i%I".into());
        } else if o.itemize > 0 || rtsync_engine::report::format_has(fmt, b'i') {
            args.push("--log-format=%i".into());
        } else if rtsync_engine::report::format_has(fmt, b'o') {
            args.push("--log-format=%o".into());
        } else if o.verbose == 0 {
            args.push("--log-format=X".into());
        }
    }
    match o.stderr_mode {
        Some(1) => args.push("--msgs2stderr".into()),
        Some(0) => args.push("--no-msgs2stderr".into()),
        _ => {}
    }
    if let Some(b) = o.block_size {
        args.push(format!("-B{b}"));
    }
    if o.timeout > 0 {
        args.push(format!("--timeout={}", o.timeout));
    }
    if let Some(kib) = o
        .bwlimit
        .map(rtsync_engine::bwlimit::BwLimit::kib)
        .filter(|&k| k > 0)
    {
        args.push(format!("--bwlimit={kib}"));
    }
    if let Some(d) = &o.backup_dir {
        args.push("--backup-dir".into());
        args.push(crate::argtext::os_text(d));
    }
    // The suffix only when it is not the default (`~`, or nothing with a backup dir).
    if let Some(sfx) = &o.suffix {
        let default = if o.backup_dir.is_some() { "" } else { "~" };
        if sfx.as_os_str() != default {
            args.push(format!("--suffix={}", crate::argtext::os_text(sfx)));
        }
    }
    if let Some(c) = &o.checksum_choice {
        args.push(format!("--checksum-choice={c}"));
    }
    match choice.as_deref() {
        _ if !o.compress => {}
        None => {}
        Some("zlib") => args.push("--old-compress".into()),
        Some("zlibx") => args.push("--new-compress".into()),
        Some(c) => args.push(format!("--compress-choice={c}")),
    }
    if we_send {
        match o.max_delete {
            Some(n) if n > 0 => args.push(format!("--max-delete={n}")),
            Some(_) => args.push("--max-delete=-1".into()),
            None => {}
        }
        if let Some(n) = o.min_size {
            args.push(format!("--min-size={n}"));
        }
        if let Some(n) = o.max_size {
            args.push(format!("--max-size={n}"));
        }
        match o.delete {
            DeleteMode::Before => args.push("--delete-before".into()),
            DeleteMode::Delay => args.push("--delete-delay".into()),
            DeleteMode::During if o.delete_during_given => args.push("--delete-during".into()),
            DeleteMode::After => args.push("--delete-after".into()),
            // Plain --delete (implied by --delete-excluded, which then says it alone).
            DeleteMode::During if !o.delete_excluded => args.push("--delete".into()),
            DeleteMode::During | DeleteMode::Off => {}
        }
        if o.delete_excluded {
            args.push("--delete-excluded".into());
        }
        if o.force {
            args.push("--force".into());
        }
        if o.only_write_batch && o.write_batch.is_some() {
            // The receiving server changes nothing and expects no file data.
            args.push("--only-write-batch=X".into());
        }
        if o.super_user == Some(true) {
            args.push("--super".into());
        }
        if o.size_only {
            args.push("--size-only".into());
        }
        if o.stats {
            args.push("--stats".into());
        }
    } else if let Some(skip) = &o.skip_compress {
        // The sending server decides what not to compress.
        args.push(format!("--skip-compress={skip}"));
    }
    // (Not the default, 1G.)
    if let Some(m) = &o.max_alloc {
        if rtsync_engine::options::parse_size(m, b'b') != Some(1 << 30) {
            args.push(format!("--max-alloc={m}"));
        }
    }
    // Deleting a missing source needs the receiver; a sender ignores one by itself.
    match o.missing_args() {
        2 => args.push("--delete-missing-args".into()),
        1 if remote_is_sender => args.push("--ignore-missing-args".into()),
        _ => {}
    }
    if we_send && o.modify_window != 0 {
        if o.modify_window < 0 {
            args.push(format!("-@{}", o.modify_window));
        } else {
            args.push(format!("--modify-window={}", o.modify_window));
        }
    }
    if let Some(seed) = o.checksum_seed {
        if seed != 0 {
            args.push(format!("--checksum-seed={seed}"));
        }
    }
    if we_send {
        // (As stock: --delay-updates without a partial dir implies `.~tmp~` and keeping
        // partial files.)
        if let Some(pd) = &o.partial_dir {
            args.push("--partial-dir".into());
            args.push(crate::argtext::os_text(pd));
        }
        if o.delay_updates {
            args.push("--delay-updates".into());
        } else if o.partial && o.partial_dir.is_none() {
            args.push("--partial".into());
        }
    }
    if o.ignore_errors {
        args.push("--ignore-errors".into());
    }
    if o.copy_unsafe_links {
        args.push("--copy-unsafe-links".into());
    }
    if o.safe_links {
        args.push("--safe-links".into());
    }
    if o.numeric_ids {
        args.push("--numeric-ids".into());
    }
    if we_send {
        // The receiver maps ids: a pushing client hands its maps over.
        if let Some(m) = &o.usermap {
            args.push(format!("--usermap={m}"));
        }
        if let Some(m) = &o.groupmap {
            args.push(format!("--groupmap={m}"));
        }
        if o.ignore_existing {
            args.push("--ignore-existing".into());
        }
        if o.existing {
            args.push("--existing".into());
        }
        if let Some(t) = &o.temp_dir {
            args.push("--temp-dir".into());
            args.push(crate::argtext::os_text(t));
        }
        if o.fsync {
            args.push("--fsync".into());
        }
        if let Some(kind) = o.alt_dest {
            for d in &o.basis_dirs {
                args.push(kind.option().into());
                args.push(crate::argtext::os_text(d));
            }
        }
    }
    if let Some(info) = info_for_server(o, remote_is_sender) {
        args.push(info);
    }
    if o.append {
        // A server is told `--append --append` for --append-verify.
        args.push("--append".into());
        if o.append_verify {
            args.push("--append".into());
        }
    } else if o.inplace {
        args.push("--inplace".into());
        if o.sparse && o.whole_file == Some(false) && we_send {
            // (For old receivers that mishandled --inplace --sparse, as stock sends it.)
            args.push("--no-W".into());
        }
    }
    if let Some(list) = crate::push_client::remote_files_from(o) {
        // The server reads the list itself.
        args.push("--files-from".into());
        args.push(list);
        if o.from0 {
            args.push("--from0".into());
        }
        if !o.relative {
            args.push("--no-relative".into());
        }
    } else if o.files_from.is_some() && remote_is_sender {
        // The client forwards the list's names over the connection.
        args.push("--files-from=-".into());
        args.push("--from0".into());
        if !o.relative {
            args.push("--no-relative".into());
        }
    }
    if o.relative && !o.implied_dirs {
        args.push("--no-implied-dirs".into());
    }
    if o.write_devices && we_send {
        args.push("--write-devices".into());
    }
    if o.remove_source_files {
        args.push("--remove-source-files".into());
    }
    if o.copy_devices && !we_send {
        args.push("--copy-devices".into());
    }
    if o.preallocate && we_send {
        args.push("--preallocate".into());
    }
    if o.open_noatime && o.atimes <= 1 {
        args.push("--open-noatime".into());
    }
    if o.mkpath && we_send {
        args.push("--mkpath".into());
    }
    // `-M`/`--remote-option`: passed on last, verbatim.
    args.extend(o.remote_options.iter().map(|r| crate::argtext::os_text(r)));
    args
}

/// rsync's `append_mode`: 0 without `--append`, 1 with it, 2 for `--append-verify`.
pub fn append_mode(o: &Options) -> u8 {
    match (o.append, o.append_verify) {
        (false, _) => 0,
        (true, false) => 1,
        (true, true) => 2,
    }
}

/// The `--info` words the server needs, as stock's make_output_option spells them: the ones
/// the user set (not what `-v` implies) that matter to a server (STATS) and to its role
/// (what a receiver or a sender mentions), uppercase, `n` after a level other than 1; with
/// every word of that kind set and five or more at one level, `ALL`/`NONE`/`ALLn` first
/// and the exceptions after it.
fn info_for_server(o: &Options, remote_is_sender: bool) -> Option<String> {
    use rtsync_engine::options::INFO_WORDS;
    const SND: u8 = 1;
    const REC: u8 = 2;
    const SRV: u8 = 4;
    // Where each word is used, in INFO_WORDS' order (W_CLI alone: never sent).
    const WHERE: [u8; INFO_WORDS.len()] = [
        REC,       // backup
        REC,       // copy
        REC,       // del
        0,         // flist
        SND | REC, // misc
        SND | REC, // mount
        SND | REC, // name
        REC,       // nonreg
        0,         // progress
        SND,       // remove
        REC,       // skip
        SRV,       // stats
        SND | REC, // symsafe
    ];
    let role = SRV | if remote_is_sender { SND } else { REC };
    let levels = o.info_user_levels();
    let mut counts = [0usize; 5];
    let (mut skipped, mut max, mut common, mut any) = (0, 0, 0, false);
    for (j, level) in levels.iter().enumerate() {
        if WHERE[j] & role == 0 {
            continue;
        }
        match level {
            None => skipped += 1,
            Some(l) => {
                any = true;
                let l = *l as usize;
                counts[l] += 1;
                if counts[l] > max {
                    (common, max) = (l, counts[l]);
                }
            }
        }
    }
    if !any {
        return None;
    }
    let common = (skipped == 0 && max >= 5).then_some(common as u32);
    let mut out = match common {
        Some(0) => "--info=NONE".to_string(),
        Some(1) => "--info=ALL".to_string(),
        Some(n) => format!("--info=ALL{n}"),
        None => String::new(),
    };
    for (j, level) in levels.iter().enumerate() {
        let Some(l) = *level else { continue };
        if WHERE[j] & role == 0 || Some(l) == common {
            continue;
        }
        out.push_str(if out.is_empty() { "--info=" } else { "," });
        out.push_str(&INFO_WORDS[j].to_ascii_uppercase());
        if l != 1 {
            out.push_str(&l.to_string());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn opts(argv: &[&str]) -> Options {
        let mut a: Vec<OsString> = argv.iter().map(OsString::from).collect();
        a.push("src".into());
        a.push("dst".into());
        Options::parse(&a).unwrap()
    }

    #[test]
    fn remote_options_come_last_as_given() {
        let o = opts(&["-a", "-M--max-size=5", "--remote-option=--del"]);
        let args = server_args(&o, false);
        assert_eq!(args[args.len() - 2..], ["--max-size=5", "--del"]);
    }

    #[test]
    fn arg_table() {
        let cases: &[(&[&str], bool, &[&str])] = &[
            (
                &["-a"],
                true,
                &["--server", "--sender", "-logDtpre.LsfxCIvu"],
            ),
            (&["-a"], false, &["--server", "-logDtpre.LsfxCIvu"]),
            (
                &["-az"],
                true,
                &["--server", "--sender", "-logDtprze.LsfxCIvu"],
            ),
            (
                &["-aHz", "--delete"],
                false,
                &["--server", "-lHogDtprze.LsfxCIvu", "--delete"],
            ),
            (
                &["-az", "--compress-choice=zlib"],
                true,
                &[
                    "--server",
                    "--sender",
                    "-logDtprze.LsfxCIvu",
                    "--old-compress",
                ],
            ),
            (
                &["-rc", "--checksum-choice=md5"],
                true,
                &[
                    "--server",
                    "--sender",
                    "-rce.LsfxCIvu",
                    "--checksum-choice=md5",
                ],
            ),
            (
                &["-r", "-z", "--compress-choice=zstd"],
                true,
                &[
                    "--server",
                    "--sender",
                    "-re.LsfxCIvu",
                    "--compress-choice=zstd",
                ],
            ),
            (
                &["-r", "-M--drop-D", "--remote-option=--debug=ALL"],
                false,
                &["--server", "-re.LsfxCIvu", "--drop-D", "--debug=ALL"],
            ),
            (
                &["-a", "--append-verify"],
                false,
                &["--server", "-logDtpre.LsfxCIvu", "--append", "--append"],
            ),
            (
                &["-a", "--append"],
                true,
                &["--server", "--sender", "-logDtpre.LsfxCIvu", "--append"],
            ),
            (
                &["-a", "--chown=:0", "--usermap=*:1,a b:2"],
                false,
                &[
                    "--server",
                    "-logDtpre.LsfxCIvu",
                    "--usermap=*:1,a b:2",
                    "--groupmap=*:0",
                ],
            ),
            (
                &["-a", "--chown=0:0"],
                true,
                &["--server", "--sender", "-logDtpre.LsfxCIvu"],
            ),
            (
                &["-r", "--files-from=:list"],
                false,
                &["--server", "-rRe.LsfxCIvu", "--files-from", "list"],
            ),
        ];
        for &(argv, pull, want) in cases {
            let got = server_args(&opts(argv), pull);
            assert_eq!(got, want, "{argv:?}");
        }
    }
}
