//! Contract section 3: operation validation, `dup`/`fpath` on a trace
//! handle, blocking and non-blocking handles, reading events, and
//! readiness through `event:`.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use rt::ensure;
use rt::process::{now_ms, sleep_ms};
use rt::test::{expect_eq, expect_errno, Ctx};
use syscall::data::Event;
use syscall::error::{EAGAIN, EBUSY, EINTR, EINVAL, ENOENT};
use syscall::flag::{EventFlags, F_SETFL, O_NONBLOCK, O_RDWR, SIGUSR1, SIGUSR2};
use syscall::number::{SYS_KILL, SYS_READ, SYS_SIGRETURN};
use tracer::{
    IntRegisters, PtraceEvent, StopInfo, Tracer, PTRACE_CONT, PTRACE_SINGLESTEP,
    PTRACE_STOP_POST_SYSCALL, PTRACE_STOP_PRE_SYSCALL, PTRACE_STOP_SIGNAL, PTRACE_SYSCALL,
    PTRACE_WAIT,
};

use testkit::*;

/// The operation bytes the contract accepts.
const VALID_OPS: [u8; 9] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x11, 0x12, 0x13, 0x15];

// ----- Tracees that signal themselves ----------------------------------------

static HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_usr1(_sig: usize) {
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

/// The one pointer to [`on_usr1`] used both to install it and to compare
/// with events (a function may have several copies, so its address taken
/// in two places may differ).
static USR1: extern "C" fn(usize) = on_usr1;

/// The handler address a signal event names.
fn usr1_handler() -> usize {
    USR1 as usize
}

/// Tracee body: `kill(self, SIGUSR1)` forever (with a nap after each when
/// `nap`), the handler making no system call.
fn signal_self_forever(nap: bool) -> i32 {
    if set_handler(SIGUSR1, USR1).is_err() {
        return 3;
    }
    let pid = me();
    loop {
        let _ = syscall::kill(pid, SIGUSR1);
        if nap {
            let _ = sleep_ms(1);
        }
    }
}

/// Checks that `e` is the signal event of our `SIGUSR1` handler.
fn expect_usr1_event(e: &PtraceEvent) -> Check {
    ensure!(
        e.cause == PTRACE_STOP_SIGNAL && e.a == SIGUSR1 && e.b == usr1_handler(),
        "expected signal event (cause {:#x}, a {}, b {:#x}), got {:?}",
        PTRACE_STOP_SIGNAL,
        SIGUSR1,
        usr1_handler(),
        e
    );
    Ok(())
}

/// A tracee that, once released, sends itself `SIGUSR1` three times, tells
/// us through `done`, and then blocks; attached with a non-blocking handle
/// and `PTRACE_CONT`, so exactly three signal events are queued when this
/// returns.
fn three_signal_events() -> Result<(Kid, Tracer, Gate), String> {
    let gate = Gate::new()?;
    let done = Gate::new()?;
    let (g, d) = (gate.rd, done.wr);
    let kid = Kid::spawn(move || {
        if set_handler(SIGUSR1, USR1).is_err() {
            return 3;
        }
        let mut b = [0u8; 1];
        let _ = rt::io::read(g, &mut b);
        let pid = me();
        for _ in 0..3 {
            let _ = syscall::kill(pid, SIGUSR1);
        }
        let _ = rt::io::write_all(d, b"d");
        loop {
            let _ = rt::io::read(g, &mut b);
        }
    })?;
    // Let the child install its handler and block on the gate.
    wait_for_state(kid.pid, "blocked", 2000)?;
    let t = Tracer::attach_flags(kid.pid, O_NONBLOCK).ctx("attach O_NONBLOCK")?;
    expect_eq(
        "PTRACE_CONT on a non-blocking handle",
        op(t.fd(), PTRACE_CONT),
        Ok(1),
    )?;
    gate.open()?;
    ensure!(done.pass() == b'd', "the tracee never finished its kills");
    Ok((kid, t, gate))
}

// ----- Validation --------------------------------------------------------------

/// Every refused write is `EINVAL` and leaves the session as it was.
fn bad_writes_change_nothing(t: &Tracer, pid: usize, bad: &[Vec<u8>]) -> Check {
    let stop = stop_of(pid)?;
    let regs = regs_of(pid)?;
    for bytes in bad {
        expect_errno(
            &format!("write {:x?} to trace", bytes),
            syscall::write(t.fd(), bytes),
            EINVAL,
        )?;
    }
    expect_held_by(pid, me())?;
    expect_eq("stop after the refused writes", stop_of(pid)?, stop)?;
    expect_eq("regs/int after the refused writes", regs_of(pid)?, regs)?;
    // Still at the same reached stop: PTRACE_WAIT returns 1 and resumes nothing.
    expect_eq(
        "PTRACE_WAIT after the refused writes",
        op(t.fd(), PTRACE_WAIT),
        Ok(1),
    )?;
    expect_eq("stop after PTRACE_WAIT", stop_of(pid)?, stop)?;
    Ok(())
}

/// Writes of length 0, 2 or more, and every byte that is not an operation,
/// are `EINVAL` and change nothing; a valid operation works afterwards.
pub fn invalid_ops_change_nothing() -> Check {
    let kid = Kid::spawn(|| nap_forever())?;
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    let mut bad: Vec<Vec<u8>> = vec![
        vec![],
        vec![PTRACE_SYSCALL, PTRACE_SYSCALL],
        vec![PTRACE_WAIT, 0],
        vec![PTRACE_CONT; 56],
    ];
    bad.extend(
        (0..=255u8)
            .filter(|b| !VALID_OPS.contains(b))
            .map(|b| vec![b]),
    );
    bad_writes_change_nothing(&t, kid.pid, &bad).map_err(|e| format!("at the attach stop: {e}"))?;
    let reached = op(t.fd(), PTRACE_SYSCALL);
    let mut reached = reached.ctx("PTRACE_SYSCALL after the refused writes")?;
    while reached == 0 {
        events(t.fd())?;
        reached = op_ok(t.fd(), PTRACE_WAIT)?;
    }
    let stop = stop_of(kid.pid)?;
    ensure!(
        stop.cause == PTRACE_STOP_PRE_SYSCALL || stop.cause == PTRACE_STOP_POST_SYSCALL,
        "PTRACE_SYSCALL after the refused writes: stop cause {:#x}",
        stop.cause
    );
    let few: Vec<Vec<u8>> = [
        &[][..],
        &[0x00],
        &[0x06],
        &[0x14],
        &[0x10],
        &[0xFF],
        &[3, 3],
    ]
    .iter()
    .map(|b| b.to_vec())
    .collect();
    bad_writes_change_nothing(&t, kid.pid, &few).map_err(|e| format!("at a syscall stop: {e}"))
}

// ----- dup and fpath ------------------------------------------------------------

/// `dup(trace, "regs/int")` opens the sibling; `fpath` names the files;
/// bad sibling names are refused.
pub fn dup_sibling_and_fpath() -> Check {
    let kid = Kid::spawn(|| nap_forever())?;
    let pid = kid.pid;
    let t = Tracer::attach(pid).ctx("attach")?;
    expect_eq(
        "fpath of the trace handle",
        fpath_of(t.fd())?,
        format!("proc:{pid}/trace"),
    )?;
    let stop = stop_of(pid)?;
    let regs_fd = syscall::dup(t.fd(), b"regs/int").ctx("dup(trace, \"regs/int\")")?;
    let result = (|| {
        let regs = read_regs_fd(regs_fd)?;
        expect_eq(
            "rip read through the dup'd regs/int",
            regs.rip as u64,
            stop.addr,
        )?;
        expect_eq("regs/int through dup and open", regs, regs_of(pid)?)?;
        expect_eq(
            "fpath of the dup'd handle",
            fpath_of(regs_fd)?,
            format!("proc:{pid}/regs/int"),
        )?;
        let stop_fd = syscall::dup(t.fd(), b"stop").ctx("dup(trace, \"stop\")")?;
        let mut buf = [0u8; StopInfo::SIZE];
        let n = rt::io::read(stop_fd, &mut buf);
        let _ = syscall::close(stop_fd);
        expect_eq(
            "stop read through dup",
            n.ctx("read dup'd stop")?,
            StopInfo::SIZE,
        )?;
        expect_eq("stop through dup", StopInfo::from_bytes(&buf), Some(stop))?;
        // Any proc: handle can name a sibling, the dup'd one too.
        let float = syscall::dup(regs_fd, b"regs/float").ctx("dup(regs/int, \"regs/float\")")?;
        let _ = syscall::close(float);
        expect_errno(
            "dup(trace, \"bogus\")",
            syscall::dup(t.fd(), b"bogus"),
            ENOENT,
        )?;
        expect_errno(
            "dup(trace, \"regs/xmm\")",
            syscall::dup(t.fd(), b"regs/xmm"),
            ENOENT,
        )?;
        expect_errno(
            "dup(trace, \"regs//int\")",
            syscall::dup(t.fd(), b"regs//int"),
            EINVAL,
        )?;
        expect_errno(
            "dup(trace, \"regs/\")",
            syscall::dup(t.fd(), b"regs/"),
            EINVAL,
        )?;
        expect_errno(
            "dup(trace, \"trace\") while traced",
            syscall::dup(t.fd(), b"trace"),
            EBUSY,
        )
    })();
    let _ = syscall::close(regs_fd);
    result
}

// ----- Blocking handle --------------------------------------------------------

/// A blocking `PTRACE_SYSCALL` returns 1 with the tracee held at the stop:
/// entry then exit of the same call, `rax` = number at the entry.
pub fn blocking_write_reaches_breakpoint() -> Check {
    let kid = Kid::spawn(|| nap_forever())?;
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    let mut entry: Option<StopInfo> = None;
    for i in 0..4 {
        expect_eq(
            &format!("PTRACE_SYSCALL #{i} (no events: the tracee only naps)"),
            op(t.fd(), PTRACE_SYSCALL),
            Ok(1),
        )?;
        expect_held_by(kid.pid, me())?;
        let stop = stop_of(kid.pid)?;
        let regs: IntRegisters = regs_of(kid.pid)?;
        expect_eq("stop addr = regs rip", stop.addr, regs.rip as u64)?;
        match stop.cause {
            PTRACE_STOP_PRE_SYSCALL => {
                expect_eq("rax at a syscall entry stop", regs.rax as u64, stop.nr)?;
                entry = Some(stop);
            }
            PTRACE_STOP_POST_SYSCALL => {
                if let Some(e) = entry.take() {
                    expect_eq("exit stop's call after its entry stop", stop.nr, e.nr)?;
                }
            }
            other => return Err(format!("PTRACE_SYSCALL stopped with cause {other:#x}")),
        }
    }
    Ok(())
}

/// A blocking write returns 0 when events are unread (the tracee signals
/// itself); reading them and writing `PTRACE_WAIT` goes on.
pub fn blocking_write_returns_0_on_events() -> Check {
    let kid = Kid::spawn(|| signal_self_forever(true))?;
    let _ = sleep_ms(5);
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    // PTRACE_CONT: no breakpoint, so every return is for events.
    let mut result = op(t.fd(), PTRACE_CONT);
    for round in 0..3 {
        expect_eq(&format!("PTRACE_CONT/WAIT round {round}"), result, Ok(0))?;
        let got = events(t.fd())?;
        ensure!(!got.is_empty(), "write returned 0 but no events to read");
        for e in &got {
            expect_usr1_event(e)?;
        }
        result = op(t.fd(), PTRACE_WAIT);
    }
    expect_eq("PTRACE_WAIT round 3", result, Ok(0))?;
    events(t.fd())?;
    // PTRACE_SYSCALL with the same loop: each round ends reached (1).
    let (mut zeros, mut seen) = (0, 0);
    for _ in 0..40 {
        let mut reached = op_ok(t.fd(), PTRACE_SYSCALL)?;
        let mut loops = 0;
        while reached == 0 {
            zeros += 1;
            let got = events(t.fd())?;
            ensure!(!got.is_empty(), "PTRACE_SYSCALL loop: 0 without events");
            for e in &got {
                expect_usr1_event(e)?;
            }
            seen += got.len();
            reached = op_ok(t.fd(), PTRACE_WAIT)?;
            loops += 1;
            ensure!(loops < 100, "PTRACE_SYSCALL never reached a stop");
        }
        expect_eq("write result after the loop", reached, 1)?;
        let stop = stop_of(kid.pid)?;
        ensure!(
            stop.cause == PTRACE_STOP_PRE_SYSCALL || stop.cause == PTRACE_STOP_POST_SYSCALL,
            "loop ended at stop cause {:#x}",
            stop.cause
        );
    }
    ensure!(
        zeros > 0 && seen > 0,
        "40 PTRACE_SYSCALL stops over a self-signalling tracee gave no event (zeros {}, events {})",
        zeros,
        seen
    );
    Ok(())
}

/// Goes on with `PTRACE_SYSCALL` until the tracee (looping on `kill(self,
/// SIGUSR1)`) is at the entry of `kill`.
fn to_kill_entry(t: &Tracer, pid: usize) -> Result<StopInfo, String> {
    syscall_until(t.fd(), pid, 50, |s| {
        s.cause == PTRACE_STOP_PRE_SYSCALL && s.nr == SYS_KILL as u64
    })
}

/// From the entry of `kill(self, SIGUSR1)`, `PTRACE_SYSCALL` leads to a
/// signal event and then the entry stop of the handler's `sigreturn`.
/// Returns once that stop is reached, the event still unread.
fn reached_with_event_unread(t: &Tracer, pid: usize) -> Check {
    to_kill_entry(t, pid)?;
    syscall::fcntl(t.fd(), F_SETFL, O_NONBLOCK).ctx("fcntl O_NONBLOCK")?;
    expect_eq(
        "non-blocking PTRACE_SYSCALL",
        op(t.fd(), PTRACE_SYSCALL),
        Ok(1),
    )?;
    wait_for_state(pid, "held", 3000)?;
    let stop = stop_of(pid)?;
    ensure!(
        stop.cause == PTRACE_STOP_PRE_SYSCALL && stop.nr == SYS_SIGRETURN as u64,
        "expected the entry stop of sigreturn, got cause {:#x} nr {}",
        stop.cause,
        stop.nr
    );
    Ok(())
}

/// Order: the breakpoint reached and events unread → the write returns 0;
/// after reading them the next `PTRACE_WAIT` returns 1. Blocking and
/// non-blocking handles alike.
pub fn order_rule() -> Check {
    let kid = Kid::spawn(|| signal_self_forever(false))?;
    let pid = kid.pid;
    let _ = sleep_ms(5);
    let t = Tracer::attach(pid).ctx("attach")?;
    for nonblocking in [false, true] {
        let which = if nonblocking {
            "non-blocking"
        } else {
            "blocking"
        };
        syscall::fcntl(t.fd(), F_SETFL, 0).ctx("fcntl blocking")?;
        reached_with_event_unread(&t, pid).map_err(|e| format!("{which}: {e}"))?;
        let stop = stop_of(pid)?;
        if !nonblocking {
            syscall::fcntl(t.fd(), F_SETFL, 0).ctx("fcntl blocking")?;
        }
        expect_eq(
            &format!("{which} PTRACE_WAIT with the stop reached and an event unread"),
            op(t.fd(), PTRACE_WAIT),
            Ok(0),
        )?;
        let got = events(t.fd())?;
        expect_eq(&format!("{which}: events read"), got.len(), 1)?;
        expect_usr1_event(&got[0])?;
        expect_eq(
            &format!("{which} PTRACE_WAIT after reading the events"),
            op(t.fd(), PTRACE_WAIT),
            Ok(1),
        )?;
        expect_eq(
            &format!("{which}: stop after PTRACE_WAIT"),
            stop_of(pid)?,
            stop,
        )?;
    }
    Ok(())
}

/// `read` with a buffer shorter than one record is `EINVAL` (and takes
/// nothing away).
pub fn read_short_buffer_einval() -> Check {
    let (kid, t, _gate) = three_signal_events()?;
    let mut buf = [0u8; 64];
    for len in [0usize, 1, 55] {
        expect_errno(
            &format!("read of {len} bytes from trace"),
            syscall::read(t.fd(), &mut buf[..len]),
            EINVAL,
        )?;
    }
    // An empty slice that points nowhere (Rust's `&mut []`): still a
    // buffer shorter than one record.
    expect_errno(
        "read into an empty slice (dangling pointer) from trace",
        syscall::read(t.fd(), &mut []),
        EINVAL,
    )?;
    let mut buf = vec![0u8; PtraceEvent::SIZE * 4];
    expect_eq(
        "read after the refused reads (all three events left)",
        syscall::read(t.fd(), &mut buf).ctx("read trace")?,
        PtraceEvent::SIZE * 3,
    )?;
    let mut small = [0u8; 55];
    expect_errno(
        "read of 55 bytes with no events queued",
        syscall::read(t.fd(), &mut small),
        EINVAL,
    )?;
    drop(t);
    drop(kid);
    Ok(())
}

/// `read` returns whole records only, as many as fit and are queued.
pub fn read_whole_records() -> Check {
    let (_kid, t, _gate) = three_signal_events()?;
    let mut got = Vec::new();
    for (len, expected) in [(100usize, 1usize), (167, 2), (300, 0)] {
        let mut buf = vec![0u8; len];
        let n = syscall::read(t.fd(), &mut buf).ctx(&format!("read {len} bytes"))?;
        expect_eq(
            &format!("bytes from a read of {len}"),
            n,
            expected * PtraceEvent::SIZE,
        )?;
        for chunk in buf[..n].chunks_exact(PtraceEvent::SIZE) {
            got.push(PtraceEvent::from_bytes(chunk).ok_or("bad record")?);
        }
    }
    for e in &got {
        expect_usr1_event(e)?;
    }
    Ok(())
}

static TRACER_SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_usr2(_sig: usize) {
    TRACER_SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// A signal to the tracer ends a blocking write with `EINTR`; the
/// breakpoint stays set, and `PTRACE_WAIT` reaches it later.
pub fn signal_interrupts_blocking_write() -> Check {
    set_handler(SIGUSR2, on_usr2)?;
    let gate = Gate::new()?;
    let mut kid = Kid::at_gate(&gate, 0)?;
    wait_for_state(kid.pid, "blocked", 2000)?;
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    let parent = me();
    // The clock starts before the helper: the write cannot legitimately
    // end before 150 ms.
    let t0 = now_ms();
    let _helper = Kid::spawn(move || {
        let _ = sleep_ms(150);
        let _ = syscall::kill(parent, SIGUSR2);
        0
    })?;
    let r = syscall::write(t.fd(), &[PTRACE_SYSCALL]);
    let elapsed = now_ms() - t0;
    expect_errno("blocking PTRACE_SYSCALL interrupted by SIGUSR2", r, EINTR)?;
    ensure!(
        TRACER_SIGNALS.load(Ordering::SeqCst) >= 1,
        "EINTR came before our SIGUSR2 handler ran"
    );
    ensure!(
        elapsed >= 140,
        "the write ended after {} ms, before the signal was sent (150 ms)",
        elapsed
    );
    // The tracee is still blocked in read: nothing was reached.
    let (state, _) = state_of(kid.pid)?;
    ensure!(state != "held", "tracee held after the interrupted write");
    gate.open()?;
    expect_eq("PTRACE_WAIT after EINTR", op(t.fd(), PTRACE_WAIT), Ok(1))?;
    let stop = stop_of(kid.pid)?;
    ensure!(
        stop.cause == PTRACE_STOP_POST_SYSCALL && stop.nr == SYS_READ as u64,
        "the breakpoint set before EINTR should stop at read's exit: cause {:#x} nr {:#x}",
        stop.cause,
        stop.nr
    );
    drop(t);
    let status = kid.wait(3000)?;
    rt::test::expect_exit("tracee", status, 0)
}

// ----- Non-blocking handle ----------------------------------------------------

/// On a non-blocking handle operations return 1 at once; `PTRACE_WAIT` is
/// `EAGAIN` until the breakpoint is reached, then 1.
pub fn nonblocking_ops() -> Check {
    let gate = Gate::new()?;
    let g = gate.rd;
    let kid = Kid::spawn(move || {
        let mut b = [0u8; 1];
        let _ = rt::io::read(g, &mut b);
        nap_forever()
    })?;
    wait_for_state(kid.pid, "blocked", 2000)?;
    let t = Tracer::attach_flags(kid.pid, O_NONBLOCK).ctx("attach O_NONBLOCK")?;
    expect_eq(
        "PTRACE_WAIT at the attach stop",
        op(t.fd(), PTRACE_WAIT),
        Ok(1),
    )?;
    for code in [
        PTRACE_SYSCALL,
        PTRACE_CONT,
        PTRACE_SINGLESTEP,
        PTRACE_SYSCALL,
    ] {
        expect_eq(
            &format!("non-blocking op {code:#x}"),
            op(t.fd(), code),
            Ok(1),
        )?;
        for _ in 0..3 {
            expect_errno(
                "PTRACE_WAIT while the tracee is blocked in read",
                op(t.fd(), PTRACE_WAIT),
                EAGAIN,
            )?;
            let _ = sleep_ms(10);
        }
        let (state, _) = state_of(kid.pid)?;
        ensure!(state != "held", "tracee held while blocked in read");
    }
    gate.open()?;
    expect_eq("PTRACE_WAIT once released", poll_wait(t.fd(), 3000)?, 1)?;
    let stop = stop_of(kid.pid)?;
    ensure!(
        stop.cause == PTRACE_STOP_POST_SYSCALL && stop.nr == SYS_READ as u64,
        "expected the exit stop of read, got cause {:#x} nr {:#x}",
        stop.cause,
        stop.nr
    );
    expect_held_by(kid.pid, me())
}

/// Registers `fd` with `flags` in event queue `queue`.
fn register(queue: usize, fd: usize, flags: EventFlags, data: usize) -> Check {
    let ev = Event {
        id: fd,
        flags,
        data,
    };
    syscall::write(queue, &ev).ctx("register with event:")?;
    Ok(())
}

/// Starts a helper that opens `gate` after 100 ms, then blocks in `read`
/// of `queue` (retrying `EINTR`); returns the event and the milliseconds
/// since just before the helper started.
fn wait_queue_released_later(queue: usize, gate: &Gate) -> Result<(Event, u64), String> {
    let t0 = now_ms();
    let _helper = open_later(gate, 100)?;
    let mut ev = Event::default();
    let n = rt::io::read(queue, &mut ev).ctx("read event:")?;
    expect_eq("bytes read from event:", n, core::mem::size_of::<Event>())?;
    Ok((ev, now_ms() - t0))
}

/// A helper that opens `gate` after `ms` milliseconds.
fn open_later(gate: &Gate, ms: u64) -> Result<Kid, String> {
    let w = gate.wr;
    Kid::spawn(move || {
        let _ = sleep_ms(ms);
        match rt::io::write_all(w, b"g") {
            Ok(()) => 0,
            Err(_) => 2,
        }
    })
}

/// `event:` wakes a tracer blocked on its queue with `EVENT_WRITE` when the
/// tracee reaches the breakpoint.
pub fn event_wakes_on_reach() -> Check {
    let gate = Gate::new()?;
    let g = gate.rd;
    let kid = Kid::spawn(move || {
        let mut b = [0u8; 1];
        let _ = rt::io::read(g, &mut b);
        nap_forever()
    })?;
    wait_for_state(kid.pid, "blocked", 2000)?;
    let t = Tracer::attach_flags(kid.pid, O_NONBLOCK).ctx("attach O_NONBLOCK")?;
    expect_eq(
        "non-blocking PTRACE_SYSCALL",
        op(t.fd(), PTRACE_SYSCALL),
        Ok(1),
    )?;
    let queue = syscall::open("event:", O_RDWR).ctx("open event:")?;
    let result = (|| {
        register(
            queue,
            t.fd(),
            EventFlags::EVENT_READ | EventFlags::EVENT_WRITE,
            0x5a,
        )?;
        let (ev, elapsed) = wait_queue_released_later(queue, &gate)?;
        expect_eq("event id", ev.id, t.fd())?;
        expect_eq("event data", ev.data, 0x5a)?;
        ensure!(
            ev.flags.contains(EventFlags::EVENT_WRITE)
                && !ev.flags.contains(EventFlags::EVENT_READ),
            "expected EVENT_WRITE only, got {:?}",
            ev.flags
        );
        ensure!(
            elapsed >= 90,
            "woken after {} ms, before the tracee was released (100 ms)",
            elapsed
        );
        expect_eq(
            "PTRACE_WAIT after the wake-up",
            op(t.fd(), PTRACE_WAIT),
            Ok(1),
        )?;
        let stop = stop_of(kid.pid)?;
        expect_eq("stop cause", stop.cause, PTRACE_STOP_POST_SYSCALL)
    })();
    let _ = syscall::close(queue);
    result
}

/// `event:` wakes a tracer with `EVENT_READ` when an event is queued.
pub fn event_wakes_on_event() -> Check {
    let gate = Gate::new()?;
    let g = gate.rd;
    let kid = Kid::spawn(move || {
        if set_handler(SIGUSR1, USR1).is_err() {
            return 3;
        }
        let mut b = [0u8; 1];
        let _ = rt::io::read(g, &mut b);
        let _ = syscall::kill(me(), SIGUSR1);
        nap_forever()
    })?;
    wait_for_state(kid.pid, "blocked", 2000)?;
    let t = Tracer::attach_flags(kid.pid, O_NONBLOCK).ctx("attach O_NONBLOCK")?;
    expect_eq("non-blocking PTRACE_CONT", op(t.fd(), PTRACE_CONT), Ok(1))?;
    let queue = syscall::open("event:", O_RDWR).ctx("open event:")?;
    let result = (|| {
        register(queue, t.fd(), EventFlags::EVENT_READ, 7)?;
        let (ev, elapsed) = wait_queue_released_later(queue, &gate)?;
        expect_eq("event id", ev.id, t.fd())?;
        ensure!(
            ev.flags.contains(EventFlags::EVENT_READ),
            "expected EVENT_READ, got {:?}",
            ev.flags
        );
        ensure!(
            elapsed >= 90,
            "woken after {} ms, before the tracee was released (100 ms)",
            elapsed
        );
        let got = events(t.fd())?;
        expect_eq("events queued", got.len(), 1)?;
        expect_usr1_event(&got[0])
    })();
    let _ = syscall::close(queue);
    result
}

/// Registering a handle that is already ready reports it at once
/// (`EVENT_WRITE` at the attach stop, `EVENT_READ` with events unread), and
/// a handle that is not ready is not reported.
pub fn event_ready_at_once() -> Check {
    let gate = Gate::new()?;
    let g = gate.rd;
    let kid = Kid::spawn(move || {
        let mut b = [0u8; 1];
        let _ = rt::io::read(g, &mut b);
        nap_forever()
    })?;
    wait_for_state(kid.pid, "blocked", 2000)?;
    let t = Tracer::attach_flags(kid.pid, O_NONBLOCK).ctx("attach O_NONBLOCK")?;
    let queue = syscall::open("event:", O_RDWR | O_NONBLOCK).ctx("open event:")?;
    let result = (|| {
        let mut ev = Event::default();
        expect_errno(
            "non-blocking read of an empty event queue",
            syscall::read(queue, &mut ev),
            EAGAIN,
        )?;
        register(queue, t.fd(), EventFlags::EVENT_WRITE, 1)?;
        let n = syscall::read(queue, &mut ev)
            .ctx("read event: after registering at the attach stop")?;
        expect_eq("bytes", n, core::mem::size_of::<Event>())?;
        expect_eq("event id", ev.id, t.fd())?;
        ensure!(
            ev.flags.contains(EventFlags::EVENT_WRITE),
            "expected EVENT_WRITE, got {:?}",
            ev.flags
        );
        // Resumed toward a breakpoint it cannot reach yet: no longer ready.
        expect_eq(
            "non-blocking PTRACE_SYSCALL",
            op(t.fd(), PTRACE_SYSCALL),
            Ok(1),
        )?;
        expect_errno(
            "read event: with the breakpoint not reached",
            syscall::read(queue, &mut ev),
            EAGAIN,
        )?;
        Ok(())
    })();
    let _ = syscall::close(queue);
    result?;
    drop(t);
    drop(kid);

    let (_kid, t, _gate) = three_signal_events()?;
    let queue = syscall::open("event:", O_RDWR | O_NONBLOCK).ctx("open event:")?;
    let result = (|| {
        register(queue, t.fd(), EventFlags::EVENT_READ, 2)?;
        let mut ev = Event::default();
        let n = syscall::read(queue, &mut ev).ctx("read event: with events unread")?;
        expect_eq("bytes", n, core::mem::size_of::<Event>())?;
        ensure!(
            ev.flags.contains(EventFlags::EVENT_READ) && ev.data == 2,
            "expected EVENT_READ data 2, got {:?} data {}",
            ev.flags,
            ev.data
        );
        Ok(())
    })();
    let _ = syscall::close(queue);
    result
}
