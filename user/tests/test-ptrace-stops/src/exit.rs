//! Exit events: the event carries the wait status (exit code, killed by a
//! signal), writes fail with ESRCH once every event is read, and the parent
//! still reaps the tracee.

use rt::ensure;
use rt::test::Ctx;
use syscall::error::ESRCH;
use syscall::flag::{O_RDONLY, SIGKILL, SIGTERM};
use syscall::number::*;
use tracer::{
    open_proc, PTRACE_CONT, PTRACE_SIGNAL, PTRACE_STOP_EXIT, PTRACE_STOP_PRE_SYSCALL as PRE,
    PTRACE_STOP_SIGNAL, PTRACE_SYSCALL, PTRACE_WAIT,
};

use testkit::*;

/// Checks that every op fails with ESRCH now.
fn expect_esrch(t: &tracer::Tracer) -> Check {
    for op in [PTRACE_CONT, PTRACE_SYSCALL, PTRACE_SIGNAL, PTRACE_WAIT] {
        rt::test::expect_errno(
            &alloc::format!("write op {:#x} after the exit event was read", op),
            t.op(op),
            ESRCH,
        )?;
    }
    Ok(())
}

/// exit(42): the exit event says exited 42; ESRCH afterwards; the parent
/// reaps exited 42 while the tracer still has the handle open.
pub fn exit_code() -> Check {
    let mut kid = fork_stopped(|_| 42)?;
    let mut t = handshake(&kid)?;
    let n = t.op(PTRACE_CONT).ctx("write PTRACE_CONT")?;
    ensure!(n == 0, "write returned {}, expected 0 (the exit event)", n);
    let events = t.read_events().ctx("read events")?;
    ensure!(
        events.len() == 1 && events[0].cause == PTRACE_STOP_EXIT,
        "expected one exit event, got {}",
        fmt_events(&events)
    );
    expect_exited("exit event", events[0].a, 42)?;
    expect_esrch(&t)?;
    let again = t.read_events().ctx("read events again")?;
    ensure!(
        again.is_empty(),
        "events after the exit: {}",
        fmt_events(&again)
    );
    rt::test::expect_errno(
        "open regs/int of the exited, unreaped tracee",
        open_proc(kid.pid, "regs/int", O_RDONLY),
        ESRCH,
    )?;
    // Reaped while the handle is still open.
    expect_exited("waitpid", kid.reap()?, 42)?;
    expect_esrch(&t)?;
    drop(t);
    Ok(())
}

/// kill(getpid(), SIGTERM) with the default action: a signal event, then the
/// exit event says killed by SIGTERM.
pub fn killed_by_own_signal() -> Check {
    let mut kid = fork_stopped(|me| {
        let _ = syscall::kill(me, SIGTERM);
        0
    })?;
    let mut t = handshake(&kid)?;
    let (status, events) = run_to_exit(&mut t, PTRACE_CONT)?;
    expect_events("events", &events, &[(PTRACE_STOP_SIGNAL, SIGTERM, 0)])?;
    expect_killed("exit event", status, SIGTERM)?;
    expect_esrch(&t)?;
    drop(t);
    expect_killed("waitpid", kid.reap()?, SIGTERM)
}

/// SIGKILL sent to a tracee held at a syscall stop: it dies at once, the
/// exit event says killed by SIGKILL, and the parent reaps it.
pub fn sigkill_while_held() -> Check {
    let mut kid = fork_stopped(|_| {
        let _ = syscall::getpid();
        0
    })?;
    let mut t = handshake(&kid)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("stop", &s, PRE, SYS_GETPID)?;
    syscall::kill(kid.pid, SIGKILL).ctx("kill SIGKILL")?;
    // The kill is asynchronous: until the tracee has run its exit, a
    // PTRACE_WAIT may still see the old stop (1); the exit event must come.
    let mut n = 1;
    for _ in 0..200 {
        n = t.op(PTRACE_WAIT).ctx("write PTRACE_WAIT")?;
        if n == 0 {
            break;
        }
        let _ = rt::process::sleep_ms(5);
    }
    ensure!(
        n == 0,
        "write PTRACE_WAIT kept returning {}, expected 0 (the exit event)",
        n
    );
    let events = t.read_events().ctx("read events")?;
    ensure!(
        events.len() == 1 && events[0].cause == PTRACE_STOP_EXIT,
        "expected one exit event, got {}",
        fmt_events(&events)
    );
    expect_killed("exit event", events[0].a, SIGKILL)?;
    expect_esrch(&t)?;
    drop(t);
    expect_killed("waitpid", kid.reap()?, SIGKILL)
}
