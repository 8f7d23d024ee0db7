//! `early exec`, `pre-xfer exec` and `post-xfer exec`: operator commands run around a session,
//! started before chroot and privilege drop (so they run with the daemon's rights, outside the
//! module), with the `RSYNC_*` environment of rsyncd.conf(5).

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

/// A started pre-xfer (or early) command waiting for the client's request.
pub struct PreExec {
    pid: libc::pid_t,
    args: Option<std::fs::File>,
    output: Option<std::fs::File>,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: new descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Runs `cmd` with `sh -c` and extra environment `env`, returning its wait status.
pub fn shell(cmd: &str, env: &[(String, String)]) -> i32 {
    let mut c = std::process::Command::new("/bin/sh");
    c.arg("-c").arg(cmd).envs(env.iter().map(|(k, v)| (k, v)));
    match c.status() {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            s.into_raw()
        }
        Err(_) => -1,
    }
}

impl PreExec {
    /// Forks the helper that will run `cmd` once it has the request; with `capture`, its
    /// standard output is kept for the error message.
    pub fn start(cmd: &str, capture: bool, env: &[(String, String)]) -> io::Result<PreExec> {
        let (arg_r, arg_w) = pipe()?;
        let (out_r, out_w) = if capture {
            let (r, w) = pipe()?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let ccmd = CString::new(cmd).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // The environment is built before fork: the child must not touch the process-wide
        // environment (its lock may be held by a thread that does not exist in the child).
        let mut envp: Vec<Vec<u8>> = std::env::vars_os()
            .filter(|(k, _)| {
                !env.iter()
                    .any(|(n, _)| k.as_encoded_bytes() == n.as_bytes())
            })
            .map(|(k, v)| [k.as_encoded_bytes(), b"=", v.as_encoded_bytes()].concat())
            .collect();
        envp.extend(env.iter().map(|(k, v)| format!("{k}={v}").into_bytes()));
        // SAFETY: the connection process is single-threaded; the child only reads a pipe,
        // sets the environment and execs.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            drop(arg_w);
            drop(out_r);
            let mut input = std::fs::File::from(arg_r);
            let mut data = Vec::new();
            let mut byte = [0u8; 1];
            // Read NUL-separated strings up to an empty one; what follows is the command's stdin.
            while let Ok(1) = input.read(&mut byte) {
                data.push(byte[0]);
                if data.ends_with(&[0, 0]) || data == [0] || data.len() > 1 << 20 {
                    break;
                }
            }
            let mut parts = data.split(|b| *b == 0);
            let request = parts.next().unwrap_or_default();
            envp.push([&b"RSYNC_REQUEST="[..], request].concat());
            for (j, a) in parts.take_while(|p| !p.is_empty()).enumerate() {
                envp.push([format!("RSYNC_ARG{j}=").as_bytes(), a].concat());
            }
            let cenv: Vec<CString> = envp
                .into_iter()
                .filter_map(|e| CString::new(e).ok())
                .collect();
            let mut env_ptrs: Vec<*const libc::c_char> = cenv.iter().map(|c| c.as_ptr()).collect();
            env_ptrs.push(std::ptr::null());
            // SAFETY: wiring the pipes to stdin/stdout and exec'ing the shell.
            unsafe {
                use std::os::fd::AsRawFd;
                libc::dup2(input.as_raw_fd(), 0);
                if let Some(w) = &out_w {
                    libc::dup2(w.as_raw_fd(), 1);
                }
                let argv = [
                    c"sh".as_ptr(),
                    c"-c".as_ptr(),
                    ccmd.as_ptr(),
                    std::ptr::null(),
                ];
                libc::execve(c"/bin/sh".as_ptr(), argv.as_ptr(), env_ptrs.as_ptr());
                libc::_exit(127);
            }
        }
        drop(arg_r);
        drop(out_w);
        Ok(PreExec {
            pid,
            args: Some(arg_w.into()),
            output: out_r.map(Into::into),
        })
    }

    /// Sends the request and arguments (stock's `argv[0]` is "rsyncd").
    pub fn send(&mut self, request: &str, argv: &[String], early_input: &[u8]) {
        if let Some(mut w) = self.args.take() {
            let mut buf = request_bytes(request, argv);
            buf.extend_from_slice(early_input);
            let _ = w.write_all(&buf);
        }
    }

    /// For a `name converter`: sends the request and arguments and keeps the command
    /// running, returning its standard input and output for `usr`/`grp`/`uid`/`gid` queries.
    pub fn converse(
        mut self,
        request: &str,
        argv: &[String],
    ) -> Option<(std::fs::File, std::io::BufReader<std::fs::File>)> {
        let mut w = self.args.take()?;
        w.write_all(&request_bytes(request, argv)).ok()?;
        Some((w, std::io::BufReader::new(self.output.take()?)))
    }

    /// Waits for the command; `Some(message)` when it failed, in stock's words.
    pub fn finish(mut self, desc: &str) -> Option<String> {
        self.args.take();
        let mut out = Vec::new();
        if let Some(r) = self.output.take() {
            let _ = r.take(4096 + 1023).read_to_end(&mut out);
        }
        let mut status = -1;
        // SAFETY: waiting for our own child.
        let rc = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        let ok = rc >= 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        if ok {
            return None;
        }
        let text = String::from_utf8_lossy(&out).replace("\r\n", "\n");
        let sep = if text.is_empty() { "" } else { ":" };
        Some(format!("{desc} returned failure ({status}){sep}\n{text}"))
    }
}

/// What a hook reads first on its standard input: the request (`(NONE)` when empty), then
/// each argument, each NUL-terminated, and an empty one to end them.
fn request_bytes(request: &str, argv: &[String]) -> Vec<u8> {
    let mut buf = Vec::new();
    buf.extend_from_slice(if request.is_empty() {
        b"(NONE)"
    } else {
        request.as_bytes()
    });
    buf.push(0);
    for a in argv {
        buf.extend_from_slice(a.as_bytes());
        buf.push(0);
    }
    buf.push(0);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_exec_sees_request_and_args() {
        let env = [("RSYNC_MODULE_NAME".to_string(), "m".to_string())];
        let mut p = PreExec::start(
            "echo \"$RSYNC_MODULE_NAME $RSYNC_REQUEST|$RSYNC_ARG0|$RSYNC_ARG2|$(cat)\"; exit 3",
            true,
            &env,
        )
        .unwrap();
        p.send(
            "mod/x",
            &["rsyncd".into(), "--server".into(), ".".into()],
            b"early",
        );
        let msg = p.finish("pre-xfer exec").unwrap();
        assert_eq!(
            msg,
            "pre-xfer exec returned failure (768):\nm mod/x|rsyncd|.|early\n"
        );
        let mut ok = PreExec::start("exit 0", true, &[]).unwrap();
        ok.send("", &[], b"");
        assert_eq!(ok.finish("pre-xfer exec"), None);
    }

    #[test]
    fn shell_status() {
        assert_eq!(shell("exit 0", &[]), 0);
        assert_eq!(shell("exit 2", &[]), 2 << 8);
        let env = [("RTSYNC_T".to_string(), "7".to_string())];
        assert_eq!(shell("exit $RTSYNC_T", &env), 7 << 8);
    }
}
