//! Death at every stop: for each stop kind a tracee can be held at, the
//! tracer is killed (with and without `O_EXCL`), or the held process is
//! sent `SIGKILL`. Nobody stays held, the tracee exits or runs on as the
//! contract says, and `sys:memory` is back at its baseline once everyone is
//! reaped.
//!
//! Three processes per case. This program (pid 1) forks the tracer R; R
//! forks the tracee E (the permission rule lets only an ancestor trace) and
//! attaches to it. R brings E to the stop, reports `ready E G` on a pipe
//! (G: E's clone child held for R, in the clone case) and waits for a
//! command. When R dies, E is orphaned onto pid 1, so this program reaps it
//! and sees its wait status: the cases must run in pid 1 itself, not in a
//! forked check.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use rt::ensure;
use rt::process::{self, describe, now_ms, sleep_ms, wait_timeout};
use rt::test::{expect_eq, expect_errno, Ctx};
use syscall::error::{Error, Result as SysResult, ESRCH};
use syscall::flag::{
    wexitstatus, wifexited, wifsignaled, wtermsig, WaitFlags, O_EXCL, O_RDONLY, SIGKILL, SIGTRAP,
    SIGUSR1,
};
use tracer::{
    Stopped, Tracer, PTRACE_CONT, PTRACE_EVENT_CLONE, PTRACE_SIGNAL, PTRACE_SINGLESTEP,
    PTRACE_STOP_BREAKPOINT, PTRACE_STOP_EXIT, PTRACE_STOP_POST_SYSCALL, PTRACE_STOP_PRE_SYSCALL,
    PTRACE_STOP_SIGNAL, PTRACE_STOP_SINGLESTEP, PTRACE_SYSCALL, PTRACE_WAIT,
};

use testkit::{events, op, set_handler, Check};

/// Where the tracee is held when death comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Attach,
    SyscallEntry,
    SyscallExit,
    Signal,
    Int3,
    SingleStep,
    /// E's clone child G, held for the tracer after the clone event.
    CloneChild,
}

/// Who dies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Death {
    /// The tracer is killed; its handle was opened without `O_EXCL`.
    Tracer,
    /// The tracer is killed; its handle was opened with `O_EXCL`.
    TracerExcl,
    /// The held process (E, or G in the clone case) gets `SIGKILL`.
    Held,
    /// Clone case only: E (G's parent, the traced one) gets `SIGKILL`
    /// while G is held; G stays held for the tracer, and the tracer is
    /// then killed, which must release G.
    CloneParentThenTracer,
}

/// The table: every stop kind against every death.
pub const CASES: &[(&str, Stop, Death)] = &[
    ("death_attach_tracer_killed", Stop::Attach, Death::Tracer),
    (
        "death_attach_tracer_killed_excl",
        Stop::Attach,
        Death::TracerExcl,
    ),
    ("death_attach_tracee_sigkill", Stop::Attach, Death::Held),
    (
        "death_syscall_entry_tracer_killed",
        Stop::SyscallEntry,
        Death::Tracer,
    ),
    (
        "death_syscall_entry_tracer_killed_excl",
        Stop::SyscallEntry,
        Death::TracerExcl,
    ),
    (
        "death_syscall_entry_tracee_sigkill",
        Stop::SyscallEntry,
        Death::Held,
    ),
    (
        "death_syscall_exit_tracer_killed",
        Stop::SyscallExit,
        Death::Tracer,
    ),
    (
        "death_syscall_exit_tracer_killed_excl",
        Stop::SyscallExit,
        Death::TracerExcl,
    ),
    (
        "death_syscall_exit_tracee_sigkill",
        Stop::SyscallExit,
        Death::Held,
    ),
    ("death_signal_tracer_killed", Stop::Signal, Death::Tracer),
    (
        "death_signal_tracer_killed_excl",
        Stop::Signal,
        Death::TracerExcl,
    ),
    ("death_signal_tracee_sigkill", Stop::Signal, Death::Held),
    ("death_int3_tracer_killed", Stop::Int3, Death::Tracer),
    (
        "death_int3_tracer_killed_excl",
        Stop::Int3,
        Death::TracerExcl,
    ),
    ("death_int3_tracee_sigkill", Stop::Int3, Death::Held),
    (
        "death_single_step_tracer_killed",
        Stop::SingleStep,
        Death::Tracer,
    ),
    (
        "death_single_step_tracer_killed_excl",
        Stop::SingleStep,
        Death::TracerExcl,
    ),
    (
        "death_single_step_tracee_sigkill",
        Stop::SingleStep,
        Death::Held,
    ),
    (
        "death_clone_child_tracer_killed",
        Stop::CloneChild,
        Death::Tracer,
    ),
    (
        "death_clone_child_tracer_killed_excl",
        Stop::CloneChild,
        Death::TracerExcl,
    ),
    ("death_clone_child_sigkill", Stop::CloneChild, Death::Held),
    (
        "death_clone_parent_sigkill_then_tracer_killed",
        Stop::CloneChild,
        Death::CloneParentThenTracer,
    ),
];

/// Deadline for anything this suite waits for: it only catches a hang
/// (someone held for ever), it never judges speed.
const HANG_MS: u64 = 20_000;

/// What E exits with when it runs on to its end after release.
fn ran_on_code(stop: Stop) -> usize {
    match stop {
        // The signal is delivered as if untraced: the handler ran.
        Stop::Signal => 51,
        // Resumed onto the `int3` byte untraced: SIGTRAP, the handler ran.
        Stop::Int3 => 61,
        // The released clone child exited 5 and E reaped it.
        Stop::CloneChild => 75,
        _ => 40,
    }
}

/// E's exit code in the clone case when G was killed by `SIGKILL`.
const CLONE_CHILD_KILLED: usize = 80 + SIGKILL;
/// G's exit code.
const CLONE_CHILD_CODE: i32 = 5;

/// Set by E's signal handlers.
static HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_sig: usize) {
    HANDLED.store(1, Ordering::SeqCst);
}

/// The tracee E: waits on its gate (the tracer attaches meanwhile and
/// opens it), then does what reaches `stop`, and exits with a code that
/// says what happened (see [`ran_on_code`]).
fn tracee_main(stop: Stop, gate: usize) -> i32 {
    let handler = match stop {
        Stop::Signal => set_handler(SIGUSR1, on_signal),
        Stop::Int3 => set_handler(SIGTRAP, on_signal),
        _ => Ok(()),
    };
    if handler.is_err() {
        return 2;
    }
    let mut b = [0u8; 1];
    let _ = rt::io::read(gate, &mut b);
    let handled = || HANDLED.load(Ordering::SeqCst) as i32;
    match stop {
        Stop::Signal => {
            let _ = syscall::kill(syscall::getpid().unwrap_or(0), SIGUSR1);
            50 + handled()
        }
        Stop::Int3 => {
            // SAFETY: `int3` only traps; traced, the tracer holds us on it,
            // untraced our SIGTRAP handler runs and returns past it.
            unsafe { core::arch::asm!("int3") };
            60 + handled()
        }
        Stop::CloneChild => {
            let Ok(child) = process::fork_with(|| CLONE_CHILD_CODE) else {
                return 3;
            };
            match process::wait(child) {
                Ok(s) if wifexited(s) => 70 + wexitstatus(s) as i32,
                Ok(s) if wifsignaled(s) => 80 + wtermsig(s) as i32,
                _ => 4,
            }
        }
        _ => {
            for _ in 0..3 {
                let _ = syscall::getpid();
            }
            40
        }
    }
}

/// In R: resumes with `op` until `proc:<E>/stop` has `cause`.
fn until_cause(t: &mut Tracer, op: u8, cause: u64) -> Result<(), String> {
    for _ in 0..20 {
        match t.resume(op, |_| {}).ctx("resume")? {
            Stopped::Reached(stop) if stop.cause == cause => return Ok(()),
            Stopped::Reached(_) => {}
            other => return Err(format!("expected stop cause {cause:#x}, got {other:?}")),
        }
    }
    Err(format!("no stop with cause {cause:#x} within 20 stops"))
}

/// In R: attaches to E, brings it to `stop`, and returns G (0 if none).
fn bring_to_stop(t: &mut Tracer, stop: Stop, gate_wr: usize) -> Result<usize, String> {
    rt::io::write_all(gate_wr, b"g").ctx("open the gate")?;
    let mut child = 0;
    match stop {
        Stop::Attach => expect_eq("stop cause at attach", t.stop().ctx("stop")?.cause, 0)?,
        Stop::SyscallEntry => until_cause(t, PTRACE_SYSCALL, PTRACE_STOP_PRE_SYSCALL)?,
        Stop::SyscallExit => until_cause(t, PTRACE_SYSCALL, PTRACE_STOP_POST_SYSCALL)?,
        Stop::SingleStep => until_cause(t, PTRACE_SINGLESTEP, PTRACE_STOP_SINGLESTEP)?,
        Stop::Signal => {
            until_cause(t, PTRACE_SIGNAL, PTRACE_STOP_SIGNAL)?;
            expect_eq(
                "signal at the signal stop",
                t.stop().ctx("stop")?.signal,
                SIGUSR1 as u64,
            )?;
        }
        Stop::Int3 => match t.resume(PTRACE_CONT, |_| {}).ctx("resume")? {
            Stopped::Breakpoint(_) => expect_eq(
                "stop cause at int3",
                t.stop().ctx("stop")?.cause,
                PTRACE_STOP_BREAKPOINT,
            )?,
            other => return Err(format!("expected the int3 stop, got {other:?}")),
        },
        Stop::CloneChild => {
            // Not `resume`: its next PTRACE_WAIT would release the child.
            let mut got = Vec::new();
            for _ in 0..20 {
                let r = op(t.fd(), PTRACE_CONT).ctx("PTRACE_CONT")?;
                ensure!(r == 0, "PTRACE_CONT returned {} without an event", r);
                got = events(t.fd())?;
                if !got.is_empty() {
                    break;
                }
            }
            let clone = got
                .iter()
                .find(|e| e.cause == PTRACE_EVENT_CLONE)
                .ok_or(format!("no clone event in {got:?}"))?;
            child = clone.a;
        }
    }
    Ok(child)
}

/// In R, after E died by the test's `SIGKILL`: the exit event is there
/// with `expected` status, and the session then answers `ESRCH`.
fn check_exit_event(t: &mut Tracer, expected: usize) -> Check {
    let exits: Vec<usize> = events(t.fd())?
        .iter()
        .filter(|e| e.cause == PTRACE_STOP_EXIT)
        .map(|e| e.a)
        .collect();
    expect_eq("exit events (wait statuses)", exits, alloc::vec![expected])?;
    expect_errno(
        "PTRACE_WAIT after the exit event",
        op(t.fd(), PTRACE_WAIT),
        ESRCH,
    )
}

/// The wait status of a process killed by `sig` / exited with `code`.
fn killed(sig: usize) -> usize {
    sig
}
fn exited(code: usize) -> usize {
    (code & 0xff) << 8
}

/// The tracer process R. Its report lines go to `report`: `ready E G`,
/// then `ok` after a successful check, or `error: WHY`.
fn tracer_main(stop: Stop, excl: bool, report: usize, command: usize) -> i32 {
    let result = (|| -> Check {
        let (gate_rd, gate_wr) = rt::io::pipe(0).ctx("pipe")?;
        let tracee = process::fork_with(move || {
            let _ = syscall::close(report);
            let _ = syscall::close(command);
            let _ = syscall::close(gate_wr);
            tracee_main(stop, gate_rd)
        })
        .ctx("fork the tracee")?;
        let _ = syscall::close(gate_rd);
        let mut t = Tracer::attach_flags(tracee, if excl { O_EXCL } else { 0 }).ctx("attach")?;
        let child = bring_to_stop(&mut t, stop, gate_wr)?;
        rt::io::write_all(report, format!("ready {tracee} {child}\n").as_bytes()).ctx("report")?;
        let mut b = [0u8; 1];
        let n = rt::io::read(command, &mut b).ctx("read command")?;
        ensure!(n == 1 && b[0] == b'v', "unexpected command {:?}", &b[..n]);
        let expected = match stop {
            Stop::CloneChild => exited(CLONE_CHILD_KILLED),
            _ => killed(SIGKILL),
        };
        check_exit_event(&mut t, expected)?;
        // Leave E unreaped: pid 1 inherits and reaps it.
        Ok(())
    })();
    let line = match &result {
        Ok(()) => String::from("ok\n"),
        Err(why) => format!("error: {why}\n"),
    };
    let _ = rt::io::write_all(report, line.as_bytes());
    i32::from(result.is_err())
}

/// Reads one line from `fd` (without the newline); `None` at end of file.
fn read_line(fd: usize) -> Result<Option<String>, String> {
    let mut line = Vec::new();
    loop {
        let mut b = [0u8; 1];
        match rt::io::read(fd, &mut b).ctx("read report")? {
            0 if line.is_empty() => return Ok(None),
            0 => break,
            _ if b[0] == b'\n' => break,
            _ => line.push(b[0]),
        }
    }
    Ok(Some(String::from_utf8_lossy(&line).to_string()))
}

/// `proc:<pid>/status`, or the open's error (`ESRCH` once it has exited).
fn status_of(pid: usize) -> SysResult<String> {
    let fd = syscall::open(format!("proc:{pid}/status"), O_RDONLY)?;
    let mut buf = [0u8; 512];
    let n = rt::io::read(fd, &mut buf);
    let _ = syscall::close(fd);
    Ok(String::from_utf8_lossy(&buf[..n?]).trim_end().to_string())
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or("")
}

/// `pid` is held, with `tracer=` as given (a clone child held for a
/// tracer is not traced until that tracer attaches: `tracer=0`).
fn expect_held(pid: usize, tracer: usize) -> Check {
    let line = status_of(pid).ctx(&format!("status of {pid}"))?;
    ensure!(
        field(&line, "state") == "held" && field(&line, "tracer") == tracer.to_string(),
        "pid {}: expected state=held tracer={}, got {:?}",
        pid,
        tracer,
        line
    );
    Ok(())
}

/// `pid` is neither held nor traced (or already gone).
fn expect_free(pid: usize) -> Check {
    match status_of(pid) {
        Err(Error { errno: ESRCH }) => Ok(()),
        Err(e) => Err(format!("status of {pid}: {}", rt::errno::describe(&e))),
        Ok(line) => {
            ensure!(
                field(&line, "state") != "held" && field(&line, "tracer") == "0",
                "pid {} still held or traced after the death: {:?}",
                pid,
                line
            );
            Ok(())
        }
    }
}

/// Polls `status` until `pid` has exited (`ESRCH`); the deadline only
/// catches a process that stays alive for ever.
fn wait_gone(pid: usize) -> Check {
    let deadline = now_ms() + HANG_MS;
    loop {
        match status_of(pid) {
            Err(Error { errno: ESRCH }) => return Ok(()),
            Err(e) => return Err(format!("status of {pid}: {}", rt::errno::describe(&e))),
            Ok(line) => ensure!(
                now_ms() < deadline,
                "pid {} still there after {} ms: {:?}",
                pid,
                HANG_MS,
                line
            ),
        }
        let _ = sleep_ms(1);
    }
}

/// Reaps our child (or orphan) `pid`; the deadline only catches a hang.
fn reap(pid: usize) -> Result<usize, String> {
    wait_timeout(pid, WaitFlags::empty(), HANG_MS)
        .ctx(&format!("waitpid {pid}"))?
        .ok_or(format!("pid {pid} still not reapable after {HANG_MS} ms"))
}

fn expect_status(what: &str, got: usize, want: usize) -> Check {
    ensure!(
        got == want,
        "{}: expected {}, got {}",
        what,
        describe(want),
        describe(got)
    );
    Ok(())
}

/// Pids of one case, for the clean-up after a failure.
#[derive(Default)]
struct Pids {
    tracer: usize,
    tracee: usize,
    child: usize,
}

/// One case, from pid 1. The leak check (unless `check_leak` is false) is
/// `sys:memory` before forking the tracer and after every process of the
/// case is reaped.
pub fn run_case(stop: Stop, death: Death, check_leak: bool) -> Check {
    ensure!(
        syscall::getpid() == Ok(1),
        "the death cases must run as pid 1 (orphans are reaped there)"
    );
    let before = testkit::memory()?;
    let mut pids = Pids::default();
    let result = drive(stop, death, &mut pids);
    if result.is_err() {
        // Clean up whatever is left, tracer first (its death orphans the
        // others onto us).
        for pid in [pids.tracer, pids.tracee, pids.child] {
            if pid != 0 {
                let _ = syscall::kill(pid, SIGKILL);
                let _ = wait_timeout(pid, WaitFlags::empty(), 2000);
            }
        }
        return result;
    }
    if check_leak {
        testkit::expect_memory_back(before, "reaping every process of the case")?;
    }
    Ok(())
}

fn drive(stop: Stop, death: Death, pids: &mut Pids) -> Check {
    let (report_rd, report_wr) = rt::io::pipe(0).ctx("pipe")?;
    let (command_rd, command_wr) = rt::io::pipe(0).ctx("pipe")?;
    let excl = death == Death::TracerExcl;
    let tracer = process::fork_with(move || {
        let _ = syscall::close(report_rd);
        let _ = syscall::close(command_wr);
        tracer_main(stop, excl, report_wr, command_rd)
    });
    let _ = syscall::close(report_wr);
    let _ = syscall::close(command_rd);
    let result = (|| {
        pids.tracer = tracer.ctx("fork the tracer")?;
        drive_with(stop, death, pids, report_rd, command_wr)
    })();
    let _ = syscall::close(report_rd);
    let _ = syscall::close(command_wr);
    result
}

fn drive_with(stop: Stop, death: Death, pids: &mut Pids, report: usize, command: usize) -> Check {
    let tracer = pids.tracer;
    let line = read_line(report)?;
    let Some(ready) = line.as_deref().and_then(|l| l.strip_prefix("ready ")) else {
        let status = reap(tracer)?;
        return Err(format!(
            "the tracer never reached the stop: {:?}, tracer {}",
            line,
            describe(status)
        ));
    };
    let mut nums = ready.split(' ').map(|n| n.parse::<usize>().unwrap_or(0));
    pids.tracee = nums.next().unwrap_or(0);
    pids.child = nums.next().unwrap_or(0);
    let (tracee, child) = (pids.tracee, pids.child);
    ensure!(tracee != 0, "bad ready line {:?}", ready);
    // The held one: E, or its clone child G.
    let held = if stop == Stop::CloneChild {
        expect_held(child, 0)?;
        child
    } else {
        expect_held(tracee, tracer)?;
        tracee
    };

    match death {
        Death::Tracer | Death::TracerExcl => {
            syscall::kill(tracer, SIGKILL).ctx("kill the tracer")?;
            expect_status("tracer", reap(tracer)?, killed(SIGKILL))?;
            // The tracer's exit ended the session before it was reapable.
            expect_free(tracee)?;
            if child != 0 {
                expect_free(child)?;
            }
            let want = if death == Death::TracerExcl {
                killed(SIGKILL)
            } else {
                exited(ran_on_code(stop))
            };
            expect_status("tracee (orphaned onto pid 1)", reap(tracee)?, want)?;
            if child != 0 && death == Death::TracerExcl {
                // E died; its released child ran on and was orphaned to us.
                expect_status(
                    "released clone child",
                    reap(child)?,
                    exited(CLONE_CHILD_CODE as usize),
                )?;
            }
        }
        Death::CloneParentThenTracer => {
            ensure!(child != 0, "no clone child to hold");
            syscall::kill(tracee, SIGKILL).ctx("kill the clone parent")?;
            wait_gone(tracee)?;
            // Orphaned onto us, still held for the tracer: the tracer may
            // still attach to it, or release it.
            expect_held(child, 0)?;
            syscall::kill(tracer, SIGKILL).ctx("kill the tracer")?;
            expect_status("tracer", reap(tracer)?, killed(SIGKILL))?;
            expect_free(child)?;
            expect_status(
                "released clone child (orphaned onto pid 1)",
                reap(child)?,
                exited(CLONE_CHILD_CODE as usize),
            )?;
            expect_status("clone parent", reap(tracee)?, killed(SIGKILL))?;
        }
        Death::Held => {
            syscall::kill(held, SIGKILL).ctx("kill the held process")?;
            wait_gone(tracee)?;
            rt::io::write_all(command, b"v").ctx("command the tracer")?;
            let verdict = read_line(report)?;
            let status = reap(tracer)?;
            match verdict.as_deref() {
                Some("ok") => {}
                other => return Err(format!("tracer: {other:?}")),
            }
            expect_status("tracer", status, exited(0))?;
            let want = if stop == Stop::CloneChild {
                exited(CLONE_CHILD_KILLED)
            } else {
                killed(SIGKILL)
            };
            expect_status("tracee (orphaned onto pid 1)", reap(tracee)?, want)?;
        }
    }
    Ok(())
}
