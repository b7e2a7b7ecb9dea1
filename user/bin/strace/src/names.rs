//! Symbolic names for the numbers strace prints: error numbers and their
//! messages, signals, and the `O_*`, `CLONE_*`, `W*`, `SA_*` flag sets.

use alloc::format;
use alloc::string::String;

use syscall::flag::*;

/// Error names by number (the Linux numbering `redox_syscall` uses).
const ERRNO_NAMES: [&str; 132] = [
    "E0",
    "EPERM",
    "ENOENT",
    "ESRCH",
    "EINTR",
    "EIO",
    "ENXIO",
    "E2BIG",
    "ENOEXEC",
    "EBADF",
    "ECHILD",
    "EAGAIN",
    "ENOMEM",
    "EACCES",
    "EFAULT",
    "ENOTBLK",
    "EBUSY",
    "EEXIST",
    "EXDEV",
    "ENODEV",
    "ENOTDIR",
    "EISDIR",
    "EINVAL",
    "ENFILE",
    "EMFILE",
    "ENOTTY",
    "ETXTBSY",
    "EFBIG",
    "ENOSPC",
    "ESPIPE",
    "EROFS",
    "EMLINK",
    "EPIPE",
    "EDOM",
    "ERANGE",
    "EDEADLK",
    "ENAMETOOLONG",
    "ENOLCK",
    "ENOSYS",
    "ENOTEMPTY",
    "ELOOP",
    "EWOULDBLOCK",
    "ENOMSG",
    "EIDRM",
    "ECHRNG",
    "EL2NSYNC",
    "EL3HLT",
    "EL3RST",
    "ELNRNG",
    "EUNATCH",
    "ENOCSI",
    "EL2HLT",
    "EBADE",
    "EBADR",
    "EXFULL",
    "ENOANO",
    "EBADRQC",
    "EBADSLT",
    "EDEADLOCK",
    "EBFONT",
    "ENOSTR",
    "ENODATA",
    "ETIME",
    "ENOSR",
    "ENONET",
    "ENOPKG",
    "EREMOTE",
    "ENOLINK",
    "EADV",
    "ESRMNT",
    "ECOMM",
    "EPROTO",
    "EMULTIHOP",
    "EDOTDOT",
    "EBADMSG",
    "EOVERFLOW",
    "ENOTUNIQ",
    "EBADFD",
    "EREMCHG",
    "ELIBACC",
    "ELIBBAD",
    "ELIBSCN",
    "ELIBMAX",
    "ELIBEXEC",
    "EILSEQ",
    "ERESTART",
    "ESTRPIPE",
    "EUSERS",
    "ENOTSOCK",
    "EDESTADDRREQ",
    "EMSGSIZE",
    "EPROTOTYPE",
    "ENOPROTOOPT",
    "EPROTONOSUPPORT",
    "ESOCKTNOSUPPORT",
    "EOPNOTSUPP",
    "EPFNOSUPPORT",
    "EAFNOSUPPORT",
    "EADDRINUSE",
    "EADDRNOTAVAIL",
    "ENETDOWN",
    "ENETUNREACH",
    "ENETRESET",
    "ECONNABORTED",
    "ECONNRESET",
    "ENOBUFS",
    "EISCONN",
    "ENOTCONN",
    "ESHUTDOWN",
    "ETOOMANYREFS",
    "ETIMEDOUT",
    "ECONNREFUSED",
    "EHOSTDOWN",
    "EHOSTUNREACH",
    "EALREADY",
    "EINPROGRESS",
    "ESTALE",
    "EUCLEAN",
    "ENOTNAM",
    "ENAVAIL",
    "EISNAM",
    "EREMOTEIO",
    "EDQUOT",
    "ENOMEDIUM",
    "EMEDIUMTYPE",
    "ECANCELED",
    "ENOKEY",
    "EKEYEXPIRED",
    "EKEYREVOKED",
    "EKEYREJECTED",
    "EOWNERDEAD",
    "ENOTRECOVERABLE",
];

/// `ENOENT (No such file or directory)`, as strace shows a failed call.
pub fn errno(errno: usize) -> String {
    let name = ERRNO_NAMES.get(errno).copied().unwrap_or("E?");
    let text = syscall::error::Error::new(errno as i32).text();
    if name == "E?" {
        format!("E{errno} ({text})")
    } else {
        format!("{name} ({text})")
    }
}

/// `SIGUSR1`, or the number when it names no signal.
pub fn signal(sig: usize) -> String {
    match rt::process::signal_name(sig) {
        "SIG?" | "SIG0" => format!("{sig}"),
        name => String::from(name),
    }
}

/// A set of signals as strace shows it: `[SIGUSR1 SIGCHLD]`, `[]`. Bit
/// `n - 1` of the first word is signal `n` (the kernel's layout).
pub fn sigset(words: [u64; 2]) -> String {
    let mut out = String::from("[");
    let mut first = true;
    for sig in 1..=64usize {
        if words[0] & (1u64 << (sig - 1)) != 0 {
            if !first {
                out.push(' ');
            }
            out.push_str(&signal(sig));
            first = false;
        }
    }
    if words[1] != 0 {
        if !first {
            out.push(' ');
        }
        out.push_str(&format!("{:#x}", words[1]));
    }
    out.push(']');
    out
}

/// Joins the names of the bits of `value` found in `table` with `|`;
/// leftover bits are shown in hex, and no bits at all as `0`.
pub fn flags(value: usize, table: &[(usize, &str)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    for &(bit, name) in table {
        if bit != 0 && rest & bit == bit {
            if !out.is_empty() {
                out.push('|');
            }
            out.push_str(name);
            rest &= !bit;
        }
    }
    if rest != 0 {
        if !out.is_empty() {
            out.push('|');
        }
        out.push_str(&format!("{rest:#x}"));
    }
    if out.is_empty() {
        out.push('0');
    }
    out
}

const OPEN_FLAGS: &[(usize, &str)] = &[
    (O_NONBLOCK, "O_NONBLOCK"),
    (O_APPEND, "O_APPEND"),
    (O_SHLOCK, "O_SHLOCK"),
    (O_EXLOCK, "O_EXLOCK"),
    (O_ASYNC, "O_ASYNC"),
    (O_FSYNC, "O_FSYNC"),
    (O_CLOEXEC, "O_CLOEXEC"),
    (O_CREAT, "O_CREAT"),
    (O_TRUNC, "O_TRUNC"),
    (O_EXCL, "O_EXCL"),
    (O_DIRECTORY, "O_DIRECTORY"),
    (O_STAT, "O_STAT"),
    (O_SYMLINK, "O_SYMLINK"),
    (O_NOFOLLOW, "O_NOFOLLOW"),
];

/// `O_RDONLY|O_CLOEXEC`: the access mode first, then the other flags, then
/// the file mode (low 16 bits) in octal if there is one.
pub fn open_flags(value: usize) -> String {
    let mut parts = String::new();
    match value & O_ACCMODE {
        O_RDONLY => parts.push_str("O_RDONLY"),
        O_WRONLY => parts.push_str("O_WRONLY"),
        O_RDWR => parts.push_str("O_RDWR"),
        _ => {}
    }
    let others = value & !O_ACCMODE & !0xffff;
    if others != 0 {
        if !parts.is_empty() {
            parts.push('|');
        }
        parts.push_str(&flags(others, OPEN_FLAGS));
    }
    let mode = value & 0xffff;
    if mode != 0 {
        if !parts.is_empty() {
            parts.push('|');
        }
        parts.push_str(&format!("0{mode:o}"));
    }
    if parts.is_empty() {
        parts.push('0');
    }
    parts
}

/// `CLONE_VM|CLONE_FILES`, or `0`.
pub fn clone_flags(value: usize) -> String {
    const TABLE: &[(usize, &str)] = &[
        (0x100, "CLONE_VM"),
        (0x200, "CLONE_FS"),
        (0x400, "CLONE_FILES"),
        (0x800, "CLONE_SIGHAND"),
        (0x4000, "CLONE_VFORK"),
        (0x1_0000, "CLONE_THREAD"),
        (0x1000_0000, "CLONE_STACK"),
    ];
    flags(value, TABLE)
}

/// `WNOHANG|WUNTRACED`, or `0`.
pub fn wait_flags(value: usize) -> String {
    const TABLE: &[(usize, &str)] = &[(0x1, "WNOHANG"), (0x2, "WUNTRACED"), (0x8, "WCONTINUED")];
    flags(value, TABLE)
}

/// `SA_RESTART|SA_NODEFER`, or `0`.
pub fn sa_flags(value: usize) -> String {
    const TABLE: &[(usize, &str)] = &[
        (0x0000_0001, "SA_NOCLDSTOP"),
        (0x0000_0002, "SA_NOCLDWAIT"),
        (0x0000_0004, "SA_SIGINFO"),
        (0x0400_0000, "SA_RESTORER"),
        (0x0800_0000, "SA_ONSTACK"),
        (0x1000_0000, "SA_RESTART"),
        (0x4000_0000, "SA_NODEFER"),
        (0x8000_0000, "SA_RESETHAND"),
    ];
    flags(value, TABLE)
}

/// A wait status the way strace shows it inside `[...]`:
/// `{WIFEXITED(s) && WEXITSTATUS(s) == 3}`.
pub fn wait_status(status: usize) -> String {
    if wifcontinued(status) {
        String::from("{WIFCONTINUED(s)}")
    } else if wifstopped(status) {
        format!(
            "{{WIFSTOPPED(s) && WSTOPSIG(s) == {}}}",
            signal(wstopsig(status))
        )
    } else if wifsignaled(status) {
        format!(
            "{{WIFSIGNALED(s) && WTERMSIG(s) == {}}}",
            signal(wtermsig(status))
        )
    } else {
        format!(
            "{{WIFEXITED(s) && WEXITSTATUS(s) == {}}}",
            wexitstatus(status)
        )
    }
}

/// `SIG_BLOCK`, `SIG_UNBLOCK`, `SIG_SETMASK`, or the number.
pub fn sigprocmask_how(how: usize) -> String {
    match how {
        SIG_BLOCK => String::from("SIG_BLOCK"),
        SIG_UNBLOCK => String::from("SIG_UNBLOCK"),
        SIG_SETMASK => String::from("SIG_SETMASK"),
        _ => format!("{how}"),
    }
}

/// `SEEK_SET`, `SEEK_CUR`, `SEEK_END`, or the number.
pub fn whence(value: usize) -> String {
    match value {
        SEEK_SET => String::from("SEEK_SET"),
        SEEK_CUR => String::from("SEEK_CUR"),
        SEEK_END => String::from("SEEK_END"),
        _ => format!("{value}"),
    }
}

/// `F_GETFL` and friends, or the number.
pub fn fcntl_cmd(cmd: usize) -> String {
    match cmd {
        F_DUPFD => String::from("F_DUPFD"),
        F_GETFD => String::from("F_GETFD"),
        F_SETFD => String::from("F_SETFD"),
        F_GETFL => String::from("F_GETFL"),
        F_SETFL => String::from("F_SETFL"),
        _ => format!("{cmd}"),
    }
}

/// `CLOCK_MONOTONIC`, `CLOCK_REALTIME`, or the number.
pub fn clock(id: usize) -> String {
    match id {
        CLOCK_REALTIME => String::from("CLOCK_REALTIME"),
        CLOCK_MONOTONIC => String::from("CLOCK_MONOTONIC"),
        _ => format!("{id}"),
    }
}

/// A signal handler value: `SIG_DFL`, `SIG_IGN` or its address.
pub fn handler(value: usize) -> String {
    match value {
        SIG_DFL => String::from("SIG_DFL"),
        SIG_IGN => String::from("SIG_IGN"),
        _ => format!("{value:#x}"),
    }
}
