//! Shared plumbing of the stop/event and single-step tests (also compiled
//! into test-ptrace-step): self-stopping children and the attach handshake,
//! stop and event checks, pipes, signal dispositions, raw system calls, and
//! a watchdog that turns a hung tracer into a failure.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use rt::ensure;
use rt::test::Ctx;
use rt::Tests;
use syscall::data::SigAction;
use syscall::flag::{
    wexitstatus, wifexited, wifsignaled, wifstopped, wstopsig, wtermsig, SigActionFlags, WaitFlags,
    O_CLOEXEC, O_EXCL, O_RDONLY, SIGALRM, SIGCONT, SIGKILL, SIGSTOP,
};
use syscall::number::*;
use tracer::{
    PtraceEvent, StopInfo, Stopped, Tracer, PTRACE_EVENT_CLONE, PTRACE_STOP_BREAKPOINT,
    PTRACE_STOP_EXIT, PTRACE_STOP_POST_SYSCALL, PTRACE_STOP_PRE_SYSCALL, PTRACE_STOP_SIGNAL,
    PTRACE_STOP_SINGLESTEP, PTRACE_SYSCALL,
};

/// What every check returns.
pub type TResult = Result<(), String>;

/// How long one test may take before the watchdog interrupts the tracer.
const WATCHDOG_MS: u64 = 15_000;

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

/// A wait status, readably.
pub fn fmt_status(status: usize) -> String {
    rt::process::describe(status)
}

/// Checks that `s` is a syscall stop of kind `cause` (entry or exit) of `nr`.
pub fn expect_sys(what: &str, s: &StopInfo, cause: u64, nr: usize) -> TResult {
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
pub fn expect_args(what: &str, s: &StopInfo, expected: &[usize]) -> TResult {
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
pub fn expect_ret(what: &str, s: &StopInfo, ret: usize) -> TResult {
    ensure!(
        s.ret == ret as u64,
        "{}: result expected {:#x}, got {}",
        what,
        ret,
        fmt_stop(s)
    );
    Ok(())
}

/// Checks that a wait status says "exited `code`".
pub fn expect_exited(what: &str, status: usize, code: usize) -> TResult {
    ensure!(
        wifexited(status) && wexitstatus(status) == code,
        "{}: expected exited {}, got {} ({:#x})",
        what,
        code,
        fmt_status(status),
        status
    );
    Ok(())
}

/// Checks that a wait status says "killed by `sig`".
pub fn expect_killed(what: &str, status: usize, sig: usize) -> TResult {
    ensure!(
        wifsignaled(status) && wtermsig(status) == sig,
        "{}: expected killed by {}, got {} ({:#x})",
        what,
        rt::process::signal_name(sig),
        fmt_status(status),
        status
    );
    Ok(())
}

/// Checks that `events` are exactly `expected` (cause, a, b).
pub fn expect_events(
    what: &str,
    events: &[PtraceEvent],
    expected: &[(u64, usize, usize)],
) -> TResult {
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
    // A hung wait ends when the watchdog fires (resume waits on through
    // any other signal).
    t.set_give_up(watchdog_fired);
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
pub fn expect_trace(what: &str, trace: &[Traced], expected: &[(u64, usize)]) -> TResult {
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

/// A child process the test owns: killed and reaped on drop unless the test
/// reaped it.
pub struct Kid {
    pub pid: usize,
    reaped: bool,
}

impl Kid {
    pub fn new(pid: usize) -> Kid {
        Kid { pid, reaped: false }
    }

    /// Waits (at most 5 s) for the child to exit; returns its wait status.
    pub fn reap(&mut self) -> Result<usize, String> {
        match rt::process::wait_timeout(self.pid, WaitFlags::empty(), 5000) {
            Ok(Some(status)) => {
                self.reaped = true;
                Ok(status)
            }
            Ok(None) => Err(format!(
                "child {} was not reapable within 5 s (state {})",
                self.pid,
                proc_state(self.pid).unwrap_or_else(|e| e)
            )),
            Err(e) => Err(format!(
                "waitpid({}): {}",
                self.pid,
                rt::errno::describe(&e)
            )),
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = syscall::kill(self.pid, SIGKILL);
            let _ = rt::process::wait_timeout(self.pid, WaitFlags::empty(), 2000);
        }
    }
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

/// The `state=` field of `proc:<pid>/status`.
pub fn proc_state(pid: usize) -> Result<String, String> {
    let fd = syscall::open(format!("proc:{pid}/status"), O_RDONLY | O_CLOEXEC)
        .ctx("open proc:<pid>/status")?;
    let mut buf = [0u8; 256];
    let n = syscall::read(fd, &mut buf);
    let _ = syscall::close(fd);
    let n = n.ctx("read status")?;
    let line = core::str::from_utf8(&buf[..n]).map_err(|_| String::from("status is not UTF-8"))?;
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("state="))
        .map(String::from)
        .ok_or_else(|| format!("no state= in {:?}", line))
}

/// Sets the disposition of `sig`: `SIG_DFL` (0), `SIG_IGN` (1) or a handler
/// address.
pub fn set_disposition(sig: usize, handler: usize) -> TResult {
    // SAFETY: `Option<extern "C" fn(usize)>` has the layout of a usize with 0
    // as None; the values used here are 0, 1 (which the kernel reads as
    // SIG_IGN and never calls) or the address of such a function.
    let h = unsafe { core::mem::transmute::<usize, Option<extern "C" fn(usize)>>(handler) };
    let act = SigAction {
        sa_handler: h,
        sa_mask: [0; 2],
        sa_flags: SigActionFlags::empty(),
    };
    syscall::sigaction(sig, Some(&act), None).ctx("sigaction")?;
    Ok(())
}

/// A raw system call with six arguments; returns `rax` as the kernel left it.
///
/// # Safety
/// The arguments must be valid for system call `nr`.
pub unsafe fn raw6(nr: usize, a: [usize; 6]) -> usize {
    let ret: usize;
    // SAFETY: the caller vouches for the arguments; `syscall` clobbers only
    // rcx and r11 besides rax.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            out("rcx") _,
            out("r11") _,
            options(nostack),
        );
    }
    ret
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

/// Set by the `SIGALRM` handler when the watchdog fired.
static FIRED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_alarm(_sig: usize) {
    FIRED.store(true, Ordering::SeqCst);
}

/// Whether the watchdog has fired during the current test.
pub fn watchdog_fired() -> bool {
    FIRED.load(Ordering::SeqCst)
}

/// Installs the watchdog's `SIGALRM` handler in the test process.
pub fn install_alarm() {
    let _ = set_disposition(SIGALRM, on_alarm as *const () as usize);
}

/// A child that sends `SIGALRM` to the test process after a deadline (and
/// every second after that), so that a blocking tracer call ends with
/// `EINTR` instead of hanging the suite.
pub struct Watchdog(Option<usize>);

impl Watchdog {
    pub fn start(ms: u64) -> Watchdog {
        FIRED.store(false, Ordering::SeqCst);
        let Ok(parent) = syscall::getpid() else {
            return Watchdog(None);
        };
        let pid = rt::process::fork_with(move || {
            let _ = rt::process::sleep_ms(ms);
            for _ in 0..60 {
                let _ = syscall::kill(parent, SIGALRM);
                let _ = rt::process::sleep_ms(1000);
            }
            0
        });
        Watchdog(pid.ok())
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = syscall::kill(pid, SIGKILL);
            let _ = rt::process::wait(pid);
        }
    }
}

/// Runs one test under a watchdog and records its result.
pub fn run(t: &mut Tests, name: &str, f: fn() -> TResult) {
    let dog = Watchdog::start(WATCHDOG_MS);
    let result = f();
    drop(dog);
    let result = match result {
        Err(e) if FIRED.load(Ordering::SeqCst) => Err(format!(
            "{} (the watchdog interrupted the test after {} ms)",
            e, WATCHDOG_MS
        )),
        other => other,
    };
    t.check(name, result);
}
