//! Signal stops and signal events: `PTRACE_SIGNAL` stops before any signal
//! but SIGKILL is delivered (handled, default action or ignored), with
//! `PTRACE_SYSEMU` the signal is discarded; without `PTRACE_SIGNAL` the
//! signal is an event and is delivered.

use alloc::string::String;
use core::sync::atomic::{AtomicUsize, Ordering};

use rt::ensure;
use rt::test::Ctx;
use syscall::flag::{SIGTERM, SIGURG, SIGUSR1, SIGUSR2, SIG_DFL, SIG_IGN};
use tracer::{
    Stopped, PTRACE_CONT, PTRACE_SIGNAL, PTRACE_STOP_EXIT, PTRACE_STOP_SIGNAL, PTRACE_SYSEMU,
    PTRACE_WAIT,
};

use testkit::*;

/// Where [`on_signal_mark`] writes.
static MARK_FD: AtomicUsize = AtomicUsize::new(usize::MAX);

/// A handler that writes "H" to `MARK_FD`.
extern "C" fn on_signal_mark(_sig: usize) {
    let _ = syscall::write(MARK_FD.load(Ordering::SeqCst), b"H");
}

/// How the tracee should end.
#[derive(Clone, Copy)]
enum End {
    Exited(usize),
    Killed(usize),
}

fn expect_end(what: &str, status: usize, end: End) -> Check {
    match end {
        End::Exited(code) => expect_exited(what, status, code),
        End::Killed(sig) => expect_killed(what, status, sig),
    }
}

/// Forks a tracee whose disposition for `sig` is `handler` and that, after
/// the handshake, does `kill(getpid(), sig)` then writes "D" to the report
/// pipe and exits 0. Returns the child and the report pipe's read end.
fn signal_tracee(sig: usize, handler: usize) -> Result<(Kid, usize), String> {
    let (rd, wr) = pipe()?;
    let kid = fork_prepared(
        || {
            MARK_FD.store(wr, Ordering::SeqCst);
            set_disposition(sig, handler).is_ok()
        },
        |me| {
            let _ = syscall::kill(me, sig);
            let _ = syscall::write(wr, b"D");
            0
        },
    )?;
    let _ = syscall::close(wr);
    Ok((kid, rd))
}

/// `PTRACE_SIGNAL` stops at `sig` (cause 8, the signal, the handler as the
/// tracee set it); resuming with `resume` ends the tracee as `end` with the
/// report `report` ("H" if the handler ran, "D" once past the kill).
fn signal_stop_case(sig: usize, handler: usize, resume: u8, end: End, report: &[u8]) -> Check {
    let (mut kid, rd) = signal_tracee(sig, handler)?;
    let mut t = handshake(&kid)?;
    let s = next_stop(&mut t, PTRACE_SIGNAL)?;
    ensure!(
        s.cause == PTRACE_STOP_SIGNAL && s.signal == sig as u64 && s.handler == handler as u64,
        "expected a signal stop (cause 8) for signal {} with handler {:#x}, got {}",
        sig,
        handler,
        fmt_stop(&s)
    );
    let r = t.regs().ctx("regs/int at the signal stop")?;
    ensure!(
        s.addr == r.rip as u64,
        "signal stop: addr {:#x} != rip {:#x}",
        s.addr,
        r.rip
    );
    let state = proc_state(kid.pid)?;
    ensure!(
        state == "held",
        "at the signal stop state={}, expected held",
        state
    );
    let (status, events) = run_to_exit(&mut t, resume)?;
    ensure!(
        events.is_empty(),
        "events after resuming from the signal stop: {}",
        fmt_events(&events)
    );
    expect_end("exit event", status, end)?;
    drop(t);
    expect_end("waitpid", kid.reap()?, end)?;
    let got = read_all(rd)?;
    ensure!(
        got == report,
        "the tracee reported {:?}, expected {:?}",
        alloc::string::String::from_utf8_lossy(&got),
        alloc::string::String::from_utf8_lossy(report)
    );
    Ok(())
}

pub fn handled_discarded() -> Check {
    signal_stop_case(
        SIGUSR1,
        on_signal_mark as *const () as usize,
        PTRACE_SIGNAL | PTRACE_SYSEMU,
        End::Exited(0),
        b"D",
    )
}

pub fn handled_delivered() -> Check {
    signal_stop_case(
        SIGUSR1,
        on_signal_mark as *const () as usize,
        PTRACE_CONT,
        End::Exited(0),
        b"HD",
    )
}

/// SIGURG's default action is to ignore it: a stop with handler SIG_DFL.
pub fn default_ignore() -> Check {
    signal_stop_case(
        SIGURG,
        SIG_DFL,
        PTRACE_SIGNAL | PTRACE_SYSEMU,
        End::Exited(0),
        b"D",
    )
}

/// SIGTERM's default action terminates; discarding it keeps the tracee
/// alive.
pub fn default_terminate_discarded() -> Check {
    signal_stop_case(
        SIGTERM,
        SIG_DFL,
        PTRACE_SIGNAL | PTRACE_SYSEMU,
        End::Exited(0),
        b"D",
    )
}

/// Resuming SIGTERM's stop without `PTRACE_SYSEMU` delivers it: killed.
pub fn default_terminate_delivered() -> Check {
    signal_stop_case(SIGTERM, SIG_DFL, PTRACE_CONT, End::Killed(SIGTERM), b"")
}

/// An ignored signal still stops, with handler SIG_IGN.
pub fn ignored() -> Check {
    signal_stop_case(SIGUSR2, SIG_IGN, PTRACE_CONT, End::Exited(0), b"D")
}

/// Without `PTRACE_SIGNAL`, a signal is a `PTRACE_STOP_SIGNAL` event: the
/// write returns 0, the event says signal and handler, and the signal is
/// delivered (`end`, `report`).
fn signal_event_case(sig: usize, handler: usize, end: End, report: &[u8]) -> Check {
    let (mut kid, rd) = signal_tracee(sig, handler)?;
    let mut t = handshake(&kid)?;
    let first = t.op(PTRACE_CONT).ctx("write PTRACE_CONT")?;
    ensure!(
        first == 0,
        "write PTRACE_CONT returned {}, expected 0 (a signal event)",
        first
    );
    let mut events = t.read_events().ctx("read events")?;
    ensure!(
        events.first().map(|e| (e.cause, e.a, e.b)) == Some((PTRACE_STOP_SIGNAL, sig, handler)),
        "expected the first event to be signal(a={}, b={:#x}), got {}",
        sig,
        handler,
        fmt_events(&events)
    );
    while !events.iter().any(|e| e.cause == PTRACE_STOP_EXIT) {
        let (stopped, more) = resume_ev(&mut t, PTRACE_WAIT)?;
        events.extend(more);
        if !matches!(stopped, Stopped::Exited(_)) {
            return Err(alloc::format!("unexpected stop {}", fmt_stopped(&stopped)));
        }
    }
    ensure!(
        events.len() == 2,
        "expected the signal event and the exit event, got {}",
        fmt_events(&events)
    );
    expect_end("exit event", events[1].a, end)?;
    drop(t);
    expect_end("waitpid", kid.reap()?, end)?;
    let got = read_all(rd)?;
    ensure!(
        got == report,
        "the tracee reported {:?}, expected {:?}",
        alloc::string::String::from_utf8_lossy(&got),
        alloc::string::String::from_utf8_lossy(report)
    );
    Ok(())
}

pub fn event_handled() -> Check {
    signal_event_case(
        SIGUSR1,
        on_signal_mark as *const () as usize,
        End::Exited(0),
        b"HD",
    )
}

pub fn event_default_terminate() -> Check {
    signal_event_case(SIGTERM, SIG_DFL, End::Killed(SIGTERM), b"")
}
