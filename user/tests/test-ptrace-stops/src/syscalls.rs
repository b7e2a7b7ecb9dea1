//! Syscall stops (contract sections 3, 4, 4a): entry and exit alternate with
//! the right `StopInfo`, the handshake, handlers running inside a call,
//! `exit` and `fexec`, which have no normal return.

use core::sync::atomic::{AtomicUsize, Ordering};

use rt::ensure;
use rt::test::Ctx;
use syscall::error::EINTR;
use syscall::flag::{
    wifstopped, wstopsig, WaitFlags, O_CLOEXEC, O_EXCL, O_RDONLY, SIGCONT, SIGSTOP, SIGUSR1,
};
use syscall::number::*;
use tracer::{
    Stopped, Tracer, PTRACE_CONT, PTRACE_STOP_POST_SYSCALL as POST, PTRACE_STOP_PRE_SYSCALL as PRE,
    PTRACE_STOP_SIGNAL, PTRACE_SYSCALL,
};

use testkit::*;

/// The path of this program, which `fexec` runs again in `--exec-child` mode.
pub const SELF_PATH: &str = "/bin/test-ptrace-stops";
/// What the `--exec-child` mode exits with.
pub const EXEC_CHILD_CODE: usize = 5;

static MESSAGE: [u8; 5] = *b"hello";
/// Values for the arguments `write` ignores, so all six can be checked.
const EXTRA: [usize; 3] = [0x1111_2222_3333, 0x4444_5555_6666, 0x7777_8888_9999];

/// Where the handlers below write.
static HANDLER_FD: AtomicUsize = AtomicUsize::new(usize::MAX);

/// A SIGUSR1 handler that makes two syscalls: getpid, then write("H").
extern "C" fn on_usr1_two_calls(_sig: usize) {
    let _ = syscall::getpid();
    let _ = syscall::write(HANDLER_FD.load(Ordering::SeqCst), b"H");
}

/// A SIGUSR1 handler that makes one syscall: getpid.
extern "C" fn on_usr1_getpid(_sig: usize) {
    let _ = syscall::getpid();
}

/// `write(fd, "hello", 5)` with all six argument registers set, then
/// getpid, then exit 7: every stop alternates entry/exit with the right
/// number, arguments, result and registers.
pub fn alternate() -> Check {
    let (rd, wr) = pipe()?;
    let msg = MESSAGE.as_ptr() as usize;
    let mut kid = fork_stopped(move |_| {
        // SAFETY: write reads `len` bytes of a live static and ignores its
        // last three arguments.
        let n = unsafe { raw6(SYS_WRITE, [wr, msg, 5, EXTRA[0], EXTRA[1], EXTRA[2]]) };
        let _ = syscall::getpid();
        if n == 5 {
            7
        } else {
            20
        }
    })?;
    let _ = syscall::close(wr);
    let mut t = handshake(&kid)?;

    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("1st stop", &s, PRE, SYS_WRITE)?;
    expect_args(
        "write entry",
        &s,
        &[wr, msg, 5, EXTRA[0], EXTRA[1], EXTRA[2]],
    )?;
    let r = t.regs().ctx("read regs/int at write entry")?;
    let want = [SYS_WRITE, wr, msg, 5, EXTRA[0], EXTRA[1], EXTRA[2]];
    let got = [r.rax, r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9];
    ensure!(
        got == want,
        "regs/int at write entry: rax rdi rsi rdx r10 r8 r9 expected {:x?}, got {:x?}",
        want,
        got
    );
    ensure!(
        r.rip as u64 == s.addr,
        "write entry: stop addr {:#x} != rip {:#x}",
        s.addr,
        r.rip
    );

    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("2nd stop", &s, POST, SYS_WRITE)?;
    expect_args(
        "write exit",
        &s,
        &[wr, msg, 5, EXTRA[0], EXTRA[1], EXTRA[2]],
    )?;
    expect_ret("write exit", &s, 5)?;
    let r = t.regs().ctx("read regs/int at write exit")?;
    ensure!(
        r.rax == 5,
        "regs/int at write exit: rax {:#x}, expected 5",
        r.rax
    );

    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("3rd stop", &s, PRE, SYS_GETPID)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("4th stop", &s, POST, SYS_GETPID)?;
    expect_ret("getpid exit", &s, kid.pid)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("5th stop", &s, PRE, SYS_EXIT)?;
    expect_args("exit entry", &s, &[7])?;
    let (status, events) = run_to_exit(&mut t, PTRACE_SYSCALL)?;
    ensure!(
        events.is_empty(),
        "events before exit: {}",
        fmt_events(&events)
    );
    expect_exited("exit event", status, 7)?;
    drop(t);
    let data = read_all(rd)?;
    ensure!(data == b"hello", "pipe got {:?}, expected \"hello\"", data);
    expect_exited("waitpid", kid.reap()?, 7)
}

/// 4a's handshake in detail: attach stop (cause 0, addr = rip), SIGCONT does
/// not resume a held tracee, the first `PTRACE_SYSCALL` stop is the exit of
/// the `kill(getpid(), SIGSTOP)`, and SIGCONT is a signal event.
pub fn handshake_detail() -> Check {
    let mut kid = fork_stopped(|_| 0)?;
    let (_, status) =
        rt::process::waitpid(kid.pid, WaitFlags::WUNTRACED).ctx("waitpid(WUNTRACED)")?;
    ensure!(
        wifstopped(status) && wstopsig(status) == SIGSTOP,
        "waitpid: expected stopped by SIGSTOP, got {}",
        fmt_status(status)
    );
    let mut t = Tracer::attach_flags(kid.pid, O_EXCL).ctx("attach")?;
    let s = t.stop().ctx("read stop at the attach stop")?;
    let r = t.regs().ctx("read regs/int at the attach stop")?;
    ensure!(
        s.cause == 0 && s.addr == r.rip as u64,
        "attach stop: expected cause 0 and addr = rip {:#x}, got {}",
        r.rip,
        fmt_stop(&s)
    );
    syscall::kill(kid.pid, SIGCONT).ctx("kill SIGCONT")?;
    let _ = rt::process::sleep_ms(20);
    let state = proc_state(kid.pid)?;
    ensure!(
        state == "held",
        "after SIGCONT the tracee should still be held, status says state={}",
        state
    );
    let (stopped, events) = resume_ev(&mut t, PTRACE_SYSCALL)?;
    let s = reached("first PTRACE_SYSCALL", stopped)?;
    expect_sys("first stop", &s, POST, SYS_KILL)?;
    expect_args("kill exit", &s, &[kid.pid, SIGSTOP])?;
    expect_ret("kill exit", &s, 0)?;
    expect_events("SIGCONT", &events, &[(PTRACE_STOP_SIGNAL, SIGCONT, 0)])?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("second stop", &s, PRE, SYS_EXIT)?;
    let (status, events) = run_to_exit(&mut t, PTRACE_CONT)?;
    ensure!(events.is_empty(), "events: {}", fmt_events(&events));
    expect_exited("exit event", status, 0)?;
    drop(t);
    expect_exited("waitpid", kid.reap()?, 0)
}

/// A handler that makes syscalls runs inside `kill(getpid(), SIGUSR1)`:
/// kill entry, the handler's calls, sigreturn entry (no exit), then the
/// kill exit stop (nr = kill, ret 0).
pub fn handler_inside_kill() -> Check {
    let (rd, wr) = pipe()?;
    let handler = on_usr1_two_calls as *const () as usize;
    let mut kid = fork_prepared(
        || {
            HANDLER_FD.store(wr, Ordering::SeqCst);
            set_disposition(SIGUSR1, handler).is_ok()
        },
        |me| match syscall::kill(me, SIGUSR1) {
            Ok(0) => 0,
            _ => 31,
        },
    )?;
    let _ = syscall::close(wr);
    let mut t = handshake(&kid)?;
    let (trace, status) = trace_to_exit(&mut t, 40)?;
    expect_trace(
        "stops",
        &trace,
        &[
            (PRE, SYS_KILL),
            (PRE, SYS_GETPID),
            (POST, SYS_GETPID),
            (PRE, SYS_WRITE),
            (POST, SYS_WRITE),
            (PRE, SYS_SIGRETURN),
            (POST, SYS_KILL),
            (PRE, SYS_EXIT),
        ],
    )?;
    expect_args("kill entry", &trace[0].stop, &[kid.pid, SIGUSR1])?;
    expect_ret("handler's getpid", &trace[2].stop, kid.pid)?;
    expect_ret("handler's write", &trace[4].stop, 1)?;
    expect_args("kill exit", &trace[6].stop, &[kid.pid, SIGUSR1])?;
    expect_ret("kill exit", &trace[6].stop, 0)?;
    expect_events(
        "events before the handler",
        &trace[1].events,
        &[(PTRACE_STOP_SIGNAL, SIGUSR1, handler)],
    )?;
    for (i, step) in trace.iter().enumerate() {
        ensure!(
            i == 1 || step.events.is_empty(),
            "unexpected events {} before stop {}",
            fmt_events(&step.events),
            i
        );
    }
    expect_exited("exit event", status, 0)?;
    drop(t);
    let data = read_all(rd)?;
    ensure!(data == b"H", "handler wrote {:?}, expected \"H\"", data);
    expect_exited("waitpid", kid.reap()?, 0)
}

/// A `read` blocked on an empty pipe is interrupted by SIGUSR1 from another
/// process: the handler's stops and sigreturn come first, then the read's
/// exit stop with -EINTR.
pub fn blocking_read_eintr() -> Check {
    let (rd, wr) = pipe()?;
    let (go_rd, go_wr) = pipe()?;
    let handler = on_usr1_getpid as *const () as usize;
    let mut kid = fork_prepared(
        || {
            let _ = syscall::close(go_rd);
            let _ = syscall::close(go_wr);
            set_disposition(SIGUSR1, handler).is_ok()
        },
        move |_| {
            let mut buf = [0u8; 8];
            // `wr` stays open here, so the read blocks until a signal.
            match syscall::read(rd, &mut buf) {
                Err(e) if e.errno == EINTR => 0,
                _ => 40,
            }
        },
    )?;
    // The sender waits for the go byte (sent at the read's entry stop),
    // then for the read to block, then sends SIGUSR1.
    let pid = kid.pid;
    let sender = rt::process::fork_with(move || {
        let _ = syscall::close(go_wr);
        let mut b = [0u8; 1];
        if !matches!(syscall::read(go_rd, &mut b), Ok(1)) {
            return 2;
        }
        for _ in 0..2500 {
            if proc_state(pid).as_deref() == Ok("blocked") {
                return if syscall::kill(pid, SIGUSR1).is_ok() {
                    0
                } else {
                    3
                };
            }
            let _ = rt::process::sleep_ms(2);
        }
        1
    })
    .ctx("fork the sender")?;
    let mut sender = Kid::new(sender);
    let _ = syscall::close(go_rd);
    let _ = syscall::close(wr);
    let _ = syscall::close(rd);
    let mut t = handshake(&kid)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("first stop", &s, PRE, SYS_READ)?;
    syscall::write(go_wr, b"g").ctx("start the sender")?;
    let _ = syscall::close(go_wr);
    let (trace, status) = trace_to_exit(&mut t, 40)?;
    expect_trace(
        "stops after the read entry",
        &trace,
        &[
            (PRE, SYS_GETPID),
            (POST, SYS_GETPID),
            (PRE, SYS_SIGRETURN),
            (POST, SYS_READ),
            (PRE, SYS_EXIT),
        ],
    )?;
    expect_events(
        "events before the handler",
        &trace[0].events,
        &[(PTRACE_STOP_SIGNAL, SIGUSR1, handler)],
    )?;
    expect_ret("read exit", &trace[3].stop, (-(EINTR as isize)) as usize)?;
    expect_args("read exit", &trace[3].stop, &[s.args[0] as usize])?;
    expect_exited("exit event (0: the tracee saw EINTR)", status, 0)?;
    drop(t);
    expect_exited("sender", sender.reap()?, 0)?;
    expect_exited("waitpid", kid.reap()?, 0)
}

/// `exit` has an entry stop and then only the exit event.
pub fn exit_entry_only() -> Check {
    let mut kid = fork_stopped(|_| 42)?;
    let mut t = handshake(&kid)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("stop", &s, PRE, SYS_EXIT)?;
    expect_args("exit entry", &s, &[42])?;
    let (stopped, events) = resume_ev(&mut t, PTRACE_SYSCALL)?;
    match stopped {
        Stopped::Exited(status) => expect_exited("exit event", status, 42)?,
        other => {
            return Err(alloc::format!(
                "after the exit entry stop: expected the exit event, got {}",
                fmt_stopped(&other)
            ))
        }
    }
    ensure!(
        events.len() == 1,
        "expected only the exit event, got {}",
        fmt_events(&events)
    );
    drop(t);
    expect_exited("waitpid", kid.reap()?, 42)
}

/// A successful `fexec` has an exit stop with result 0 in the new program
/// (rip = its ELF entry, its argv on the stack), and the session goes on
/// there.
pub fn fexec_exit_stop() -> Check {
    let entry = elf_entry(SELF_PATH)?;
    let fd = syscall::open(SELF_PATH, O_RDONLY | O_CLOEXEC).ctx("open self")?;
    let mut kid = fork_stopped(move |_| {
        let err = rt::process::fexec_fd(fd, &[SELF_PATH, "--exec-child"], &[]);
        let _ = err;
        50
    })?;
    let _ = syscall::close(fd);
    let mut t = handshake(&kid)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("entry", &s, PRE, SYS_FEXEC)?;
    expect_args("fexec entry", &s, &[fd])?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("exit", &s, POST, SYS_FEXEC)?;
    expect_ret("fexec exit", &s, 0)?;
    ensure!(
        s.addr == entry,
        "fexec exit stop: addr {:#x}, expected the ELF entry {:#x}",
        s.addr,
        entry
    );
    let r = t.regs().ctx("regs/int at the fexec exit stop")?;
    ensure!(
        r.rip as u64 == entry && r.rax == 0,
        "fexec exit stop: rip {:#x} rax {:#x}, expected rip = entry {:#x}, rax 0",
        r.rip,
        r.rax,
        entry
    );
    // The new image's initial stack: argc, argv[0], argv[1].
    let argc = t.read_u64(r.rsp as u64).ctx("read argc")?;
    ensure!(argc == 2, "new program's argc {}, expected 2", argc);
    let argv1 = t.read_u64(r.rsp as u64 + 16).ctx("read argv[1]")?;
    let arg = t.read_cstr(argv1, 64).ctx("read argv[1] string")?;
    ensure!(
        arg == b"--exec-child",
        "new program's argv[1] {:?}, expected \"--exec-child\"",
        alloc::string::String::from_utf8_lossy(&arg)
    );
    // The session survives: the new program's calls stop too.
    let (trace, status) = trace_to_exit(&mut t, 40)?;
    expect_trace(
        "stops in the new program",
        &trace,
        &[(PRE, SYS_GETPID), (POST, SYS_GETPID), (PRE, SYS_EXIT)],
    )?;
    expect_ret("getpid in the new program", &trace[1].stop, kid.pid)?;
    expect_exited("exit event", status, EXEC_CHILD_CODE)?;
    drop(t);
    expect_exited("waitpid", kid.reap()?, EXEC_CHILD_CODE)
}
