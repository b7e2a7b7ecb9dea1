//! Clone events: the event carries the child's pid and the clone flags; the
//! child is held until the tracer attaches to it (then it is traced on its
//! own) or writes again (then it runs untraced and its parent reaps it);
//! for processes and for threads.

use rt::ensure;
use rt::test::Ctx;
use syscall::error::EAGAIN;
use syscall::flag::{O_CLOEXEC, O_NONBLOCK, SIGCHLD};
use syscall::number::*;
use tracer::{
    Tracer, PTRACE_CONT, PTRACE_EVENT_CLONE, PTRACE_STOP_POST_SYSCALL as POST,
    PTRACE_STOP_PRE_SYSCALL as PRE, PTRACE_STOP_SIGNAL, PTRACE_SYSCALL, PTRACE_WAIT,
};

use testkit::*;

/// What the grandchild exits with when it is a process.
const CHILD_CODE: usize = 3;

/// Body of the thread: writes "R" to the pipe `fd`.
fn thread_body(fd: usize) {
    let _ = syscall::write(fd, b"R");
}

/// Checks that nothing has been written to the non-blocking pipe `rd`.
fn expect_nothing(rd: usize, what: &str) -> Check {
    let mut b = [0u8; 4];
    let r = syscall::read(rd, &mut b);
    ensure!(
        matches!(r, Err(ref e) if e.errno == EAGAIN),
        "{}: the held child ran already (its pipe read gave {})",
        what,
        rt::errno::describe_result(&r)
    );
    Ok(())
}

/// The tracee's events after its child ran: at most the SIGCHLD of the
/// child's exit (default action: ignore, still reported).
fn expect_only_sigchld(events: &[tracer::PtraceEvent]) -> Check {
    ensure!(
        events.len() <= 1
            && events
                .iter()
                .all(|e| (e.cause, e.a, e.b) == (PTRACE_STOP_SIGNAL, SIGCHLD, 0)),
        "the tracee's events: expected at most signal(SIGCHLD), got {}",
        fmt_events(events)
    );
    Ok(())
}

/// The tracee creates a child (a process with `clone(0)`, or a thread) that
/// writes "R" to a pipe; it reports the child's pid and wait status, then
/// exits 0. With `attach`, the tracer attaches to the child and follows its
/// calls; without, it writes `PTRACE_WAIT` and the child runs untraced.
fn clone_case(thread: bool, attach: bool) -> Check {
    let (g_rd, g_wr) = rt::io::pipe(O_CLOEXEC | O_NONBLOCK).ctx("pipe2")?;
    let (rep_rd, rep_wr) = pipe()?;
    let mut kid = fork_stopped(move |_| {
        if thread {
            match rt::thread::spawn(16 * 1024, thread_body, g_wr) {
                Ok(handle) => {
                    report_word(rep_wr, handle.pid());
                    let status = handle.join().unwrap_or(usize::MAX);
                    report_word(rep_wr, status);
                }
                Err(_) => return 60,
            }
        } else {
            match rt::process::fork() {
                Ok(0) => {
                    let _ = syscall::write(g_wr, b"R");
                    rt::process::exit(CHILD_CODE);
                }
                Ok(pid) => {
                    report_word(rep_wr, pid);
                    let status = rt::process::wait(pid).unwrap_or(usize::MAX);
                    report_word(rep_wr, status);
                }
                Err(_) => return 61,
            }
        }
        0
    })?;
    let _ = syscall::close(g_wr);
    let _ = syscall::close(rep_wr);
    let mut t = handshake(&kid)?;

    let n = t.op(PTRACE_CONT).ctx("write PTRACE_CONT")?;
    ensure!(
        n == 0,
        "write PTRACE_CONT returned {}, expected 0 (the clone event)",
        n
    );
    let events = t.read_events().ctx("read events")?;
    let flags = if thread {
        rt::thread::thread_flags()
    } else {
        0
    };
    let child = events.first().map(|e| e.a).unwrap_or(0);
    expect_events(
        "clone event",
        &events,
        &[(PTRACE_EVENT_CLONE, child, flags)],
    )?;
    ensure!(
        child != 0 && child != kid.pid,
        "clone event child pid {}",
        child
    );

    // Held: it has not run, and its status says so, even a while later.
    expect_nothing(g_rd, "right after the event")?;
    let state = proc_state(child)?;
    ensure!(
        state == "held",
        "the new child's state={}, expected held",
        state
    );
    let _ = rt::process::sleep_ms(30);
    expect_nothing(g_rd, "30 ms after the event")?;

    if attach {
        let mut ct = Tracer::attach(child).ctx("attach to the clone child")?;
        let s = ct.stop().ctx("the child's stop")?;
        ensure!(s.cause == 0, "the child's attach stop: {}", fmt_stop(&s));
        let mut s = next_stop(&mut ct, PTRACE_SYSCALL)?;
        if s.cause == POST && s.nr == SYS_CLONE as u64 {
            // The child may first stop at the exit of its clone (result 0).
            expect_ret("the child's clone exit", &s, 0)?;
            s = next_stop(&mut ct, PTRACE_SYSCALL)?;
        }
        expect_sys("the child's first call", &s, PRE, SYS_WRITE)?;
        expect_args("the child's write", &s, &[g_wr, s.args[1] as usize, 1])?;
        expect_nothing(g_rd, "at the child's write entry")?;
        let s = next_stop(&mut ct, PTRACE_SYSCALL)?;
        expect_sys("the child's next stop", &s, POST, SYS_WRITE)?;
        expect_ret("the child's write", &s, 1)?;
        let s = next_stop(&mut ct, PTRACE_SYSCALL)?;
        expect_sys("the child's next stop", &s, PRE, SYS_EXIT)?;
        let (status, events) = run_to_exit(&mut ct, PTRACE_SYSCALL)?;
        ensure!(events.is_empty(), "child events: {}", fmt_events(&events));
        expect_exited(
            "the child's exit event",
            status,
            if thread { 0 } else { CHILD_CODE },
        )?;
        drop(ct);
        let (status, events) = run_to_exit(&mut t, PTRACE_WAIT)?;
        expect_only_sigchld(&events)?;
        expect_exited("the tracee's exit event", status, 0)?;
    } else {
        let (status, events) = run_to_exit(&mut t, PTRACE_WAIT)?;
        expect_only_sigchld(&events)?;
        expect_exited("the tracee's exit event", status, 0)?;
    }
    drop(t);
    expect_exited("waitpid", kid.reap()?, 0)?;

    let mut b = [0u8; 4];
    let r = syscall::read(g_rd, &mut b);
    let _ = syscall::close(g_rd);
    ensure!(
        matches!(r, Ok(1)) && b[0] == b'R',
        "the child should have written \"R\", read gave {}",
        rt::errno::describe_result(&r)
    );
    let report = read_words(rep_rd)?;
    ensure!(report.len() == 2, "tracee report {:?}", report);
    ensure!(
        report[0] == child,
        "clone returned {} in the tracee, the event said {}",
        report[0],
        child
    );
    expect_exited(
        "the tracee's wait for its child",
        report[1],
        if thread { 0 } else { CHILD_CODE },
    )
}

pub fn process_untraced() -> Check {
    clone_case(false, false)
}

pub fn process_attached() -> Check {
    clone_case(false, true)
}

pub fn thread_untraced() -> Check {
    clone_case(true, false)
}

pub fn thread_attached() -> Check {
    clone_case(true, true)
}
