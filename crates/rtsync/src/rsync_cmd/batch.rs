//! `--write-batch`, `--only-write-batch` and `--read-batch` at the front door.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use rtsync_engine::report::{error_line, exit};
use rtsync_engine::Options;
use rtsync_wire::client::{ClientEnv, Outcome};
use rtsync_wire::Error;

use super::{is_remote, report_remote};

/// Runs a transfer that writes or reads a batch; `None` when no batch option was given.
pub fn run(opts: &Options, raw: &[OsString]) -> Option<i32> {
    if opts.read_batch.is_some() {
        return Some(read(opts));
    }
    let name = opts.write_batch.as_ref()?;
    let remote = opts.args.iter().any(|a| is_remote(a.as_bytes()));
    let (recorder, sh) = match rtsync_wire::batch::create(name, opts) {
        Ok(f) => f,
        Err(e) => return Some(fail(&e, remote)),
    };
    let script = rtsync_wire::batch::script_rules(opts)
        .and_then(|rules| rtsync_wire::batch::write_script(sh, raw, opts, &rules));
    if let Err(e) = script {
        return Some(fail(&e, remote));
    }
    let mut env = ClientEnv::from_process();
    env.batch = Some(recorder);
    // A local transfer runs over the protocol too, with ourselves as the receiving server.
    env.local_server = !remote;
    Some(report_remote(opts, &env))
}

fn read(opts: &Options) -> i32 {
    let Some(dest) = opts.args.last() else {
        eprintln!("rsync: --read-batch needs a destination");
        super::client_error(exit::SYNTAX, "main.c(1524)");
        return exit::SYNTAX;
    };
    // Stock opens the batch before it looks at the destination.
    if let Err(e) = rtsync_wire::batch::open_read(opts.read_batch.as_deref().unwrap_or_default()) {
        return fail(&e, true);
    }
    if is_remote(dest.as_bytes()) {
        eprintln!("remote destination is not allowed with --read-batch");
        eprintln!("{}", error_line(exit::SYNTAX, "main.c(1524)", "Receiver"));
        return exit::SYNTAX;
    }
    match rtsync_wire::batch::replay(opts) {
        Ok(outcome) => closing(&outcome),
        Err(e) => fail(&e, true),
    }
}

fn closing(outcome: &Outcome) -> i32 {
    let code = outcome.exit_code();
    if code != exit::OK {
        eprintln!("{}", error_line(code, "main.c(1338)", "Receiver"));
    }
    code
}

/// Reports a fatal error the way stock does for the receiving side.
fn fail(e: &Error, receiver: bool) -> i32 {
    let code = e.exit_code();
    let role = if receiver { "Receiver" } else { "sender" };
    match e {
        Error::BatchOpen { message, .. } if message.starts_with("Batch file") => {
            eprintln!("rsync: [{role}] {message}");
        }
        Error::BatchOpen { message, .. } | Error::Usage(message) => eprintln!("{message}"),
        other => eprintln!("{}", other.client_message()),
    }
    eprintln!("{}", error_line(code, "batch.c(271)", role));
    code
}
