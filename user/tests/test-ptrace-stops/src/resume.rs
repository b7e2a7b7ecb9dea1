//! `Tracer::resume`, the client library's loop, where the contract leaves
//! the tracer a choice: a signal that interrupts the blocking wait
//! (`EINTR`, the breakpoint stays set) makes it wait on with `PTRACE_WAIT`
//! unless the caller asked to give up, and it refuses a non-blocking
//! handle (`EINVAL`, nothing written).

use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rt::ensure;
use rt::test::Ctx;
use syscall::error::{EINTR, EINVAL};
use syscall::flag::{F_GETFL, F_SETFL, O_NONBLOCK, SIGUSR2, SIG_DFL};
use syscall::number::*;
use tracer::{
    Tracer, PTRACE_CONT, PTRACE_STOP_POST_SYSCALL as POST, PTRACE_STOP_PRE_SYSCALL as PRE,
    PTRACE_SYSCALL, PTRACE_WAIT,
};

use testkit::*;

/// How long each of the tracee's sleeps lasts.
const SLEEP_MS: u64 = 400;

/// SIGUSR2s the tracer (this process) has handled.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
/// What [`give_up`] answers.
static GIVE_UP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_usr2(_sig: usize) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

fn give_up() -> bool {
    GIVE_UP.load(Ordering::SeqCst)
}

/// One `nanosleep` of [`SLEEP_MS`] in the tracee.
fn tracee_sleep() {
    let ts = syscall::TimeSpec {
        tv_sec: 0,
        tv_nsec: (SLEEP_MS * 1_000_000) as i32,
    };
    let mut rem = syscall::TimeSpec::default();
    let _ = syscall::nanosleep(&ts, &mut rem);
}

/// A child that sends `SIGUSR2` to this process twice, 50 ms apart, after
/// 50 ms: while the tracer is blocked in a wait for a tracee that sleeps
/// [`SLEEP_MS`].
fn signal_sender() -> Result<Kid, String> {
    let me = syscall::getpid().ctx("getpid")?;
    let pid = rt::process::fork_with(move || {
        for _ in 0..2 {
            let _ = rt::process::sleep_ms(50);
            let _ = syscall::kill(me, SIGUSR2);
        }
        0
    })
    .ctx("fork the signal sender")?;
    Ok(Kid::new(pid))
}

/// The test proper, with the SIGUSR2 handler installed.
fn interrupted_waits() -> Check {
    let mut kid = fork_stopped(|_| {
        tracee_sleep();
        tracee_sleep();
        let _ = syscall::getpid();
        0
    })?;
    let mut t = handshake(&kid)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("first sleep", &s, PRE, SYS_NANOSLEEP)?;

    // Signals interrupt the wait for the first sleep's exit: resume waits
    // on and returns that exit stop.
    SIGNALS.store(0, Ordering::SeqCst);
    let mut sender = signal_sender()?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("first sleep, interrupted waits", &s, POST, SYS_NANOSLEEP)?;
    expect_ret("first sleep", &s, 0)?;
    expect_exited("signal sender", sender.reap()?, 0)?;
    let seen = SIGNALS.load(Ordering::SeqCst);
    ensure!(
        seen == 2,
        "the tracer handled {} SIGUSR2 while it waited, expected 2",
        seen
    );

    // With a give-up check that says yes, the first signal ends resume
    // with EINTR; the breakpoint stays set, and resume(PTRACE_WAIT) goes
    // on to the same stop.
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("second sleep", &s, PRE, SYS_NANOSLEEP)?;
    GIVE_UP.store(true, Ordering::SeqCst);
    t.set_give_up(give_up);
    let mut sender = signal_sender()?;
    let r = t.resume_collect(PTRACE_SYSCALL);
    GIVE_UP.store(false, Ordering::SeqCst);
    match r {
        Err(e) if e.errno == EINTR => {}
        Ok((stopped, events)) => {
            return Err(alloc::format!(
                "with give-up set, resume returned {} (events {}), expected EINTR",
                fmt_stopped(&stopped),
                fmt_events(&events)
            ))
        }
        Err(e) => return Err(alloc::format!("resume: {}", rt::errno::describe(&e))),
    }
    let (stopped, events) = t
        .resume_collect(PTRACE_WAIT)
        .ctx("resume(PTRACE_WAIT) after EINTR")?;
    ensure!(events.is_empty(), "events: {}", fmt_events(&events));
    let s = reached("PTRACE_WAIT after EINTR", stopped)?;
    expect_sys("second sleep, after EINTR", &s, POST, SYS_NANOSLEEP)?;
    expect_exited("signal sender", sender.reap()?, 0)?;

    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("after the sleeps", &s, PRE, SYS_GETPID)?;
    let (status, _) = run_to_exit(&mut t, PTRACE_CONT)?;
    expect_exited("exit event", status, 0)?;
    drop(t);
    expect_exited("waitpid", kid.reap()?, 0)
}

/// A signal to the tracer during `resume`'s wait does not end it (the
/// breakpoint stays set; the loop waits on), unless a give-up check says
/// so; then `resume(PTRACE_WAIT)` reaches the same stop.
pub fn waits_through_signals() -> Check {
    set_disposition(SIGUSR2, on_usr2 as *const () as usize)?;
    let result = interrupted_waits();
    set_disposition(SIGUSR2, SIG_DFL)?;
    result
}

/// Sets or clears `O_NONBLOCK` on the trace handle.
fn set_nonblocking(t: &Tracer, on: bool) -> Check {
    let flags = syscall::fcntl(t.fd(), F_GETFL, 0).ctx("F_GETFL")?;
    let flags = if on {
        flags | O_NONBLOCK
    } else {
        flags & !O_NONBLOCK
    };
    syscall::fcntl(t.fd(), F_SETFL, flags).ctx("F_SETFL")?;
    Ok(())
}

/// `resume` on a non-blocking handle is `EINVAL` and writes nothing: the
/// tracee stays held at its stop. Made blocking again, it works.
pub fn nonblocking_einval() -> Check {
    let mut kid = fork_stopped(|_| {
        let _ = syscall::getpid();
        0
    })?;
    let mut t = handshake(&kid)?;
    let before = t.stop().ctx("read stop")?;
    set_nonblocking(&t, true)?;
    ensure!(
        t.is_nonblocking().ctx("is_nonblocking")?,
        "O_NONBLOCK set, is_nonblocking says no"
    );
    for op in [PTRACE_SYSCALL, PTRACE_CONT, PTRACE_WAIT] {
        match t.resume_collect(op) {
            Err(e) if e.errno == EINVAL => {}
            Err(e) => {
                return Err(alloc::format!(
                    "non-blocking resume({:#x}): {}, expected EINVAL",
                    op,
                    rt::errno::describe(&e)
                ))
            }
            Ok((stopped, _)) => {
                return Err(alloc::format!(
                    "non-blocking resume({:#x}) returned {}, expected EINVAL",
                    op,
                    fmt_stopped(&stopped)
                ))
            }
        }
    }
    let after = t.stop().ctx("read stop")?;
    ensure!(
        after == before,
        "the refused resume changed the stop: {} -> {}",
        fmt_stop(&before),
        fmt_stop(&after)
    );
    let state = proc_state(t.pid)?;
    ensure!(state == "held", "state={}, expected held", state);
    set_nonblocking(&t, false)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("blocking again", &s, PRE, SYS_GETPID)?;
    let (status, _) = run_to_exit(&mut t, PTRACE_CONT)?;
    expect_exited("exit event", status, 0)?;
    drop(t);
    expect_exited("waitpid", kid.reap()?, 0)
}
