//! Stops and events: a child that stops itself and the contract's attach
//! handshake with it; checks and readable forms of syscall stops, events,
//! resumes and whole syscall traces; report pipes a tracee writes words to.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use rt::ensure;
use rt::test::Ctx;
use syscall::flag::{
    wifstopped, wstopsig, WaitFlags, O_CLOEXEC, O_EXCL, O_RDONLY, SIGCONT, SIGSTOP,
};
use syscall::number::*;
use tracer::{
    PtraceEvent, StopInfo, Stopped, Tracer, PTRACE_EVENT_CLONE, PTRACE_STOP_BREAKPOINT,
    PTRACE_STOP_EXIT, PTRACE_STOP_POST_SYSCALL, PTRACE_STOP_PRE_SYSCALL, PTRACE_STOP_SIGNAL,
    PTRACE_STOP_SINGLESTEP, PTRACE_SYSCALL,
};

use crate::fixture::Kid;
use crate::wait::fmt_status;
use crate::Check;

/// The name of a system call number, for messages.
pub fn sys_name(nr: u64) -> &'static str {
    match nr as usize {
        SYS_READ => "read",
        SYS_WRITE => "write",
        SYS_OPEN => "open",
        SYS_CLOSE => "close",
        SYS_GETPID => "getpid",
        SYS_GETPPID => "getppid",
        SYS_KILL => "kill",
        SYS_EXIT => "exit",
        SYS_FEXEC => "fexec",
        SYS_CLONE => "clone",
        SYS_WAITPID => "waitpid",
        SYS_SIGRETURN => "sigreturn",
        SYS_SIGACTION => "sigaction",
        SYS_NANOSLEEP => "nanosleep",
        SYS_YIELD => "sched_yield",
        _ => "?",
    }
}

/// The name of a stop or event cause, for messages.
pub fn cause_name(cause: u64) -> &'static str {
    match cause {
        0 => "attach",
        PTRACE_STOP_PRE_SYSCALL => "entry",
        PTRACE_STOP_POST_SYSCALL => "exit",
        PTRACE_STOP_SINGLESTEP => "step",
        PTRACE_STOP_SIGNAL => "signal",
        PTRACE_STOP_BREAKPOINT => "int3",
        PTRACE_STOP_EXIT => "exited",
        PTRACE_EVENT_CLONE => "clone",
        _ => "cause?",
    }
}

/// One stop, readably.
pub fn fmt_stop(s: &StopInfo) -> String {
    match s.cause {
        PTRACE_STOP_PRE_SYSCALL => format!(
            "[entry {} ({:#x}) args {:x?} rip {:#x}]",
            sys_name(s.nr),
            s.nr,
            s.args,
            s.addr
        ),
        PTRACE_STOP_POST_SYSCALL => format!(
            "[exit {} ({:#x}) args {:x?} ret {:#x} rip {:#x}]",
            sys_name(s.nr),
            s.nr,
            s.args,
            s.ret,
            s.addr
        ),
        PTRACE_STOP_SIGNAL => format!(
            "[signal {} handler {:#x} rip {:#x}]",
            s.signal, s.handler, s.addr
        ),
        _ => format!(
            "[{} ({:#x}) nr {:#x} ret {:#x} signal {} handler {:#x} rip {:#x}]",
            cause_name(s.cause),
            s.cause,
            s.nr,
            s.ret,
            s.signal,
            s.handler,
            s.addr
        ),
    }
}

/// How a resume ended, readably.
pub fn fmt_stopped(stopped: &Stopped) -> String {
    match stopped {
        Stopped::Reached(s) => fmt_stop(s),
        Stopped::Breakpoint(addr) => format!("[held at the int3 at {:#x}]", addr),
        Stopped::Exited(status) => format!("[exited: {}]", fmt_status(*status)),
    }
}

/// One event, readably.
pub fn fmt_event(e: &PtraceEvent) -> String {
    format!("{}(a={:#x}, b={:#x})", cause_name(e.cause), e.a, e.b)
}

/// A list of events, readably.
pub fn fmt_events(events: &[PtraceEvent]) -> String {
    let parts: Vec<String> = events.iter().map(fmt_event).collect();
    format!("[{}]", parts.join(", "))
}

/// Checks that `s` is a syscall stop of kind `cause` (entry or exit) of `nr`.
pub fn expect_sys(what: &str, s: &StopInfo, cause: u64, nr: usize) -> Check {
    ensure!(
        s.cause == cause && s.nr == nr as u64,
        "{}: expected the {} stop of {}, got {}",
        what,
        cause_name(cause),
        sys_name(nr as u64),
        fmt_stop(s)
    );
    Ok(())
}

/// Checks the first `expected.len()` arguments of a syscall stop.
pub fn expect_args(what: &str, s: &StopInfo, expected: &[usize]) -> Check {
    for (i, &want) in expected.iter().enumerate() {
        ensure!(
            s.args[i] == want as u64,
            "{}: argument {} expected {:#x}, got {}",
            what,
            i,
            want,
            fmt_stop(s)
        );
    }
    Ok(())
}

/// Checks that an exit stop reports `ret` (raw, errors as -errno).
pub fn expect_ret(what: &str, s: &StopInfo, ret: usize) -> Check {
    ensure!(
        s.ret == ret as u64,
        "{}: result expected {:#x}, got {}",
        what,
        ret,
        fmt_stop(s)
    );
    Ok(())
}

/// Checks that `events` are exactly `expected` (cause, a, b).
pub fn expect_events(
    what: &str,
    events: &[PtraceEvent],
    expected: &[(u64, usize, usize)],
) -> Check {
    let got: Vec<(u64, usize, usize)> = events.iter().map(|e| (e.cause, e.a, e.b)).collect();
    ensure!(
        got == expected,
        "{}: expected events {}, got {}",
        what,
        fmt_events(
            &expected
                .iter()
                .map(|&(cause, a, b)| PtraceEvent {
                    cause,
                    a,
                    b,
                    ..PtraceEvent::default()
                })
                .collect::<Vec<_>>()
        ),
        fmt_events(events)
    );
    Ok(())
}

/// Resumes with `op` (the contract's loop) and returns how it ended with the
/// events seen on the way.
pub fn resume_ev(t: &mut Tracer, op: u8) -> Result<(Stopped, Vec<PtraceEvent>), String> {
    // A hung wait ends when the check's deadline kills the check child
    // (the timeout policy of `crate::timeout`).
    t.resume_collect(op)
        .map_err(|e| format!("resume with op {:#x}: {}", op, rt::errno::describe(&e)))
}

/// The stop a resume reached, or why there is none.
pub fn reached(what: &str, stopped: Stopped) -> Result<StopInfo, String> {
    match stopped {
        Stopped::Reached(s) => Ok(s),
        Stopped::Breakpoint(addr) => Err(format!(
            "{}: expected a stop, the tracee executed the int3 at {:#x}",
            what, addr
        )),
        Stopped::Exited(status) => Err(format!(
            "{}: expected a stop, the tracee exited ({})",
            what,
            fmt_status(status)
        )),
    }
}

/// Resumes with `op` and expects the breakpoint to be reached with no event
/// on the way.
pub fn next_stop(t: &mut Tracer, op: u8) -> Result<StopInfo, String> {
    let (stopped, events) = resume_ev(t, op)?;
    ensure!(
        events.is_empty(),
        "resume with op {:#x}: unexpected events {} (then {:?})",
        op,
        fmt_events(&events),
        stopped
    );
    reached("resume", stopped)
}

/// Resumes with `op` and expects the tracee to run to its exit; returns the
/// exit event's status and the other events seen on the way.
pub fn run_to_exit(t: &mut Tracer, op: u8) -> Result<(usize, Vec<PtraceEvent>), String> {
    let (stopped, mut events) = resume_ev(t, op)?;
    match stopped {
        Stopped::Exited(status) => {
            events.retain(|e| e.cause != PTRACE_STOP_EXIT);
            Ok((status, events))
        }
        other => Err(format!(
            "expected the tracee to run to its exit, it stopped at {}",
            fmt_stopped(&other)
        )),
    }
}

/// One step of a syscall trace: the stop and the events seen before it.
pub struct Traced {
    pub stop: StopInfo,
    pub events: Vec<PtraceEvent>,
}

/// Follows the tracee with `PTRACE_SYSCALL` to its exit (at most `max`
/// stops); returns every stop and the exit status.
pub fn trace_to_exit(t: &mut Tracer, max: usize) -> Result<(Vec<Traced>, usize), String> {
    let mut out = Vec::new();
    for _ in 0..max {
        let (stopped, events) = resume_ev(t, PTRACE_SYSCALL)?;
        match stopped {
            Stopped::Reached(stop) => out.push(Traced { stop, events }),
            Stopped::Exited(status) => return Ok((out, status)),
            Stopped::Breakpoint(addr) => {
                return Err(format!(
                    "the tracee executed the int3 at {:#x} after {}",
                    addr,
                    fmt_trace(&out)
                ))
            }
        }
    }
    Err(format!(
        "the tracee did not exit within {} syscall stops: {}",
        max,
        fmt_trace(&out)
    ))
}

/// A syscall trace, readably.
pub fn fmt_trace(trace: &[Traced]) -> String {
    let mut s = String::new();
    for step in trace {
        if !step.events.is_empty() {
            s.push_str(&fmt_events(&step.events));
            s.push(' ');
        }
        s.push_str(&fmt_stop(&step.stop));
        s.push(' ');
    }
    s
}

/// Checks that a syscall trace is exactly the (cause, nr) sequence `expected`.
pub fn expect_trace(what: &str, trace: &[Traced], expected: &[(u64, usize)]) -> Check {
    let got: Vec<(u64, u64)> = trace.iter().map(|s| (s.stop.cause, s.stop.nr)).collect();
    let want: Vec<(u64, u64)> = expected.iter().map(|&(c, n)| (c, n as u64)).collect();
    if got == want {
        return Ok(());
    }
    let names: Vec<String> = expected
        .iter()
        .map(|&(c, n)| format!("{} {}", cause_name(c), sys_name(n as u64)))
        .collect();
    Err(format!(
        "{}: expected stops [{}], got {}",
        what,
        names.join(", "),
        fmt_trace(trace)
    ))
}

/// Forks a child that stops itself with `kill(getpid(), SIGSTOP)` and then
/// runs `f(its pid)`, exiting with the result.
pub fn fork_stopped(f: impl FnOnce(usize) -> i32) -> Result<Kid, String> {
    fork_prepared(|| true, f)
}

/// Like [`fork_stopped`], running `prepare` in the child before it stops
/// (e.g. to install a handler); if `prepare` fails the child exits 99
/// without stopping.
pub fn fork_prepared(
    prepare: impl FnOnce() -> bool,
    f: impl FnOnce(usize) -> i32,
) -> Result<Kid, String> {
    let pid = rt::process::fork_with(|| {
        if !prepare() {
            return 99;
        }
        let me = syscall::getpid().unwrap_or(0);
        let _ = syscall::kill(me, SIGSTOP);
        f(me)
    })
    .ctx("fork")?;
    Ok(Kid::new(pid))
}

/// The contract's handshake with a child of [`fork_stopped`]: waits until it
/// is stopped, attaches (`O_EXCL` unless `flags` says otherwise), sends
/// `SIGCONT` and writes `PTRACE_SYSCALL`; checks that the first stop is the
/// exit stop of the child's `kill` and that `SIGCONT` came as a signal event.
pub fn handshake_flags(kid: &Kid, flags: usize) -> Result<Tracer, String> {
    let (_, status) =
        rt::process::waitpid(kid.pid, WaitFlags::WUNTRACED).ctx("waitpid(WUNTRACED)")?;
    ensure!(
        wifstopped(status) && wstopsig(status) == SIGSTOP,
        "child {} should be stopped by SIGSTOP, waitpid says {}",
        kid.pid,
        fmt_status(status)
    );
    let mut t = Tracer::attach_flags(kid.pid, flags).ctx("open proc:<child>/trace")?;
    syscall::kill(kid.pid, SIGCONT).ctx("kill(child, SIGCONT)")?;
    let (stopped, events) = resume_ev(&mut t, PTRACE_SYSCALL)?;
    let s = reached("handshake", stopped)?;
    expect_sys(
        "handshake: first stop",
        &s,
        PTRACE_STOP_POST_SYSCALL,
        SYS_KILL,
    )?;
    expect_ret("handshake: kill", &s, 0)?;
    expect_events(
        "handshake: SIGCONT",
        &events,
        &[(PTRACE_STOP_SIGNAL, SIGCONT, 0)],
    )?;
    Ok(t)
}

/// [`handshake_flags`] with `O_EXCL`: the tracee dies if the test gives up.
pub fn handshake(kid: &Kid) -> Result<Tracer, String> {
    handshake_flags(kid, O_EXCL)
}

/// A pipe whose ends are closed on exec: `(read end, write end)`.
pub fn pipe() -> Result<(usize, usize), String> {
    rt::io::pipe(O_CLOEXEC).ctx("pipe2")
}

/// Reads `fd` to end of file and closes it.
pub fn read_all(fd: usize) -> Result<Vec<u8>, String> {
    let r = rt::io::read_to_end(fd).ctx("read report pipe");
    let _ = syscall::close(fd);
    r
}

/// Reads a report of native-endian words written by a tracee and closes `fd`.
pub fn read_words(fd: usize) -> Result<Vec<usize>, String> {
    let bytes = read_all(fd)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            usize::from_le_bytes(w)
        })
        .collect())
}

/// Writes one word to a report pipe (tracee side).
pub fn report_word(fd: usize, word: usize) {
    let _ = syscall::write(fd, &word.to_le_bytes());
}

/// The entry point recorded in the ELF header of the file at `path`.
pub fn elf_entry(path: &str) -> Result<u64, String> {
    let fd = syscall::open(path, O_RDONLY | O_CLOEXEC).ctx("open the ELF file")?;
    let mut header = [0u8; 64];
    let n = rt::io::read_full(fd, &mut header);
    let _ = syscall::close(fd);
    let n = n.ctx("read the ELF header")?;
    ensure!(
        n == 64 && &header[..4] == b"\x7fELF" && header[4] == 2,
        "{} has no 64-bit ELF header",
        path
    );
    let mut entry = [0u8; 8];
    entry.copy_from_slice(&header[24..32]);
    Ok(u64::from_le_bytes(entry))
}
