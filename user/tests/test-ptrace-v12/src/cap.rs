//! Section 6 (v1.2): every queued trace event counts against the cap. A
//! tracee looping on `int3` while its tracer writes `PTRACE_CONT` without
//! reading waits once `MAX_UNREAD_EVENTS` (1024) are unread.

use alloc::format;
use alloc::string::String;

use rt::ensure;

use rt::test::Ctx;
use syscall::flag::{SIGCHLD, SIGTRAP};
use tracer::{Tracer, PTRACE_CONT, PTRACE_STOP_BREAKPOINT, PTRACE_STOP_SIGNAL};

use testkit::*;

/// The kernel's cap on unread events (`ptrace_core::session`).
const MAX_UNREAD_EVENTS: usize = 1024;

core::arch::global_asm!(
    ".pushsection .text.v12_int3, \"ax\"",
    ".global v12_int3",
    "v12_int3:",
    "    int3",
    "    ret",
    ".popsection",
);

extern "C" {
    /// Executes `int3` (its first byte) and returns.
    fn v12_int3();
}

/// A tracee loops on `int3`; the tracer writes `PTRACE_CONT` `ops` times,
/// yielding after each, without reading; then reads every event, closes
/// (the tracee, untraced, dies of `SIGTRAP`) and reaps. Returns how many
/// events were queued.
fn flood(ops: usize) -> Result<usize, String> {
    let gate = Gate::new()?;
    let gate_rd = gate.rd;
    let mut kid = Kid::spawn(move || {
        let mut b = [0u8; 1];
        let _ = rt::io::read(gate_rd, &mut b);
        loop {
            // SAFETY: v12_int3 only traps and returns; traced, the trap
            // holds the process and resuming runs the same int3 again.
            unsafe { v12_int3() };
        }
    })?;
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    gate.open()?;
    for i in 0..ops {
        let n = op(t.fd(), PTRACE_CONT).ctx(&format!("PTRACE_CONT #{i}"))?;
        ensure!(
            n == 0,
            "PTRACE_CONT #{i} returned {n}, expected 0 (events unread)"
        );
        let _ = syscall::sched_yield();
    }
    // One read: reading in pieces would make room, and the tracee (waiting
    // at the cap) would queue one more in between.
    let all = read_snapshot(t.fd())?;
    ensure!(
        all.iter().all(|e| e.cause == PTRACE_STOP_BREAKPOINT),
        "an event other than int3 among {} events",
        all.len()
    );
    drop(t);
    let status = kid.wait(5000)?;
    rt::test::expect_killed("the untraced tracee", status, SIGTRAP)?;
    Ok(all.len())
}

/// 20,000 `PTRACE_CONT` writes without a read leave at most the cap
/// unread (and at least half of it: the flood did happen), and the heap
/// and free frames go back to where they were once the session ends.
pub fn int3_flood_stays_under_cap() -> Check {
    flood(2000).map_err(|e| format!("warm-up: {e}"))?;
    let before = memory()?;
    let queued = flood(20_000)?;
    ensure!(
        queued <= MAX_UNREAD_EVENTS,
        "{queued} events queued, more than the cap {MAX_UNREAD_EVENTS}"
    );
    ensure!(
        queued >= MAX_UNREAD_EVENTS / 2,
        "only {queued} events queued: the flood did not happen"
    );
    expect_memory_back(before, "an int3 flood")
}

/// Every queued event, taken with one `read` (a snapshot: reading in
/// pieces would let the tracee queue more in between).
fn read_snapshot(fd: usize) -> Result<alloc::vec::Vec<tracer::PtraceEvent>, String> {
    let mut buf = alloc::vec![0u8; tracer::PtraceEvent::SIZE * (MAX_UNREAD_EVENTS + 2)];
    let n = syscall::read(fd, &mut buf).ctx("read trace")?;
    ensure!(
        n % tracer::PtraceEvent::SIZE == 0,
        "read {n} bytes, not whole records"
    );
    buf[..n]
        .chunks_exact(tracer::PtraceEvent::SIZE)
        .map(|c| tracer::PtraceEvent::from_bytes(c).ok_or(String::from("bad event record")))
        .collect()
}

/// A tracee sends itself `SIGCHLD` (default action: ignore) in a loop after
/// one `PTRACE_CONT`; each delivery queues a signal event. With the cap
/// reached it waits (`state=blocked`), holding exactly the cap; a read
/// makes room and it goes on. Returns the count read at the first wait.
fn signal_flood() -> Result<usize, String> {
    let gate = Gate::new()?;
    let gate_rd = gate.rd;
    let mut kid = Kid::spawn(move || {
        let mut b = [0u8; 1];
        let _ = rt::io::read(gate_rd, &mut b);
        let me = syscall::getpid().unwrap_or(0);
        loop {
            let _ = syscall::kill(me, SIGCHLD);
        }
    })?;
    let t = Tracer::attach(kid.pid).ctx("attach")?;
    gate.open()?;
    let n = op(t.fd(), PTRACE_CONT).ctx("PTRACE_CONT")?;
    ensure!(n == 0, "PTRACE_CONT returned {n}, expected 0 (an event)");
    // The tracee never blocks but at the cap.
    wait_for_state(kid.pid, "blocked", 20_000)?;
    let first = read_snapshot(t.fd())?;
    ensure!(
        first
            .iter()
            .all(|e| e.cause == PTRACE_STOP_SIGNAL && e.a == SIGCHLD),
        "an event other than SIGCHLD among {} events",
        first.len()
    );
    // Room again: it runs on and fills the queue once more.
    wait_for_state(kid.pid, "blocked", 20_000).map_err(|e| format!("after a read: {e}"))?;
    let second = read_snapshot(t.fd())?;
    ensure!(
        second.len() == MAX_UNREAD_EVENTS,
        "{} events queued after a read, expected the cap {MAX_UNREAD_EVENTS}",
        second.len()
    );
    drop(t);
    kid.kill();
    Ok(first.len())
}

/// Signal events count against the cap too: a tracer that does not read
/// finds exactly the cap queued and the tracee waiting; memory goes back
/// to its baseline once the session ends.
pub fn signal_flood_waits_at_cap() -> Check {
    signal_flood().map_err(|e| format!("warm-up: {e}"))?;
    let before = memory()?;
    let queued = signal_flood()?;
    ensure!(
        queued == MAX_UNREAD_EVENTS,
        "{queued} events queued when the tracee waited, expected the cap {MAX_UNREAD_EVENTS}"
    );
    expect_memory_back(before, "a signal flood")
}
