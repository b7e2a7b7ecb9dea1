//! Hostile input the kernel must survive with a clean error: an event
//! queue watching itself, handlers outside user space, more processes than
//! the kernel has room for, many blocked readers asking for huge reads, a
//! tracer that never reads its events, x87 exceptions, and the two-byte
//! `int 3` under a tracer.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use rt::test::{expect_errno, expect_exit, expect_killed, Ctx, Tests};
use syscall::data::Event;
use syscall::error::{EAGAIN, EFAULT, EINVAL, ENOMEM};
use syscall::flag::{
    EventFlags, WaitFlags, O_RDWR, SIGCONT, SIGFPE, SIGSTOP, SIGTRAP, SIGUSR1, SIG_IGN,
};
use tracer::{Tracer, PTRACE_CONT, PTRACE_STOP_SIGNAL};

rt::entry!(main);

fn event_queue_cannot_watch_itself() -> Result<(), String> {
    let queue = syscall::open("event:", O_RDWR).ctx("open event:")?;
    let other = syscall::open("event:", O_RDWR).ctx("open event:")?;
    let mut result = Ok(());
    for target in [queue, other] {
        let event = Event {
            id: target,
            flags: EventFlags::EVENT_READ,
            data: 0,
        };
        let r = syscall::write(queue, &event);
        result = result.and(expect_errno(
            "registering an event queue in a queue",
            r,
            EINVAL,
        ));
    }
    let _ = syscall::close(other);
    let _ = syscall::close(queue);
    result
}

fn handler_outside_user_space_efault() -> Result<(), String> {
    for address in [0x0000_8000_0000_0000usize, 0xffff_ffff_8000_0000] {
        // SAFETY: never called: the kernel must refuse it as a handler.
        let handler: extern "C" fn(usize) = unsafe { core::mem::transmute(address) };
        let action = syscall::SigAction {
            sa_handler: Some(handler),
            ..Default::default()
        };
        let r = syscall::sigaction(SIGUSR1, Some(&action), None);
        expect_errno(&format!("sigaction with handler {address:#x}"), r, EFAULT)?;
    }
    Ok(())
}

/// Forks until the kernel says no: it must be EAGAIN or ENOMEM, not a
/// crash, and everything exits and is reaped afterwards. The children wait
/// on a pipe, so none of them ends before the refusal.
fn fork_until_refused() -> Result<(), String> {
    let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
    let mut children = Vec::new();
    let refusal = loop {
        match rt::process::fork_with(|| {
            let _ = syscall::close(wr);
            let mut b = [0u8; 1];
            let _ = syscall::read(rd, &mut b);
            0
        }) {
            Ok(pid) => children.push(pid),
            Err(e) => break e,
        }
        if children.len() > 4096 {
            break syscall::Error::new(0);
        }
    };
    let _ = syscall::close(wr);
    let _ = syscall::close(rd);
    for &pid in &children {
        let status = rt::process::wait(pid).ctx("reaping a child")?;
        expect_exit("a child", status, 0)?;
    }
    if refusal.errno != EAGAIN && refusal.errno != ENOMEM {
        return Err(format!(
            "after {} children: expected EAGAIN or ENOMEM, got {:?}",
            children.len(),
            refusal
        ));
    }
    if children.len() < 16 {
        return Err(format!("only {} children before refusal", children.len()));
    }
    // And the kernel still forks once memory is back.
    let pid = rt::process::fork_with(|| 5).ctx("fork after recovery")?;
    let status = rt::process::wait(pid).ctx("wait")?;
    expect_exit("a child after recovery", status, 5)
}

/// Many threads blocked reading an empty pipe with 1 MiB buffers each.
fn blocked_readers_with_huge_buffers() -> Result<(), String> {
    let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
    let mut readers = Vec::new();
    for _ in 0..40 {
        let pid = rt::process::fork_with(|| {
            // Ask for 1 MiB (40 readers: more than the kernel heap) into a
            // 128 KiB buffer: the kernel moves at most 64 KiB per call.
            let _ = syscall::close(wr);
            let mut buf = [0u8; 128 * 1024];
            // SAFETY: read(2) into our own stack buffer; the kernel writes at
            // most 64 KiB of it.
            let r = unsafe {
                syscall::syscall3(
                    syscall::number::SYS_READ,
                    rd,
                    buf.as_mut_ptr() as usize,
                    1 << 20,
                )
            };
            core::hint::black_box(&mut buf);
            match r {
                Ok(0) => 0,
                _ => 1,
            }
        })
        .ctx("fork a reader")?;
        readers.push(pid);
    }
    let _ = syscall::close(rd);
    rt::process::sleep_ms(50).ctx("sleep")?;
    let _ = syscall::close(wr);
    for pid in readers {
        let status = rt::process::wait(pid).ctx("wait for a reader")?;
        expect_exit("a reader seeing end of file", status, 0)?;
    }
    Ok(())
}

/// A tracee sending itself ignored signals while its tracer does not read:
/// the kernel queues a bounded number of events and the tracee waits.
fn unread_events_are_bounded() -> Result<(), String> {
    let child = rt::process::fork_with(|| {
        let ignore: extern "C" fn(usize) =
            // SAFETY: SIG_IGN is the value 1 that redox_syscall stores as a handler.
            unsafe { core::mem::transmute(SIG_IGN) };
        let action = syscall::SigAction {
            sa_handler: Some(ignore),
            ..Default::default()
        };
        let _ = syscall::sigaction(SIGUSR1, Some(&action), None);
        let me = syscall::getpid().unwrap_or(0);
        let _ = syscall::kill(me, SIGSTOP);
        for _ in 0..5000 {
            let _ = syscall::kill(me, SIGUSR1);
        }
        0
    })
    .ctx("fork")?;
    rt::process::waitpid(child, WaitFlags::WUNTRACED).ctx("waitpid")?;
    let mut t = Tracer::attach(child).ctx("attach")?;
    syscall::kill(child, SIGCONT).ctx("SIGCONT")?;
    // Non-blocking: start the tracee and let it run without reading.
    t.op(PTRACE_CONT).ctx("PTRACE_CONT")?;
    rt::process::sleep_ms(300).ctx("sleep")?;
    let first = t.read_events().ctx("read events")?;
    let signals = first
        .iter()
        .filter(|e| e.cause == PTRACE_STOP_SIGNAL)
        .count();
    if signals > 2048 {
        return Err(format!(
            "{signals} events queued while unread (expected a bound)"
        ));
    }
    if signals == 0 {
        return Err("no signal events at all".into());
    }
    let mut total = signals;
    while t.exit_status.is_none() {
        t.resume(tracer::PTRACE_WAIT, |e| {
            if e.cause == PTRACE_STOP_SIGNAL {
                total += 1;
            }
        })
        .ctx("PTRACE_WAIT")?;
    }
    drop(t);
    let status = rt::process::wait(child).ctx("wait")?;
    expect_exit("tracee", status, 0)?;
    if total < 5000 {
        return Err(format!(
            "{total} signal events in all, expected 5000 (events lost)"
        ));
    }
    Ok(())
}

fn x87_divide_by_zero_is_sigfpe() -> Result<(), String> {
    let child = rt::process::fork_with(|| {
        let control: u16 = 0x037B; // default with the zero-divide exception unmasked
        let one = 1.0f64;
        let zero = 0.0f64;
        // SAFETY: loads the control word and divides; the fault ends the process.
        unsafe {
            core::arch::asm!(
                "fldcw [{c}]",
                "fld qword ptr [{a}]",
                "fdiv qword ptr [{b}]",
                "fwait",
                c = in(reg) &control,
                a = in(reg) &one,
                b = in(reg) &zero,
                out("st(0)") _, out("st(1)") _,
            );
        }
        0
    })
    .ctx("fork")?;
    let status = rt::process::wait(child).ctx("wait")?;
    expect_killed("x87 divide by zero", status, SIGFPE)
}

/// `int 3` encoded as CD 03 is not a one-byte breakpoint: a traced process
/// gets SIGTRAP (an event), the untraced behaviour, not a breakpoint stop.
fn two_byte_int3_is_not_a_breakpoint() -> Result<(), String> {
    let child = rt::process::fork_with(|| {
        let _ = syscall::kill(syscall::getpid().unwrap_or(0), SIGSTOP);
        // SAFETY: raises #BP; the process dies of SIGTRAP.
        unsafe { core::arch::asm!(".byte 0xcd, 0x03") };
        0
    })
    .ctx("fork")?;
    rt::process::waitpid(child, WaitFlags::WUNTRACED).ctx("waitpid")?;
    let mut t = Tracer::attach(child).ctx("attach")?;
    syscall::kill(child, SIGCONT).ctx("SIGCONT")?;
    let (_, events) = t.resume_collect(PTRACE_CONT).ctx("run")?;
    drop(t);
    let status = rt::process::wait(child).ctx("wait")?;
    let breakpoints = events
        .iter()
        .filter(|e| e.cause == tracer::PTRACE_STOP_BREAKPOINT)
        .count();
    if breakpoints != 0 {
        return Err(format!("{breakpoints} breakpoint events for CD 03"));
    }
    if !events
        .iter()
        .any(|e| e.cause == PTRACE_STOP_SIGNAL && e.a == SIGTRAP)
    {
        return Err(format!("no SIGTRAP signal event: {events:?}"));
    }
    expect_killed("CD 03 under a tracer", status, SIGTRAP)
}

/// A tracer tracing a thread that shares its descriptor table, then
/// exiting: the handle lives on only in the tracee's own table, so the
/// session must end with the tracer (else the thread is held forever).
fn tracer_exit_releases_thread_sharing_its_table() -> Result<(), String> {
    let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
    let tracer = rt::process::fork_with(|| {
        fn thread_body(wr: usize) {
            let _ = rt::process::sleep_ms(50);
            let _ = syscall::write(wr, b"x");
        }
        let thread = match rt::thread::spawn(64 * 1024, thread_body, wr) {
            Ok(thread) => thread,
            Err(_) => return 2,
        };
        match Tracer::attach(thread.pid()) {
            // Exit while holding the session: the handle stays open in the
            // thread's (shared) table.
            Ok(session) => {
                core::mem::forget(session);
                0
            }
            Err(_) => 3,
        }
    })
    .ctx("fork the tracer")?;
    let status = rt::process::wait(tracer).ctx("wait for the tracer")?;
    expect_exit("the tracer", status, 0)?;
    let _ = syscall::close(wr);
    let mut b = [0u8; 1];
    let got = rt::io::read(rd, &mut b);
    let _ = syscall::close(rd);
    rt::test::expect_eq(
        "what the released thread wrote",
        format!("{got:?} {b:?}"),
        String::from("Ok(1) [120]"),
    )?;
    // The orphaned thread is reparented to pid 1 (us) and reaped here.
    let (_, thread_status) = rt::process::waitpid(0, WaitFlags::empty()).ctx("reap the thread")?;
    expect_exit("the thread", thread_status, 0)
}

fn main(_args: &[&str]) -> i32 {
    let mut t = Tests::new();
    t.run(
        "event_queue_cannot_watch_itself",
        event_queue_cannot_watch_itself,
    );
    t.run(
        "handler_outside_user_space_efault",
        handler_outside_user_space_efault,
    );
    t.run("fork_until_refused", fork_until_refused);
    t.run(
        "blocked_readers_with_huge_buffers",
        blocked_readers_with_huge_buffers,
    );
    t.run("unread_events_are_bounded", unread_events_are_bounded);
    t.run("x87_divide_by_zero_is_sigfpe", x87_divide_by_zero_is_sigfpe);
    t.run(
        "two_byte_int3_is_not_a_breakpoint",
        two_byte_int3_is_not_a_breakpoint,
    );
    t.run(
        "tracer_exit_releases_thread_sharing_its_table",
        tracer_exit_releases_thread_sharing_its_table,
    );
    t.finish()
}
