//! `int3` in a traced process: a `PTRACE_STOP_BREAKPOINT` event with the
//! byte's address, the tracee held with `rip` on the byte, resumed by any
//! write; no SIGTRAP. Untraced, `int3` is SIGTRAP.

use alloc::string::String;
use alloc::vec::Vec;

use rt::ensure;
use rt::test::Ctx;
use syscall::flag::SIGTRAP;
use syscall::number::*;
use tracer::{
    PtraceEvent, Stopped, Tracer, PTRACE_CONT, PTRACE_STOP_BREAKPOINT, PTRACE_STOP_EXIT,
    PTRACE_STOP_PRE_SYSCALL as PRE, PTRACE_SYSCALL, PTRACE_WAIT,
};

use testkit::*;

core::arch::global_asm!(
    ".pushsection .text.stops_int3, \"ax\"",
    ".global stops_int3",
    "stops_int3:",
    "    int3",
    "    ret",
    ".popsection",
);

extern "C" {
    /// Executes `int3` (its first byte) and returns.
    fn stops_int3();
}

/// The address of the `int3` byte.
fn int3_addr() -> usize {
    stops_int3 as *const () as usize
}

/// A tracee that executes the `int3` after the handshake, then writes "A"
/// to the report pipe and exits 0.
fn int3_tracee() -> Result<(Kid, usize), String> {
    let (rd, wr) = pipe()?;
    let kid = fork_stopped(move |_| {
        // SAFETY: stops_int3 only traps and returns; traced, the tracer
        // moves rip past the trap.
        unsafe { stops_int3() };
        let _ = syscall::write(wr, b"A");
        0
    })?;
    let _ = syscall::close(wr);
    Ok((kid, rd))
}

/// Writes `op` and expects 0 and, once read, exactly one breakpoint event
/// at the int3 byte; checks `stop`, `rip` and `status` there.
fn expect_breakpoint(t: &mut Tracer, op: u8, what: &str) -> Check {
    let addr = int3_addr();
    let n = t.op(op).ctx("write op")?;
    ensure!(
        n == 0,
        "{}: write returned {}, expected 0 (an event)",
        what,
        n
    );
    let events = t.read_events().ctx("read events")?;
    expect_events(what, &events, &[(PTRACE_STOP_BREAKPOINT, addr, 0)])?;
    let s = t.stop().ctx("read stop")?;
    ensure!(
        s.cause == PTRACE_STOP_BREAKPOINT && s.addr == addr as u64,
        "{}: stop expected cause 0x10 at {:#x}, got {}",
        what,
        addr,
        fmt_stop(&s)
    );
    let r = t.regs().ctx("regs/int")?;
    ensure!(
        r.rip == addr,
        "{}: rip {:#x}, expected the int3 byte {:#x}",
        what,
        r.rip,
        addr
    );
    let state = proc_state(t.pid)?;
    ensure!(state == "held", "{}: state={}, expected held", what, state);
    Ok(())
}

/// Moves the tracee's rip past the int3 byte.
fn skip_int3(t: &mut Tracer) -> Check {
    let mut r = t.regs().ctx("regs/int")?;
    r.rip = int3_addr() + 1;
    t.set_regs(&r).ctx("write regs/int")
}

/// Reads events (writing `PTRACE_WAIT` while there are none) until the exit
/// event; returns all events.
fn events_to_exit(t: &mut Tracer, first_op: u8) -> Result<Vec<PtraceEvent>, String> {
    let mut events = Vec::new();
    let mut op = first_op;
    for _ in 0..20 {
        let n = t.op(op).ctx("write op")?;
        events.extend(t.read_events().ctx("read events")?);
        if events.iter().any(|e| e.cause == PTRACE_STOP_EXIT) {
            return Ok(events);
        }
        ensure!(
            n == 0,
            "write returned {} with no exit event; events so far {}",
            n,
            fmt_events(&events)
        );
        op = PTRACE_WAIT;
    }
    Err(alloc::format!(
        "no exit event; events so far {}",
        fmt_events(&events)
    ))
}

/// The int3 event, then rip+1 and `PTRACE_WAIT`: the tracee goes on (no
/// SIGTRAP) and exits normally.
pub fn event_and_skip() -> Check {
    let (mut kid, rd) = int3_tracee()?;
    let mut t = handshake(&kid)?;
    expect_breakpoint(&mut t, PTRACE_CONT, "int3")?;
    skip_int3(&mut t)?;
    let events = events_to_exit(&mut t, PTRACE_WAIT)?;
    ensure!(
        events.len() == 1,
        "after the int3 expected only the exit event, got {}",
        fmt_events(&events)
    );
    expect_exited("exit event", events[0].a, 0)?;
    drop(t);
    expect_exited("waitpid", kid.reap()?, 0)?;
    let got = read_all(rd)?;
    ensure!(got == b"A", "the tracee reported {:?}, expected \"A\"", got);
    Ok(())
}

/// Resuming with rip unchanged executes the int3 again (second event at
/// the same address); then rip+1 and `PTRACE_SYSCALL` stops at the next
/// call.
pub fn again_when_rip_unchanged() -> Check {
    let (mut kid, rd) = int3_tracee()?;
    let mut t = handshake(&kid)?;
    expect_breakpoint(&mut t, PTRACE_CONT, "first int3")?;
    expect_breakpoint(&mut t, PTRACE_CONT, "int3 again (rip unchanged)")?;
    skip_int3(&mut t)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("after the int3", &s, PRE, SYS_WRITE)?;
    let (status, events) = run_to_exit(&mut t, PTRACE_CONT)?;
    ensure!(events.is_empty(), "events: {}", fmt_events(&events));
    expect_exited("exit event", status, 0)?;
    drop(t);
    expect_exited("waitpid", kid.reap()?, 0)?;
    let got = read_all(rd)?;
    ensure!(got == b"A", "the tracee reported {:?}, expected \"A\"", got);
    Ok(())
}

/// `Tracer::resume` returns at an int3: `Breakpoint(addr)`, the tracee
/// held with rip on the byte (it used to write `PTRACE_WAIT` there, which
/// ran the int3 again, forever). Resumed with rip unchanged it stops at the
/// same int3 again; moved past it, the breakpoint the op set (the next
/// syscall) is reached.
pub fn resume_returns_breakpoint() -> Check {
    let addr = int3_addr();
    let (mut kid, rd) = int3_tracee()?;
    let mut t = handshake(&kid)?;
    for what in ["int3", "int3 again (rip unchanged)"] {
        let (stopped, events) = resume_ev(&mut t, PTRACE_SYSCALL)?;
        ensure!(
            stopped == Stopped::Breakpoint(addr),
            "{}: resume returned {}, expected the int3 at {:#x}",
            what,
            fmt_stopped(&stopped),
            addr
        );
        expect_events(what, &events, &[(PTRACE_STOP_BREAKPOINT, addr, 0)])?;
        let s = t.stop().ctx("read stop")?;
        ensure!(
            s.cause == PTRACE_STOP_BREAKPOINT && s.addr == addr as u64,
            "{}: stop expected cause 0x10 at {:#x}, got {}",
            what,
            addr,
            fmt_stop(&s)
        );
        let rip = t.regs().ctx("regs/int")?.rip;
        ensure!(
            rip == addr,
            "{}: rip {:#x}, expected {:#x}",
            what,
            rip,
            addr
        );
        let state = proc_state(t.pid)?;
        ensure!(state == "held", "{}: state={}, expected held", what, state);
    }
    skip_int3(&mut t)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("after the int3", &s, PRE, SYS_WRITE)?;
    let (status, events) = run_to_exit(&mut t, PTRACE_CONT)?;
    ensure!(events.is_empty(), "events: {}", fmt_events(&events));
    expect_exited("exit event", status, 0)?;
    drop(t);
    expect_exited("waitpid", kid.reap()?, 0)?;
    let got = read_all(rd)?;
    ensure!(got == b"A", "the tracee reported {:?}, expected \"A\"", got);
    Ok(())
}

/// Untraced, int3 delivers SIGTRAP (default action: killed).
pub fn untraced_sigtrap() -> Check {
    let pid = rt::process::fork_with(|| {
        // SAFETY: the trap kills this child; nothing runs after it.
        unsafe { stops_int3() };
        0
    })
    .ctx("fork")?;
    let mut kid = Kid::new(pid);
    expect_killed("waitpid", kid.reap()?, SIGTRAP)
}
