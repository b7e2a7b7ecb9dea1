//! Changing syscalls at their stops: `PTRACE_SYSEMU` skips a call (the
//! tracer's `rax` is its result, no exit stop), a changed number or changed
//! arguments at entry change what runs, a changed `rax` at exit changes the
//! result the tracee sees.

use rt::ensure;
use rt::test::Ctx;
use syscall::error::EAGAIN;
use syscall::flag::O_NONBLOCK;
use syscall::number::*;
use tracer::{
    PTRACE_STOP_POST_SYSCALL as POST, PTRACE_STOP_PRE_SYSCALL as PRE, PTRACE_SYSCALL, PTRACE_SYSEMU,
};

use testkit::*;

/// A tracee that calls getpid and reports what it got through `wr`.
fn getpid_reporter(wr: usize) -> impl FnOnce(usize) -> i32 {
    move |_| {
        let got = match syscall::getpid() {
            Ok(v) => v,
            Err(e) => (-(e.errno as isize)) as usize,
        };
        report_word(wr, got);
        0
    }
}

/// Follows the tracee after the report write to its exit.
fn finish_after_report(t: &mut tracer::Tracer, kid: &mut Kid) -> Check {
    let s = next_stop(t, PTRACE_SYSCALL)?;
    expect_sys("report write exit", &s, POST, SYS_WRITE)?;
    let s = next_stop(t, PTRACE_SYSCALL)?;
    expect_sys("then", &s, PRE, SYS_EXIT)?;
    let (status, events) = run_to_exit(t, PTRACE_SYSCALL)?;
    ensure!(events.is_empty(), "events: {}", fmt_events(&events));
    expect_exited("exit event", status, 0)?;
    expect_exited("waitpid", kid.reap()?, 0)
}

/// `PTRACE_SYSCALL|PTRACE_SYSEMU` at getpid's entry: the call does not run,
/// the tracee gets the tracer's rax (1234), and the next stop is the next
/// call's entry.
pub fn skip_getpid() -> Check {
    let (rd, wr) = pipe()?;
    let mut kid = fork_stopped(getpid_reporter(wr))?;
    let _ = syscall::close(wr);
    let mut t = handshake(&kid)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("stop", &s, PRE, SYS_GETPID)?;
    let mut r = t.regs().ctx("regs/int")?;
    r.rax = 1234;
    t.set_regs(&r).ctx("write regs/int")?;
    let s = next_stop(&mut t, PTRACE_SYSCALL | PTRACE_SYSEMU)?;
    expect_sys("stop after the skipped getpid", &s, PRE, SYS_WRITE)?;
    expect_args("report write", &s, &[wr])?;
    finish_after_report(&mut t, &mut kid)?;
    drop(t);
    let words = read_words(rd)?;
    ensure!(
        words == [1234],
        "the tracee's getpid returned {:?}, expected [1234]",
        words
    );
    Ok(())
}

/// Changing rax from getpid to getppid at the entry stop runs getppid: the
/// exit stop names it and the tracee gets its parent's pid.
pub fn change_number() -> Check {
    let (rd, wr) = pipe()?;
    let mut kid = fork_stopped(getpid_reporter(wr))?;
    let _ = syscall::close(wr);
    let me = syscall::getpid().ctx("getpid")?;
    let mut t = handshake(&kid)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("stop", &s, PRE, SYS_GETPID)?;
    let mut r = t.regs().ctx("regs/int")?;
    r.rax = SYS_GETPPID;
    t.set_regs(&r).ctx("write regs/int")?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("exit stop of the changed call", &s, POST, SYS_GETPPID)?;
    expect_ret("getppid", &s, me)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("then", &s, PRE, SYS_WRITE)?;
    finish_after_report(&mut t, &mut kid)?;
    drop(t);
    let words = read_words(rd)?;
    ensure!(
        words == [me],
        "the tracee's getpid returned {:?}, expected its parent's pid [{}] (child pid {})",
        words,
        me,
        kid.pid
    );
    Ok(())
}

/// `write(a, "AAAA", 4)` becomes `write(b, "AA", 2)` when the tracer changes
/// rdi and rdx at the entry stop.
pub fn change_write_args() -> Check {
    let (a_rd, a_wr) = pipe()?;
    let (b_rd, b_wr) = pipe()?;
    let mut kid = fork_stopped(move |_| match syscall::write(a_wr, b"AAAA") {
        Ok(n) => n as i32,
        Err(_) => 100,
    })?;
    let _ = syscall::close(a_wr);
    let _ = syscall::close(b_wr);
    let mut t = handshake(&kid)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("stop", &s, PRE, SYS_WRITE)?;
    expect_args("write entry", &s, &[a_wr, s.args[1] as usize, 4])?;
    let mut r = t.regs().ctx("regs/int")?;
    r.rdi = b_wr;
    r.rdx = 2;
    t.set_regs(&r).ctx("write regs/int")?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("exit stop", &s, POST, SYS_WRITE)?;
    expect_args("write exit (changed arguments)", &s, &[b_wr, r.rsi, 2])?;
    expect_ret("write", &s, 2)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("then", &s, PRE, SYS_EXIT)?;
    expect_args("exit (the write's result)", &s, &[2])?;
    let (status, _) = run_to_exit(&mut t, PTRACE_SYSCALL)?;
    expect_exited("exit event", status, 2)?;
    drop(t);
    expect_exited("waitpid", kid.reap()?, 2)?;
    let b = read_all(b_rd)?;
    ensure!(b == b"AA", "pipe b got {:?}, expected \"AA\"", b);
    let _ = syscall::fcntl(a_rd, syscall::flag::F_SETFL, O_NONBLOCK);
    let mut buf = [0u8; 8];
    let a = syscall::read(a_rd, &mut buf);
    let _ = syscall::close(a_rd);
    ensure!(
        matches!(a, Ok(0)) || matches!(a, Err(ref e) if e.errno == EAGAIN),
        "pipe a should be empty, read gave {}",
        rt::errno::describe_result(&a)
    );
    Ok(())
}

/// Changing rax at getpid's exit stop changes what the tracee gets.
pub fn change_result() -> Check {
    let (rd, wr) = pipe()?;
    let mut kid = fork_stopped(getpid_reporter(wr))?;
    let _ = syscall::close(wr);
    let mut t = handshake(&kid)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("stop", &s, PRE, SYS_GETPID)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("stop", &s, POST, SYS_GETPID)?;
    expect_ret("getpid", &s, kid.pid)?;
    let mut r = t.regs().ctx("regs/int")?;
    ensure!(
        r.rax == kid.pid,
        "rax at getpid exit {:#x}, expected {:#x}",
        r.rax,
        kid.pid
    );
    r.rax = 777;
    t.set_regs(&r).ctx("write regs/int")?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("then", &s, PRE, SYS_WRITE)?;
    finish_after_report(&mut t, &mut kid)?;
    drop(t);
    let words = read_words(rd)?;
    ensure!(
        words == [777],
        "the tracee's getpid returned {:?}, expected [777]",
        words
    );
    Ok(())
}
