//! Contract section 2 and the exit event: detaching, `O_EXCL`, the tracer
//! dying, `SIGKILL` and `SIGCONT` on a held tracee, `waitpid`, and what a
//! session looks like after its tracee exited.

use alloc::format;
use alloc::string::String;

use rt::ensure;
use rt::process::{now_ms, sleep_ms, waitpid};
use rt::test::{expect_eq, expect_errno, expect_exit, expect_killed, Ctx};
use syscall::error::ESRCH;
use syscall::flag::{
    wifstopped, WaitFlags, O_EXCL, O_NONBLOCK, SIGCHLD, SIGCONT, SIGKILL, SIGSTOP,
};
use tracer::{
    Tracer, PTRACE_CONT, PTRACE_EVENT_CLONE, PTRACE_SINGLESTEP, PTRACE_STOP_EXIT,
    PTRACE_STOP_SIGNAL, PTRACE_SYSCALL, PTRACE_WAIT,
};

use crate::open::CounterThread;
use testkit::*;

/// A tracee blocked on `gate`: it passes it `passes` times, then exits
/// with `code`.
fn gated(gate: &Gate, passes: usize, code: i32) -> Result<Kid, String> {
    let g = gate.rd;
    let kid = Kid::spawn(move || {
        let mut b = [0u8; 1];
        for _ in 0..passes {
            let _ = rt::io::read(g, &mut b);
        }
        code
    })?;
    wait_for_state(kid.pid, "blocked", 2000)?;
    Ok(kid)
}

/// Polls until `pid` is neither held nor traced.
fn wait_released(pid: usize, timeout_ms: u64) -> Check {
    let deadline = now_ms() + timeout_ms;
    loop {
        let (state, tracer) = state_of(pid)?;
        if state != "held" && tracer == 0 {
            return Ok(());
        }
        ensure!(
            now_ms() < deadline,
            "pid {} still state={} tracer={} after {} ms",
            pid,
            state,
            tracer,
            timeout_ms
        );
        let _ = sleep_ms(1);
    }
}

/// The exit event carries the wait status; once read, writes are `ESRCH`;
/// the parent still reaps the child with the same status.
pub fn exit_event_and_reap() -> Check {
    let gate = Gate::new()?;
    let mut kid = gated(&gate, 1, 42)?;
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    gate.open()?;
    expect_eq(
        "PTRACE_CONT until the tracee exits",
        op(t.fd(), PTRACE_CONT),
        Ok(0),
    )?;
    expect_eq(
        "PTRACE_WAIT with the exit event unread",
        op(t.fd(), PTRACE_WAIT),
        Ok(0),
    )?;
    let got = events(t.fd())?;
    expect_eq("events after exit", got.len(), 1)?;
    let exit = got[0];
    expect_eq("event cause", exit.cause, PTRACE_STOP_EXIT)?;
    expect_exit("wait status in the exit event", exit.a, 42)?;
    for code in [PTRACE_CONT, PTRACE_WAIT, PTRACE_SYSCALL, PTRACE_SINGLESTEP] {
        expect_errno(
            &format!("op {code:#x} after the exit event was read"),
            op(t.fd(), code),
            ESRCH,
        )?;
    }
    let mut buf = [0u8; 56];
    expect_eq(
        "read after the exit event",
        syscall::read(t.fd(), &mut buf).ctx("read trace")?,
        0,
    )?;
    let status = kid.wait(3000)?;
    expect_eq("waitpid status = exit event status", status, exit.a)
}

/// Closing the handle while the tracee is held (at a syscall stop, or at
/// the attach stop) lets it run on to a normal exit.
pub fn close_detaches() -> Check {
    let gate = Gate::new()?;
    let mut kid = gated(&gate, 2, 7)?;
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    gate.open()?;
    expect_eq("PTRACE_SYSCALL", op(t.fd(), PTRACE_SYSCALL), Ok(1))?;
    expect_held_by(kid.pid, me())?;
    drop(t);
    wait_released(kid.pid, 2000).map_err(|e| format!("after closing at a syscall stop: {e}"))?;
    gate.open()?;
    let status = kid.wait(3000)?;
    expect_exit("tracee detached at a syscall stop", status, 7)?;

    let gate = Gate::new()?;
    let mut kid = gated(&gate, 1, 8)?;
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    gate.open()?;
    let _ = sleep_ms(30);
    expect_held_by(kid.pid, me()).map_err(|e| format!("released but attached: {e}"))?;
    drop(t);
    let status = kid.wait(3000)?;
    expect_exit("tracee detached at the attach stop", status, 8)
}

/// With `O_EXCL`, closing the handle kills the tracee with `SIGKILL`,
/// held or not.
pub fn excl_close_kills() -> Check {
    let mut kid = Kid::spawn(|| nap_forever())?;
    let t = Tracer::attach_flags(kid.pid, O_EXCL).ctx("attach O_EXCL")?;
    expect_eq("PTRACE_SYSCALL", op(t.fd(), PTRACE_SYSCALL), Ok(1))?;
    drop(t);
    let status = kid.wait(3000)?;
    expect_killed(
        "held tracee after closing an O_EXCL handle",
        status,
        SIGKILL,
    )?;

    let gate = Gate::new()?;
    let mut kid = gated(&gate, 1, 0)?;
    let t = Tracer::attach_flags(kid.pid, O_EXCL | O_NONBLOCK).ctx("attach O_EXCL")?;
    expect_eq(
        "non-blocking PTRACE_SYSCALL",
        op(t.fd(), PTRACE_SYSCALL),
        Ok(1),
    )?;
    drop(t);
    let status = kid.wait(3000)?;
    expect_killed(
        "running (blocked) tracee after closing an O_EXCL handle",
        status,
        SIGKILL,
    )
}

/// A separate tracer process attaches (with `flags`) to a napping tracee,
/// brings it to a syscall stop and is then killed. Returns the tracee's
/// wait status; `release` (write end of a non-blocking pipe the tracee
/// polls) tells a surviving tracee to exit 9.
fn kill_the_tracer(flags: usize) -> Result<usize, String> {
    let (rd, wr) = rt::io::pipe(O_NONBLOCK).ctx("pipe")?;
    let result = (|| {
        let mut tracee = Kid::spawn(move || loop {
            let _ = sleep_ms(2);
            let mut b = [0u8; 1];
            if let Ok(1) = syscall::read(rd, &mut b) {
                return 9;
            }
        })?;
        let tpid = tracee.pid;
        let ready = Gate::new()?;
        let ready_wr = ready.wr;
        let mut tracer_proc = Kid::spawn(move || {
            let Ok(t) = Tracer::attach_flags(tpid, flags) else {
                return 2;
            };
            if op(t.fd(), PTRACE_SYSCALL) != Ok(1) {
                return 3;
            }
            let _ = rt::io::write_all(ready_wr, b"r");
            loop {
                let _ = sleep_ms(1000);
            }
        })?;
        ensure!(ready.pass() == b'r', "the tracer process never attached");
        expect_held_by(tpid, tracer_proc.pid)?;
        syscall::kill(tracer_proc.pid, SIGKILL).ctx("kill the tracer")?;
        let status = tracer_proc.wait(3000)?;
        expect_killed("tracer process", status, SIGKILL)?;
        if flags & O_EXCL == 0 {
            wait_released(tpid, 2000)?;
            rt::io::write_all(wr, b"q").ctx("write pipe")?;
        }
        tracee.wait(3000)
    })();
    let _ = syscall::close(rd);
    let _ = syscall::close(wr);
    result
}

/// A tracer killed while its tracee is held: the tracee is released and
/// runs on to a normal exit; with `O_EXCL` the tracee dies with it.
pub fn tracer_death_releases() -> Check {
    let status = kill_the_tracer(0)?;
    expect_exit("tracee of the killed tracer", status, 9)?;
    let status = kill_the_tracer(O_EXCL)?;
    expect_killed("tracee of the killed O_EXCL tracer", status, SIGKILL)
}

/// A tracee that forks a child (exiting 5), reaps it, and exits with 10 +
/// the child's exit code (or 99 if the child did not exit normally).
fn forking_tracee(gate: &Gate) -> Result<Kid, String> {
    let g = gate.rd;
    let kid = Kid::spawn(move || {
        let mut b = [0u8; 1];
        let _ = rt::io::read(g, &mut b);
        let Ok(child) = rt::process::fork_with(|| 5) else {
            return 98;
        };
        match rt::process::wait(child) {
            Ok(s) if syscall::flag::wifexited(s) => 10 + syscall::flag::wexitstatus(s) as i32,
            _ => 99,
        }
    })?;
    wait_for_state(kid.pid, "blocked", 2000)?;
    Ok(kid)
}

/// Runs a traced [`forking_tracee`] to its clone event; returns the clone
/// child's pid, held for us.
fn to_clone_event(t: &Tracer, gate: &Gate) -> Result<usize, String> {
    gate.open()?;
    expect_eq(
        "PTRACE_CONT until the clone event",
        op(t.fd(), PTRACE_CONT),
        Ok(0),
    )?;
    let got = events(t.fd())?;
    expect_eq("events", got.len(), 1)?;
    expect_eq("event cause", got[0].cause, PTRACE_EVENT_CLONE)?;
    let child = got[0].a;
    let (state, _) = state_of(child)?;
    expect_eq(
        "state of the clone child before release",
        state.as_str(),
        "held",
    )?;
    Ok(child)
}

/// Closing the handle releases a clone child held for the tracer.
pub fn close_releases_clone_child() -> Check {
    let gate = Gate::new()?;
    let mut kid = forking_tracee(&gate)?;
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    to_clone_event(&t, &gate)?;
    drop(t);
    let status = kid.wait(3000)?;
    expect_exit("tracee (10 + its released child's code)", status, 15)
}

/// A write after the clone event was read releases the child (step 2).
pub fn write_releases_clone_child() -> Check {
    let gate = Gate::new()?;
    let mut kid = forking_tracee(&gate)?;
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    to_clone_event(&t, &gate)?;
    // The released child exits, the tracee reaps it (a SIGCHLD signal
    // event may come first) and exits: the loop ends at the exit event.
    let mut exit = None;
    for _ in 0..10 {
        expect_eq(
            "PTRACE_WAIT after reading the clone event",
            op(t.fd(), PTRACE_WAIT),
            Ok(0),
        )?;
        for e in events(t.fd())? {
            match e.cause {
                PTRACE_STOP_EXIT => exit = Some(e.a),
                PTRACE_STOP_SIGNAL if e.a == SIGCHLD => {}
                _ => return Err(format!("unexpected event {e:?}")),
            }
        }
        if exit.is_some() {
            break;
        }
    }
    let exit = exit.ok_or("no exit event: the clone child was not released")?;
    expect_exit("exit event (10 + the released child's code)", exit, 15)?;
    let status = kid.wait(3000)?;
    expect_exit("tracee", status, 15)
}

/// `SIGKILL` ends a held tracee at once (no operation needed), and the
/// exit event says so.
pub fn sigkill_held_tracee() -> Check {
    let mut kid = Kid::spawn(|| nap_forever())?;
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    expect_eq("PTRACE_SYSCALL", op(t.fd(), PTRACE_SYSCALL), Ok(1))?;
    expect_held_by(kid.pid, me())?;
    syscall::kill(kid.pid, SIGKILL).ctx("kill")?;
    let status = kid.wait(3000)?;
    expect_killed("held tracee after SIGKILL", status, SIGKILL)?;
    let got = events(t.fd())?;
    expect_eq("events after SIGKILL", got.len(), 1)?;
    expect_eq("event cause", got[0].cause, PTRACE_STOP_EXIT)?;
    expect_eq("exit event status = waitpid status", got[0].a, status)?;
    expect_errno(
        "PTRACE_WAIT after the exit event",
        op(t.fd(), PTRACE_WAIT),
        ESRCH,
    )?;
    drop(t);

    // Held at the attach stop, blocked in the kernel: the same.
    let gate = Gate::new()?;
    let mut kid = gated(&gate, 1, 0)?;
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    syscall::kill(kid.pid, SIGKILL).ctx("kill")?;
    let status = kid.wait(3000)?;
    expect_killed(
        "tracee held at the attach stop after SIGKILL",
        status,
        SIGKILL,
    )?;
    drop(t);
    Ok(())
}

/// `SIGCONT` does not resume a held tracee.
pub fn sigcont_does_not_resume() -> Check {
    let thread = CounterThread::start()?;
    let t = Tracer::attach(thread.pid).ctx("attach")?;
    let stop = stop_of(thread.pid)?;
    let frozen = thread.count();
    syscall::kill(thread.pid, SIGCONT).ctx("kill SIGCONT")?;
    let _ = sleep_ms(60);
    expect_eq("counter after SIGCONT", thread.count(), frozen)?;
    expect_held_by(thread.pid, me())?;
    expect_eq("stop after SIGCONT", stop_of(thread.pid)?, stop)?;
    drop(t);
    ensure!(
        thread.moves_within(1000),
        "counter still frozen after detaching"
    );
    Ok(())
}

/// A job-stopped process that is then attached: `SIGCONT` ends the
/// job-control stop but it stays held until the tracer lets it go.
pub fn sigcont_job_stopped_held() -> Check {
    let kid = Kid::spawn(|| {
        let _ = syscall::kill(me(), SIGSTOP);
        nap_forever()
    })?;
    let (_, status) = waitpid(kid.pid, WaitFlags::WUNTRACED).ctx("waitpid WUNTRACED")?;
    ensure!(
        wifstopped(status),
        "child not reported stopped: {}",
        rt::process::describe(status)
    );
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    let stop = stop_of(kid.pid)?;
    let regs = regs_of(kid.pid)?;
    syscall::kill(kid.pid, SIGCONT).ctx("kill SIGCONT")?;
    let _ = sleep_ms(60);
    expect_held_by(kid.pid, me()).map_err(|e| format!("after SIGCONT: {e}"))?;
    expect_eq("stop after SIGCONT", stop_of(kid.pid)?, stop)?;
    expect_eq("regs/int after SIGCONT", regs_of(kid.pid)?, regs)?;
    drop(t);
    // Detached, and the job-control stop is over: it runs.
    let deadline = now_ms() + 2000;
    loop {
        let (state, tracer) = state_of(kid.pid)?;
        if (state == "running" || state == "blocked") && tracer == 0 {
            return Ok(());
        }
        ensure!(
            now_ms() < deadline,
            "after detaching: state={} tracer={}",
            state,
            tracer
        );
        let _ = sleep_ms(1);
    }
}

/// `waitpid(WUNTRACED | WNOHANG)` does not report a ptrace stop (while it
/// does report a job-control stop).
pub fn waitpid_ignores_ptrace_stop() -> Check {
    let flags = WaitFlags::WUNTRACED | WaitFlags::WNOHANG;
    // Control: a job-control stop is reported.
    let stopper = Kid::spawn(|| {
        let _ = syscall::kill(me(), SIGSTOP);
        0
    })?;
    let (_, status) = waitpid(stopper.pid, WaitFlags::WUNTRACED).ctx("waitpid WUNTRACED")?;
    ensure!(
        wifstopped(status),
        "control: a SIGSTOPped child was not reported stopped: {}",
        rt::process::describe(status)
    );
    drop(stopper);

    let mut kid = Kid::spawn(|| nap_forever())?;
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    expect_eq(
        "waitpid at the attach stop",
        waitpid(kid.pid, flags).ctx("waitpid")?.0,
        0,
    )?;
    expect_eq("PTRACE_SYSCALL", op(t.fd(), PTRACE_SYSCALL), Ok(1))?;
    expect_held_by(kid.pid, me())?;
    expect_eq(
        "waitpid at a syscall stop",
        waitpid(kid.pid, flags).ctx("waitpid")?.0,
        0,
    )?;
    drop(t);
    syscall::kill(kid.pid, SIGKILL).ctx("kill")?;
    let status = kid.wait(3000)?;
    expect_killed("child", status, SIGKILL)
}
