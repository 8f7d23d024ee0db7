//! Runs the wire client with rsync-style arguments (a debugging aid until the binary is wired).

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let opts = match rtsync_engine::Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rsync: {e}");
            std::process::exit(1);
        }
    };
    let code =
        match rtsync_wire::client::run(&opts, &rtsync_wire::client::ClientEnv::from_process()) {
            Ok(o) => o.exit_code(),
            Err(e) => {
                eprintln!("rsync: {e}");
                e.exit_code()
            }
        };
    std::process::exit(code);
}
