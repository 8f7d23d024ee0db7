//! The table of rsyncd.conf parameters: names, scope, type and default, as in rsyncd.conf(5).

/// Where a parameter may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only in the global section (daemon-wide settings).
    Global,
    /// In a module, or in the global section as the default for every module.
    Module,
}

/// How a parameter's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text, `%VAR%` expanded when read.
    Str,
    /// A path: like `Str` with trailing slashes removed.
    Path,
    /// An integer read the way C's `atoi` does.
    Int,
    /// yes/no, true/false, 1/0.
    Bool,
    /// Like `Bool` plus "unset"/-1: the daemon decides.
    Bool3,
    /// A syslog facility name (or number).
    Facility,
}

/// One parameter of the table.
#[derive(Debug)]
pub struct ParamDef {
    /// Canonical name as written in rsyncd.conf(5).
    pub name: &'static str,
    /// Other accepted spellings.
    pub alias: Option<&'static str>,
    /// Global-only or per module.
    pub scope: Scope,
    /// Value type.
    pub kind: Kind,
    /// Default value in config syntax (`None`: unset/empty).
    pub default: Option<&'static str>,
}

macro_rules! params {
    ($( $id:ident = $name:literal $(| $alias:literal)?, $scope:ident, $kind:ident, $default:expr; )*) => {
        /// Index of each parameter in [`PARAMS`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum P { $($id,)* }

        /// Every parameter the daemon knows, indexed by [`P`].
        pub static PARAMS: &[ParamDef] = &[
            $(ParamDef {
                name: $name,
                alias: params!(@alias $($alias)?),
                scope: Scope::$scope,
                kind: Kind::$kind,
                default: $default,
            },)*
        ];
    };
    (@alias) => { None };
    (@alias $a:literal) => { Some($a) };
}

/// Files that are already compressed: stock's default `dont compress` list.
pub const DEFAULT_DONT_COMPRESS: &str = "*.7z *.ace *.apk *.avi *.bz2 *.deb *.flac *.gpg *.gz *.iso *.jar *.jpeg *.jpg *.lz *.lz4 *.lzma *.lzo *.mkv *.mov *.mp3 *.mp4 *.odb *.odf *.odg *.odi *.odm *.odp *.ods *.odt *.ogg *.ogv *.opus *.otg *.oth *.otp *.ots *.ott *.oxt *.png *.rar *.rpm *.rzip *.squashfs *.tbz *.tgz *.tlz *.txz *.tzo *.webm *.webp *.xz *.z *.zip *.zst";

params! {
    BindAddress = "bind address" | "address", Global, Str, None;
    DaemonChroot = "daemon chroot", Global, Str, None;
    DaemonUid = "daemon uid", Global, Str, None;
    DaemonGid = "daemon gid", Global, Str, None;
    MotdFile = "motd file", Global, Str, None;
    PidFile = "pid file", Global, Str, None;
    ProxyProtocolHosts = "proxy protocol hosts", Global, Str, None;
    SocketOptions = "socket options", Global, Str, None;
    ListenBacklog = "listen backlog", Global, Int, Some("5");
    RsyncPort = "rsync port" | "port", Global, Int, Some("0");
    ProxyProtocol = "proxy protocol", Global, Bool, Some("no");

    AuthDigest = "auth digest", Module, Str, None;
    AuthUsers = "auth users", Module, Str, None;
    Charset = "charset", Module, Str, None;
    Comment = "comment", Module, Str, None;
    DontCompress = "dont compress", Module, Str, Some(DEFAULT_DONT_COMPRESS);
    EarlyExec = "early exec", Module, Str, None;
    Exclude = "exclude", Module, Str, None;
    ExcludeFrom = "exclude from", Module, Str, None;
    Filter = "filter", Module, Str, None;
    Gid = "gid", Module, Str, None;
    HostsAllow = "hosts allow", Module, Str, None;
    HostsDeny = "hosts deny", Module, Str, None;
    Include = "include", Module, Str, None;
    IncludeFrom = "include from", Module, Str, None;
    IncomingChmod = "incoming chmod", Module, Str, None;
    LockFile = "lock file", Module, Str, Some("/var/run/rsyncd.lock");
    LogFile = "log file", Module, Str, None;
    LogFormat = "log format", Module, Str, Some("%o %h [%a] %m (%u) %f %l");
    Name = "name", Module, Str, None;
    NameConverter = "name converter", Module, Str, None;
    OutgoingChmod = "outgoing chmod", Module, Str, None;
    PostXferExec = "post-xfer exec", Module, Str, None;
    PreXferExec = "pre-xfer exec", Module, Str, None;
    RefuseOptions = "refuse options", Module, Str, None;
    SecretsFile = "secrets file", Module, Str, None;
    SyslogTag = "syslog tag", Module, Str, Some("rsyncd");
    Uid = "uid", Module, Str, None;
    Path = "path", Module, Path, None;
    TempDir = "temp dir", Module, Path, None;
    MaxConnections = "max connections", Module, Int, Some("0");
    MaxVerbosity = "max verbosity", Module, Int, Some("1");
    Timeout = "timeout", Module, Int, Some("0");
    SyslogFacility = "syslog facility", Module, Facility, Some("daemon");
    FakeSuper = "fake super", Module, Bool, Some("no");
    ForwardLookup = "forward lookup", Module, Bool, Some("yes");
    IgnoreErrors = "ignore errors", Module, Bool, Some("no");
    IgnoreNonreadable = "ignore nonreadable", Module, Bool, Some("no");
    InsecureLinks = "insecure links", Module, Bool, Some("no");
    List = "list", Module, Bool, Some("yes");
    ReadOnly = "read only", Module, Bool, Some("yes");
    ReverseLookup = "reverse lookup", Module, Bool, Some("yes");
    StrictModes = "strict modes", Module, Bool, Some("yes");
    TransferLogging = "transfer logging", Module, Bool, Some("no");
    WriteOnly = "write only", Module, Bool, Some("no");
    MungeSymlinks = "munge symlinks", Module, Bool3, None;
    NumericIds = "numeric ids", Module, Bool3, None;
    OpenNoatime = "open noatime", Module, Bool3, None;
    UseChroot = "use chroot", Module, Bool3, None;
}

/// Case-insensitive equality that ignores all whitespace, as rsyncd.conf names are compared.
pub fn name_eq(a: &str, b: &str) -> bool {
    let mut a = a.bytes().filter(|c| !c.is_ascii_whitespace());
    let mut b = b.bytes().filter(|c| !c.is_ascii_whitespace());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(&y) => {}
            _ => return false,
        }
    }
}

/// Finds a parameter by any spelling (case and whitespace insensitive).
pub fn lookup(name: &str) -> Option<P> {
    if name.starts_with('-') {
        return None;
    }
    PARAMS
        .iter()
        .position(|d| name_eq(d.name, name) || d.alias.is_some_and(|a| name_eq(a, name)))
        .map(index_to_p)
}

fn index_to_p(i: usize) -> P {
    // The table and the enum are generated together, so the index always maps back.
    ALL[i]
}

/// Every [`P`] in table order.
pub static ALL: &[P] = &[
    P::BindAddress,
    P::DaemonChroot,
    P::DaemonUid,
    P::DaemonGid,
    P::MotdFile,
    P::PidFile,
    P::ProxyProtocolHosts,
    P::SocketOptions,
    P::ListenBacklog,
    P::RsyncPort,
    P::ProxyProtocol,
    P::AuthDigest,
    P::AuthUsers,
    P::Charset,
    P::Comment,
    P::DontCompress,
    P::EarlyExec,
    P::Exclude,
    P::ExcludeFrom,
    P::Filter,
    P::Gid,
    P::HostsAllow,
    P::HostsDeny,
    P::Include,
    P::IncludeFrom,
    P::IncomingChmod,
    P::LockFile,
    P::LogFile,
    P::LogFormat,
    P::Name,
    P::NameConverter,
    P::OutgoingChmod,
    P::PostXferExec,
    P::PreXferExec,
    P::RefuseOptions,
    P::SecretsFile,
    P::SyslogTag,
    P::Uid,
    P::Path,
    P::TempDir,
    P::MaxConnections,
    P::MaxVerbosity,
    P::Timeout,
    P::SyslogFacility,
    P::FakeSuper,
    P::ForwardLookup,
    P::IgnoreErrors,
    P::IgnoreNonreadable,
    P::InsecureLinks,
    P::List,
    P::ReadOnly,
    P::ReverseLookup,
    P::StrictModes,
    P::TransferLogging,
    P::WriteOnly,
    P::MungeSymlinks,
    P::NumericIds,
    P::OpenNoatime,
    P::UseChroot,
];

impl P {
    /// This parameter's table entry.
    pub fn def(self) -> &'static ParamDef {
        &PARAMS[self as usize]
    }
}

/// Syslog facilities by name, as rsyncd.conf(5) accepts them.
pub const FACILITIES: &[(&str, i32)] = &[
    ("auth", libc::LOG_AUTH),
    ("authpriv", libc::LOG_AUTHPRIV),
    ("cron", libc::LOG_CRON),
    ("daemon", libc::LOG_DAEMON),
    ("ftp", libc::LOG_FTP),
    ("kern", libc::LOG_KERN),
    ("lpr", libc::LOG_LPR),
    ("mail", libc::LOG_MAIL),
    ("news", libc::LOG_NEWS),
    ("security", libc::LOG_AUTH),
    ("syslog", libc::LOG_SYSLOG),
    ("user", libc::LOG_USER),
    ("uucp", libc::LOG_UUCP),
    ("local0", libc::LOG_LOCAL0),
    ("local1", libc::LOG_LOCAL1),
    ("local2", libc::LOG_LOCAL2),
    ("local3", libc::LOG_LOCAL3),
    ("local4", libc::LOG_LOCAL4),
    ("local5", libc::LOG_LOCAL5),
    ("local6", libc::LOG_LOCAL6),
    ("local7", libc::LOG_LOCAL7),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_enum_agree() {
        assert_eq!(ALL.len(), PARAMS.len());
        for (i, p) in ALL.iter().enumerate() {
            assert_eq!(*p as usize, i);
        }
    }

    #[test]
    fn lookup_is_case_and_space_insensitive() {
        for (text, want) in [
            ("read only", Some(P::ReadOnly)),
            ("READONLY", Some(P::ReadOnly)),
            ("  Read   Only ", Some(P::ReadOnly)),
            ("port", Some(P::RsyncPort)),
            ("rsync port", Some(P::RsyncPort)),
            ("address", Some(P::BindAddress)),
            ("post-xfer exec", Some(P::PostXferExec)),
            ("postxfer exec", None),
            ("-path", None),
            ("bogus", None),
        ] {
            assert_eq!(lookup(text), want, "{text:?}");
        }
    }
}
