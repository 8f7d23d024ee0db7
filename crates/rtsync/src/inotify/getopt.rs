//! Option parsing through the C library's `getopt_long`, so that option permutation, long-option
//! abbreviations and every diagnostic ("invalid option -- 'x'", "option '--ex' is ambiguous…")
//! are exactly those of the tools we stand in for, which use the same function.

use std::ffi::{c_char, c_int, CString, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

extern "C" {
    static mut optind: c_int;
    static mut optarg: *mut c_char;
    fn getopt_long(
        argc: c_int,
        argv: *const *mut c_char,
        optstring: *const c_char,
        longopts: *const libc::option,
        longindex: *mut c_int,
    ) -> c_int;
}

/// A long option: its name, whether it takes an argument, and the value reported for it.
pub struct LongOpt {
    /// Name without the leading dashes.
    pub name: &'static str,
    /// Whether it requires an argument.
    pub has_arg: bool,
    /// The option character it reports as.
    pub val: u8,
}

/// One pass over a command line. Not reentrant: the C parser keeps global state, which is fine
/// for a process-level front door that parses once.
pub struct Getopt {
    // Owned storage the C parser points into; `argv` is permuted in place by it.
    _strings: Vec<CString>,
    argv: Vec<*mut c_char>,
    short: CString,
    _long_names: Vec<CString>,
    long: Vec<libc::option>,
    done: bool,
}

/// What one call found.
pub enum Opt {
    /// An option character and its argument, if it takes one.
    Found(u8, Option<OsString>),
    /// An unknown option or a missing argument; the diagnostic has been printed.
    Error,
}

impl Getopt {
    /// Prepares to parse `args` (with the program name first).
    pub fn new(args: &[OsString], short: &str, long: &[LongOpt]) -> Self {
        let strings: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_bytes()).unwrap_or_else(|_| CString::from(c"")))
            .collect();
        let mut argv: Vec<*mut c_char> =
            strings.iter().map(|s| s.as_ptr() as *mut c_char).collect();
        argv.push(std::ptr::null_mut());
        let long_names: Vec<CString> = long
            .iter()
            .map(|l| CString::new(l.name).expect("option names have no NUL"))
            .collect();
        let mut long_c: Vec<libc::option> = long
            .iter()
            .zip(&long_names)
            .map(|(l, n)| libc::option {
                name: n.as_ptr(),
                has_arg: c_int::from(l.has_arg),
                flag: std::ptr::null_mut(),
                val: c_int::from(l.val),
            })
            .collect();
        long_c.push(libc::option {
            name: std::ptr::null(),
            has_arg: 0,
            flag: std::ptr::null_mut(),
            val: 0,
        });
        // SAFETY: single-threaded option parsing at program start; zero asks glibc to reset.
        unsafe {
            optind = 0;
        }
        Getopt {
            _strings: strings,
            argv,
            short: CString::new(short).expect("short options have no NUL"),
            _long_names: long_names,
            long: long_c,
            done: false,
        }
    }

    /// The next option, or `None` once the options are over.
    pub fn next_opt(&mut self) -> Option<Opt> {
        if self.done {
            return None;
        }
        let argc = (self.argv.len() - 1) as c_int;
        // SAFETY: `argv` is a NULL-terminated array of pointers to NUL-terminated strings that
        // live as long as `self`; `short` and `long` likewise; the globals are only touched here.
        let c = unsafe {
            getopt_long(
                argc,
                self.argv.as_ptr(),
                self.short.as_ptr(),
                self.long.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        // The tools compare the result as a `char`.
        let c = c as u8 as i8;
        if c == -1 {
            self.done = true;
            return None;
        }
        if c as u8 == b'?' {
            self.done = true;
            return Some(Opt::Error);
        }
        // SAFETY: as above; `optarg` points into one of our strings or is null.
        let arg = unsafe {
            let p = optarg;
            (!p.is_null())
                .then(|| OsString::from_vec(std::ffi::CStr::from_ptr(p).to_bytes().to_vec()))
        };
        Some(Opt::Found(c as u8, arg))
    }

    /// The operands left after the options (in the order the parser left them).
    pub fn operands(&self) -> Vec<OsString> {
        // SAFETY: reading the parser's index after parsing is done.
        let first = unsafe { optind }.max(1) as usize;
        self.argv[..self.argv.len() - 1]
            .iter()
            .skip(first)
            // SAFETY: every non-null entry points into one of our strings.
            .map(|&p| {
                OsString::from_vec(unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes().to_vec())
            })
            .collect()
    }
}
