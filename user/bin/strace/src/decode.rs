//! The system-call table (names, argument kinds, result kinds) and the
//! decoding of arguments and results into strace's text, reading strings
//! and structs from tracee memory.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use syscall::number::*;

use crate::names;

/// Data buffers (`read`, `write`) are shown up to this many bytes, then `...`.
pub const DATA_LIMIT: usize = 32;
/// Paths and argument strings are shown up to this many bytes.
const PATH_LIMIT: usize = 4096;
/// At most this many `fexec` arguments are shown.
const ARGV_LIMIT: usize = 32;

/// Reads tracee memory.
pub trait Memory {
    /// Copies memory at `addr` into `buf`; returns how many bytes could be
    /// read (0 if the first byte is unreadable).
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> usize;
}

/// How one shown argument is decoded; the numbers are indexes of the raw
/// arguments (`rdi rsi rdx r10 r8 r9`) it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// Signed decimal.
    Dec(usize),
    /// Unsigned decimal.
    Unsigned(usize),
    /// Hexadecimal.
    Hex(usize),
    /// Octal (file modes).
    Octal(usize),
    /// A pointer: `NULL` or hexadecimal.
    Ptr(usize),
    /// A descriptor number.
    Fd(usize),
    /// A user or group id; `usize::MAX` ("unchanged") is shown as `-1`.
    Id(usize),
    /// A path given as `[ptr, len]`, shown whole.
    Path(usize, usize),
    /// An input data buffer `[ptr, len]`, shown up to [`DATA_LIMIT`] bytes.
    Data(usize, usize),
    /// An output data buffer; its length is the call's result.
    OutData(usize),
    /// An output string (`fpath`, `getcwd`); its length is the result.
    OutPath(usize),
    OpenFlags(usize),
    CloneFlags(usize),
    WaitFlags(usize),
    Signal(usize),
    SigHow(usize),
    Whence(usize),
    FcntlCmd(usize),
    /// `fcntl`'s third argument, decoded by the command (raw index 1).
    FcntlValue(usize),
    Clock(usize),
    /// A `SigAction` read at entry.
    SigAction(usize),
    /// A `SigAction` the kernel writes.
    OutSigAction(usize),
    /// A signal set (`[u64; 2]`) read at entry.
    SigSet(usize),
    /// A signal set the kernel writes.
    OutSigSet(usize),
    /// A `TimeSpec` read at entry.
    TimeSpec(usize),
    /// A `TimeSpec` the kernel writes on success.
    OutTimeSpec(usize),
    /// `nanosleep`'s remaining time, written only on `EINTR`.
    OutRemaining(usize),
    /// A wait status the kernel writes when a child is reported.
    OutStatus(usize),
    /// The two descriptors `pipe2` writes.
    OutFds(usize),
    /// `fexec`'s descriptor: the path it was opened from when known.
    ExecFd(usize),
    /// `[ptr, len]` pairs of strings (`fexec`'s arguments).
    Argv(usize, usize),
    /// `[ptr, len]` pairs of environment strings, shown as a count.
    Envp(usize, usize),
}

impl Arg {
    /// Whether the argument is only known at the call's exit.
    pub fn is_output(self) -> bool {
        matches!(
            self,
            Arg::OutData(_)
                | Arg::OutPath(_)
                | Arg::OutSigAction(_)
                | Arg::OutSigSet(_)
                | Arg::OutTimeSpec(_)
                | Arg::OutRemaining(_)
                | Arg::OutStatus(_)
                | Arg::OutFds(_)
        )
    }
}

/// How a successful result is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    Dec,
    Hex,
    /// `fcntl`: decoded by the command.
    Fcntl,
    /// The call does not return (`exit`, a successful `sigreturn`): `?`.
    None,
}

/// One system call of the table.
#[derive(Debug)]
pub struct Syscall {
    pub nr: usize,
    pub name: &'static str,
    pub args: &'static [Arg],
    pub ret: Ret,
}

macro_rules! calls {
    ($($nr:expr, $name:literal, [$($arg:expr),*], $ret:ident;)*) => {
        &[$(Syscall { nr: $nr, name: $name, args: &[$($arg),*], ret: Ret::$ret },)*]
    };
}

use Arg::*;

/// Every call of `redox_syscall` 0.2.16, with its argument convention.
pub static SYSCALLS: &[Syscall] = calls! {
    SYS_OPEN, "open", [Path(0, 1), OpenFlags(2)], Dec;
    SYS_CLOSE, "close", [Fd(0)], Dec;
    SYS_READ, "read", [Fd(0), OutData(1), Unsigned(2)], Dec;
    SYS_WRITE, "write", [Fd(0), Data(1, 2), Unsigned(2)], Dec;
    SYS_LSEEK, "lseek", [Fd(0), Dec(1), Whence(2)], Dec;
    SYS_DUP, "dup", [Fd(0), Path(1, 2)], Dec;
    SYS_DUP2, "dup2", [Fd(0), Fd(1), Path(2, 3)], Dec;
    SYS_FCNTL, "fcntl", [Fd(0), FcntlCmd(1), FcntlValue(2)], Fcntl;
    SYS_FPATH, "fpath", [Fd(0), OutPath(1), Unsigned(2)], Dec;
    SYS_FSTAT, "fstat", [Fd(0), Ptr(1), Unsigned(2)], Dec;
    SYS_FSTATVFS, "fstatvfs", [Fd(0), Ptr(1), Unsigned(2)], Dec;
    SYS_FSYNC, "fsync", [Fd(0)], Dec;
    SYS_FTRUNCATE, "ftruncate", [Fd(0), Unsigned(1)], Dec;
    SYS_FCHMOD, "fchmod", [Fd(0), Octal(1)], Dec;
    SYS_FCHOWN, "fchown", [Fd(0), Id(1), Id(2)], Dec;
    SYS_FEVENT, "fevent", [Fd(0), Hex(1)], Dec;
    SYS_FEXEC, "fexec", [ExecFd(0), Argv(1, 2), Envp(3, 4)], Dec;
    SYS_FMAP_OLD, "fmap_old", [Fd(0), Ptr(1), Unsigned(2)], Hex;
    SYS_FMAP, "fmap", [Fd(0), Ptr(1), Unsigned(2)], Hex;
    SYS_FUNMAP_OLD, "funmap_old", [Ptr(0)], Dec;
    SYS_FUNMAP, "funmap", [Ptr(0), Unsigned(1)], Dec;
    SYS_FRENAME, "frename", [Fd(0), Path(1, 2)], Dec;
    SYS_FUTIMENS, "futimens", [Fd(0), Ptr(1), Unsigned(2)], Dec;
    SYS_PIPE2, "pipe2", [OutFds(0), OpenFlags(1)], Dec;
    SYS_LINK, "link", [Ptr(0), Ptr(1)], Dec;
    SYS_CHMOD, "chmod", [Path(0, 1), Octal(2)], Dec;
    SYS_RMDIR, "rmdir", [Path(0, 1)], Dec;
    SYS_UNLINK, "unlink", [Path(0, 1)], Dec;
    SYS_CHDIR, "chdir", [Path(0, 1)], Dec;
    SYS_GETCWD, "getcwd", [OutPath(0), Unsigned(1)], Dec;
    SYS_CLOCK_GETTIME, "clock_gettime", [Clock(0), OutTimeSpec(1)], Dec;
    SYS_CLONE, "clone", [CloneFlags(0)], Dec;
    SYS_EXIT, "exit", [Dec(0)], None;
    SYS_FUTEX, "futex", [Ptr(0), Dec(1), Dec(2), Hex(3), Ptr(4)], Dec;
    SYS_GETEGID, "getegid", [], Dec;
    SYS_GETENS, "getens", [], Dec;
    SYS_GETEUID, "geteuid", [], Dec;
    SYS_GETGID, "getgid", [], Dec;
    SYS_GETNS, "getns", [], Dec;
    SYS_GETPID, "getpid", [], Dec;
    SYS_GETPGID, "getpgid", [Dec(0)], Dec;
    SYS_GETPPID, "getppid", [], Dec;
    SYS_GETUID, "getuid", [], Dec;
    SYS_IOPL, "iopl", [Unsigned(0)], Dec;
    SYS_KILL, "kill", [Dec(0), Signal(1)], Dec;
    SYS_MPROTECT, "mprotect", [Ptr(0), Unsigned(1), Hex(2)], Dec;
    SYS_MKNS, "mkns", [Ptr(0), Unsigned(1)], Dec;
    SYS_NANOSLEEP, "nanosleep", [TimeSpec(0), OutRemaining(1)], Dec;
    SYS_PHYSALLOC, "physalloc", [Hex(0)], Hex;
    SYS_PHYSALLOC3, "physalloc3", [Hex(0), Hex(1), Ptr(2)], Hex;
    SYS_PHYSFREE, "physfree", [Hex(0), Hex(1)], Dec;
    SYS_PHYSMAP, "physmap", [Hex(0), Hex(1), Hex(2)], Hex;
    SYS_PHYSUNMAP, "physunmap", [Hex(0)], Dec;
    SYS_VIRTTOPHYS, "virttophys", [Hex(0)], Hex;
    SYS_SETPGID, "setpgid", [Dec(0), Dec(1)], Dec;
    SYS_SETREGID, "setregid", [Id(0), Id(1)], Dec;
    SYS_SETRENS, "setrens", [Dec(0), Dec(1)], Dec;
    SYS_SETREUID, "setreuid", [Id(0), Id(1)], Dec;
    SYS_SIGACTION, "sigaction", [Signal(0), SigAction(1), OutSigAction(2)], Dec;
    SYS_SIGPROCMASK, "sigprocmask", [SigHow(0), SigSet(1), OutSigSet(2)], Dec;
    SYS_SIGRETURN, "sigreturn", [], None;
    SYS_UMASK, "umask", [Octal(0)], Dec;
    SYS_WAITPID, "waitpid", [Dec(0), OutStatus(1), WaitFlags(2)], Dec;
    SYS_YIELD, "sched_yield", [], Dec;
};

/// An unknown number: six hexadecimal arguments.
static UNKNOWN_ARGS: &[Arg] = &[Hex(0), Hex(1), Hex(2), Hex(3), Hex(4), Hex(5)];

/// The table entry for `nr`, if it names a call.
pub fn lookup(nr: usize) -> Option<&'static Syscall> {
    SYSCALLS.iter().find(|call| call.nr == nr)
}

/// The table entry for a name given to `-e trace=`.
pub fn by_name(name: &str) -> Option<&'static Syscall> {
    SYSCALLS.iter().find(|call| call.name == name)
}

/// The name strace shows for `nr`: the call's name, or `syscall_0x...`.
pub fn name(nr: usize) -> String {
    match lookup(nr) {
        Some(call) => String::from(call.name),
        Option::None => format!("syscall_{nr:#x}"),
    }
}

/// What the decoder needs besides memory: the descriptors whose paths are
/// known (for `fexec`).
pub struct Context<'a, M: Memory> {
    pub mem: &'a mut M,
    pub fds: &'a BTreeMap<usize, String>,
}

/// A raw result as an error number, if it is one (`-4095..=-1`).
pub fn errno_of(ret: u64) -> Option<usize> {
    let value = ret as i64;
    if (-4095..=-1).contains(&value) {
        Some((-value) as usize)
    } else {
        Option::None
    }
}

/// The shown arguments of `nr` split where the first output argument is:
/// `(known at entry, known at exit)`.
pub fn split_args(nr: usize) -> (&'static [Arg], &'static [Arg]) {
    let args = lookup(nr).map(|c| c.args).unwrap_or(UNKNOWN_ARGS);
    let at = args
        .iter()
        .position(|a| a.is_output())
        .unwrap_or(args.len());
    args.split_at(at)
}

/// Decodes the arguments in `list`, joined with `, `. `ret` is the raw
/// result at exit, `None` at entry.
pub fn format_args<M: Memory>(
    list: &[Arg],
    raw: &[u64; 6],
    ret: Option<u64>,
    cx: &mut Context<'_, M>,
) -> String {
    let mut out = String::new();
    for (i, arg) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&format_arg(*arg, raw, ret, cx));
    }
    out
}

/// Formats a successful or failed result: `3`, `0x1000`, `?`,
/// `-1 ENOENT (No such file or directory)`.
pub fn format_ret(nr: usize, raw: &[u64; 6], ret: u64) -> String {
    if let Some(errno) = errno_of(ret) {
        return format!("-1 {}", names::errno(errno));
    }
    let kind = lookup(nr).map(|c| c.ret).unwrap_or(Ret::Hex);
    match kind {
        Ret::Dec => format!("{}", ret as i64),
        Ret::Hex => format!("{ret:#x}"),
        Ret::None => String::from("?"),
        Ret::Fcntl => match raw[1] as usize {
            syscall::flag::F_GETFL => {
                format!("{ret:#x} (flags {})", names::open_flags(ret as usize))
            }
            syscall::flag::F_GETFD if ret == 1 => String::from("0x1 (flags FD_CLOEXEC)"),
            _ => format!("{ret}"),
        },
    }
}

fn pointer(value: u64) -> String {
    if value == 0 {
        String::from("NULL")
    } else {
        format!("{value:#x}")
    }
}

/// Reads `len` bytes (at most `cap`) at `addr`; `None` if not even the
/// first byte is readable. Short reads stop at the first unreadable page.
fn read_bytes<M: Memory>(mem: &mut M, addr: u64, len: usize, cap: usize) -> Option<Vec<u8>> {
    let want = len.min(cap);
    let mut buf = vec![0u8; want];
    let mut done = 0;
    while done < want {
        let n = mem.read(addr.wrapping_add(done as u64), &mut buf[done..]);
        if n == 0 {
            break;
        }
        done += n;
    }
    if done == 0 && want > 0 {
        return Option::None;
    }
    buf.truncate(done);
    Some(buf)
}

fn read_words<M: Memory, const N: usize>(mem: &mut M, addr: u64) -> Option<[u64; N]> {
    let bytes = read_bytes(mem, addr, N * 8, N * 8)?;
    if bytes.len() != N * 8 {
        return Option::None;
    }
    let mut words = [0u64; N];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *word = u64::from_le_bytes(b);
    }
    Some(words)
}

/// Quotes bytes as a C string literal the way strace does: `\n`, `\t`,
/// `\"`, `\\`, printable ASCII as is, anything else in octal.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0x0b => out.push_str("\\v"),
            0x0c => out.push_str("\\f"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                // Three digits when an octal digit follows, so it cannot be
                // read as part of the escape.
                let next_is_digit = bytes.get(i + 1).is_some_and(|n| (b'0'..=b'7').contains(n));
                if next_is_digit {
                    out.push_str(&format!("\\{b:03o}"));
                } else {
                    out.push_str(&format!("\\{b:o}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// A `[ptr, len]` string: quoted, `...` after the quote when cut at
/// `limit`; the pointer in hex if unreadable.
fn string_at<M: Memory>(mem: &mut M, ptr: u64, len: u64, limit: usize) -> String {
    let len = len as usize;
    match read_bytes(mem, ptr, len, limit) {
        Some(bytes) if bytes.len() == len.min(limit) => {
            let mut s = quote(&bytes);
            if len > limit {
                s.push_str("...");
            }
            s
        }
        _ => pointer(ptr),
    }
}

fn timespec_at<M: Memory>(mem: &mut M, ptr: u64) -> String {
    match read_words::<M, 2>(mem, ptr) {
        Some([sec, nsec]) => format!(
            "{{tv_sec={}, tv_nsec={}}}",
            sec as i64,
            (nsec as u32) as i32
        ),
        Option::None => pointer(ptr),
    }
}

fn sigset_at<M: Memory>(mem: &mut M, ptr: u64) -> String {
    if ptr == 0 {
        return String::from("NULL");
    }
    match read_words::<M, 2>(mem, ptr) {
        Some(words) => names::sigset(words),
        Option::None => pointer(ptr),
    }
}

fn sigaction_at<M: Memory>(mem: &mut M, ptr: u64) -> String {
    if ptr == 0 {
        return String::from("NULL");
    }
    match read_words::<M, 4>(mem, ptr) {
        Some([handler, mask0, mask1, flags]) => format!(
            "{{handler={}, mask={}, flags={}}}",
            names::handler(handler as usize),
            names::sigset([mask0, mask1]),
            names::sa_flags(flags as usize)
        ),
        Option::None => pointer(ptr),
    }
}

fn argv_at<M: Memory>(mem: &mut M, ptr: u64, count: u64) -> String {
    let shown = (count as usize).min(ARGV_LIMIT);
    let Some(table) = read_bytes(mem, ptr, shown * 16, shown * 16) else {
        return if count == 0 {
            String::from("[]")
        } else {
            pointer(ptr)
        };
    };
    if table.len() != shown * 16 {
        return pointer(ptr);
    }
    let mut out = String::from("[");
    for (i, pair) in table.chunks_exact(16).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let mut w = [0u8; 8];
        w.copy_from_slice(&pair[..8]);
        let sptr = u64::from_le_bytes(w);
        w.copy_from_slice(&pair[8..]);
        let slen = u64::from_le_bytes(w);
        out.push_str(&string_at(mem, sptr, slen, PATH_LIMIT));
    }
    if count as usize > shown {
        out.push_str(", ...");
    }
    out.push(']');
    out
}

fn format_arg<M: Memory>(
    arg: Arg,
    raw: &[u64; 6],
    ret: Option<u64>,
    cx: &mut Context<'_, M>,
) -> String {
    // Output arguments are shown decoded only when the call succeeded.
    let ok = ret.is_some_and(|r| errno_of(r).is_none());
    match arg {
        Dec(i) => format!("{}", raw[i] as i64),
        Unsigned(i) => format!("{}", raw[i]),
        Hex(i) => format!("{:#x}", raw[i]),
        Octal(i) => format!("0{:o}", raw[i]),
        Ptr(i) => pointer(raw[i]),
        Fd(i) => format!("{}", raw[i] as i64),
        Id(i) if raw[i] == u64::MAX => String::from("-1"),
        Id(i) => format!("{}", raw[i]),
        Path(p, l) => string_at(cx.mem, raw[p], raw[l], PATH_LIMIT),
        Data(p, l) => string_at(cx.mem, raw[p], raw[l], DATA_LIMIT),
        OutData(p) if ok => string_at(cx.mem, raw[p], ret.unwrap_or(0), DATA_LIMIT),
        OutPath(p) if ok => string_at(cx.mem, raw[p], ret.unwrap_or(0), PATH_LIMIT),
        OpenFlags(i) => names::open_flags(raw[i] as usize),
        CloneFlags(i) => names::clone_flags(raw[i] as usize),
        WaitFlags(i) => names::wait_flags(raw[i] as usize),
        Signal(i) => names::signal(raw[i] as usize),
        SigHow(i) => names::sigprocmask_how(raw[i] as usize),
        Whence(i) => names::whence(raw[i] as usize),
        FcntlCmd(i) => names::fcntl_cmd(raw[i] as usize),
        FcntlValue(i) => match raw[1] as usize {
            syscall::flag::F_SETFL => names::open_flags(raw[i] as usize),
            syscall::flag::F_SETFD if raw[i] == 1 => String::from("FD_CLOEXEC"),
            _ => format!("{}", raw[i] as i64),
        },
        Clock(i) => names::clock(raw[i] as usize),
        SigAction(i) => sigaction_at(cx.mem, raw[i]),
        OutSigAction(i) if ok => sigaction_at(cx.mem, raw[i]),
        SigSet(i) => sigset_at(cx.mem, raw[i]),
        OutSigSet(i) if ok => sigset_at(cx.mem, raw[i]),
        TimeSpec(i) => timespec_at(cx.mem, raw[i]),
        OutTimeSpec(i) if ok => timespec_at(cx.mem, raw[i]),
        OutRemaining(i)
            if raw[i] != 0 && ret.and_then(errno_of) == Some(syscall::error::EINTR as usize) =>
        {
            timespec_at(cx.mem, raw[i])
        }
        OutStatus(i) if ok && ret != Some(0) && raw[i] != 0 => {
            match read_words::<M, 1>(cx.mem, raw[i]) {
                Some([status]) => format!("[{}]", names::wait_status(status as usize)),
                Option::None => pointer(raw[i]),
            }
        }
        OutFds(i) if ok => match read_words::<M, 2>(cx.mem, raw[i]) {
            Some([a, b]) => format!("[{a}, {b}]"),
            Option::None => pointer(raw[i]),
        },
        ExecFd(i) => match cx.fds.get(&(raw[i] as usize)) {
            Some(path) => quote(path.as_bytes()),
            Option::None => format!("{}", raw[i] as i64),
        },
        Argv(p, n) => argv_at(cx.mem, raw[p], raw[n]),
        Envp(_, n) if raw[n] == 0 => String::from("[]"),
        Envp(_, n) => format!("[/* {} vars */]", raw[n]),
        // An output argument of a failed call: its pointer.
        OutData(i) | OutPath(i) | OutSigAction(i) | OutSigSet(i) | OutTimeSpec(i)
        | OutRemaining(i) | OutStatus(i) | OutFds(i) => pointer(raw[i]),
    }
}
