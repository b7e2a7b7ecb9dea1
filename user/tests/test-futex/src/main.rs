//! The futex suite: every operation of `futex` (`FUTEX_WAIT` with and
//! without a timeout, `FUTEX_WAKE`, `FUTEX_REQUEUE`, `FUTEX_WAIT64`) and
//! each of its errors, `EINTR` from a signal handler, the runtime's
//! futex-based `Mutex` and `Condvar` under contention, a ping-pong stress
//! that would hang on a lost wake-up (each wait has a generous timeout that
//! names the wait that lost it), a traced waiter woken while held at a
//! ptrace stop, `SIGKILL` of a waiter, and `sys:memory` back at its
//! baseline.
//!
//! Runs as pid 1 (`init=/bin/test-futex`): it counts waiters through
//! `sys:limits` (`futex_waiting`), which is global, so nothing else may
//! wait on a futex meanwhile. `test-futex NAME...` runs only those checks.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};

use rt::process::{now_ms, sleep_ms};
use rt::sync::{futex_requeue, futex_wait, futex_wake, Condvar, Mutex};
use rt::test::{expect_eq, expect_errno, expect_exit, expect_killed, Ctx};
use rt::thread::JoinHandle;
use rt::{ensure, Tests};
use syscall::data::{SigAction, TimeSpec};
use syscall::error::{Result as SysResult, EAGAIN, EFAULT, EINTR, EINVAL, ESRCH, ETIMEDOUT};
use syscall::flag::{
    SigActionFlags, FUTEX_REQUEUE, FUTEX_WAIT, FUTEX_WAIT64, FUTEX_WAKE, O_RDONLY, SIGCHLD,
    SIGKILL, SIGUSR1,
};
use syscall::number::SYS_FUTEX;
use tracer::{Stopped, Tracer, PTRACE_STOP_POST_SYSCALL, PTRACE_SYSCALL};

rt::entry!(main);

type TResult = Result<(), String>;
type Check = fn() -> TResult;

/// An address no program maps (the second page of the address space).
const UNMAPPED: usize = 0x1000;
/// The start of the kernel half.
const KERNEL: usize = 0xffff_8000_0000_0000;
/// How long a helper waits for a state it needs before calling it a hang.
const HANG_MS: u64 = 20_000;

/// The raw call, for arguments the wrappers cannot express.
fn raw(addr: usize, op: usize, val: usize, val2: usize, addr2: usize) -> SysResult<usize> {
    // SAFETY: the kernel checks every address; the memory the checks pass
    // is only read (the futex words) or used as a key.
    unsafe { syscall::syscall5(SYS_FUTEX, addr, op, val, val2, addr2) }
}

fn ts(ms: u64) -> TimeSpec {
    TimeSpec {
        tv_sec: (ms / 1000) as i64,
        tv_nsec: ((ms % 1000) * 1_000_000) as i32,
    }
}

/// Encodes a futex result for an atomic slot: 0 for `Ok`, else the errno.
fn code(r: SysResult<()>) -> usize {
    match r {
        Ok(()) => 0,
        Err(e) => e.errno as usize,
    }
}

/// One `key=value` of a `sys:` text file.
fn sys_value(file: &str, key: &str) -> Result<u64, String> {
    let fd = syscall::open(file, O_RDONLY).ctx(file)?;
    let mut buf = [0u8; 2048];
    let n = rt::io::read(fd, &mut buf);
    let _ = syscall::close(fd);
    let n = n.ctx(file)?;
    let text = core::str::from_utf8(&buf[..n]).map_err(|_| format!("{file}: not UTF-8"))?;
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .ok_or_else(|| format!("{file}: no {key} in {text:?}"))
}

/// Contexts blocked in `FUTEX_WAIT` right now (all of them: we are pid 1
/// and the only program running).
fn waiting() -> Result<u64, String> {
    sys_value("sys:limits", "futex_waiting")
}

/// Waits until exactly `n` contexts are blocked in a futex wait.
fn wait_for_waiters(n: u64) -> TResult {
    let deadline = now_ms() + HANG_MS;
    loop {
        let w = waiting()?;
        if w == n {
            return Ok(());
        }
        ensure!(
            now_ms() < deadline,
            "hang: {} futex waiters, expected {}",
            w,
            n
        );
        let _ = syscall::sched_yield();
    }
}

/// The `state=` word of `proc:<pid>/status`.
fn proc_state(pid: usize) -> Result<String, String> {
    let path = format!("proc:{pid}/status");
    let fd = syscall::open(&path, O_RDONLY).ctx(&path)?;
    let mut buf = [0u8; 512];
    let n = rt::io::read(fd, &mut buf);
    let _ = syscall::close(fd);
    let n = n.ctx(&path)?;
    let text = core::str::from_utf8(&buf[..n]).map_err(|_| format!("{path}: not UTF-8"))?;
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix("state="))
        .map(String::from)
        .ok_or_else(|| format!("{path}: no state in {text:?}"))
}

/// `frames_free` and `heap_used` from `sys:memory`.
fn memory() -> Result<(u64, u64), String> {
    Ok((
        sys_value("sys:memory", "frames_free")?,
        sys_value("sys:memory", "heap_used")?,
    ))
}

fn spawn(f: fn(usize), arg: usize) -> Result<JoinHandle, String> {
    rt::thread::spawn(32 * 1024, f, arg).ctx("thread spawn")
}

fn join_all(handles: Vec<JoinHandle>) -> TResult {
    for h in handles {
        let status = h.join().ctx("join")?;
        expect_exit("thread", status, 0)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- errors

fn wait_value_mismatch_eagain() -> TResult {
    let word = AtomicI32::new(5);
    expect_errno("WAIT for 6 on 5", futex_wait(&word, 6, None), EAGAIN)?;
    expect_errno("WAIT for -1 on 5", futex_wait(&word, -1, None), EAGAIN)?;
    // Only the low 32 bits of val count for FUTEX_WAIT: it matches, and a
    // zero timeout then expires at once.
    let zero = ts(0);
    let r = raw(
        word.as_ptr() as usize,
        FUTEX_WAIT,
        0x1_0000_0005,
        &zero as *const TimeSpec as usize,
        0,
    );
    expect_errno("WAIT with val's high half set, zero timeout", r, ETIMEDOUT)?;
    expect_eq("futex waiters after", waiting()?, 0)
}

fn wait64_compares_all_64_bits() -> TResult {
    let word = AtomicU64::new(0x1_0000_0005);
    let addr = word.as_ptr() as usize;
    let zero = ts(0);
    let t = &zero as *const TimeSpec as usize;
    expect_errno("WAIT64 for 5", raw(addr, FUTEX_WAIT64, 5, t, 0), EAGAIN)?;
    expect_errno(
        "WAIT64 for 0x1_0000_0005, zero timeout",
        raw(addr, FUTEX_WAIT64, 0x1_0000_0005, t, 0),
        ETIMEDOUT,
    )?;
    // The 32-bit WAIT on the same address compares the low half only.
    expect_errno(
        "WAIT for 5 on the low half",
        raw(addr, FUTEX_WAIT, 5, t, 0),
        ETIMEDOUT,
    )?;
    // A WAIT64 sleeper is woken by FUTEX_WAKE on the same address.
    WIDE.store(u64::MAX, Ordering::SeqCst);
    RESULTS[0].store(usize::MAX, Ordering::SeqCst);
    let h = spawn(wide_waiter, 0)?;
    wait_for_waiters(1)?;
    let woken = raw(WIDE.as_ptr() as usize, FUTEX_WAKE, 1, 0, 0).ctx("WAKE")?;
    join_all(alloc::vec![h])?;
    expect_eq("woken by WAKE", woken, 1)?;
    expect_eq(
        "the WAIT64 sleeper's result",
        RESULTS[0].load(Ordering::SeqCst),
        0,
    )
}

static WIDE: AtomicU64 = AtomicU64::new(0);

fn wide_waiter(i: usize) {
    let r = raw(WIDE.as_ptr() as usize, FUTEX_WAIT64, usize::MAX, 0, 0).map(|_| ());
    RESULTS[i].store(code(r), Ordering::SeqCst);
}

fn errors() -> TResult {
    let words = [AtomicU64::new(0), AtomicU64::new(0)];
    let base = words.as_ptr() as usize;
    let other = base + 8;
    let zero = ts(0);
    let t = &zero as *const TimeSpec as usize;
    for off in [1, 2, 3] {
        expect_errno(
            &format!("WAIT at +{off}"),
            raw(base + off, FUTEX_WAIT, 0, t, 0),
            EINVAL,
        )?;
        expect_errno(
            &format!("WAKE at +{off}"),
            raw(base + off, FUTEX_WAKE, 1, 0, 0),
            EINVAL,
        )?;
        expect_errno(
            &format!("REQUEUE to +{off}"),
            raw(base, FUTEX_REQUEUE, 1, 1, other + off),
            EINVAL,
        )?;
    }
    expect_errno("WAIT64 at +4", raw(base + 4, FUTEX_WAIT64, 0, t, 0), EINVAL)?;
    for addr in [UNMAPPED, KERNEL, usize::MAX - 3] {
        expect_errno(
            &format!("WAIT at {addr:#x}"),
            raw(addr, FUTEX_WAIT, 0, t, 0),
            EFAULT,
        )?;
        expect_errno(
            &format!("WAKE at {addr:#x}"),
            raw(addr, FUTEX_WAKE, 1, 0, 0),
            EFAULT,
        )?;
        expect_errno(
            &format!("REQUEUE to {addr:#x}"),
            raw(base, FUTEX_REQUEUE, 1, 1, addr),
            EFAULT,
        )?;
    }
    for op in [4, 5, 99, usize::MAX] {
        expect_errno(&format!("op {op:#x}"), raw(base, op, 0, 0, 0), EINVAL)?;
    }
    for (sec, nsec) in [(0, 1_000_000_000), (0, -1), (-1, 0)] {
        let bad = TimeSpec {
            tv_sec: sec,
            tv_nsec: nsec,
        };
        expect_errno(
            &format!("WAIT with timeout {sec}s {nsec}ns"),
            raw(base, FUTEX_WAIT, 0, &bad as *const TimeSpec as usize, 0),
            EINVAL,
        )?;
    }
    expect_errno(
        "WAIT with an unmapped timeout",
        raw(base, FUTEX_WAIT, 0, UNMAPPED, 0),
        EFAULT,
    )?;
    expect_eq(
        "WAKE with nobody waiting",
        raw(base, FUTEX_WAKE, 10, 0, 0),
        Ok(0),
    )?;
    expect_eq(
        "REQUEUE with nobody waiting",
        raw(base, FUTEX_REQUEUE, 10, 10, other),
        Ok(0),
    )?;
    expect_eq("futex waiters after", waiting()?, 0)
}

// ------------------------------------------------------- waits and wakes

fn timeout_expires() -> TResult {
    let word = AtomicI32::new(0);
    let start = now_ms();
    let r = futex_wait(&word, 0, Some(&ts(30)));
    let elapsed = now_ms() - start;
    expect_errno("WAIT with a 30 ms timeout", r, ETIMEDOUT)?;
    ensure!(elapsed >= 30, "timed out after {} ms, before 30", elapsed);
    expect_eq("futex waiters after", waiting()?, 0)
}

static WORD_A: AtomicI32 = AtomicI32::new(0);
static WORD_B: AtomicI32 = AtomicI32::new(0);
static RESULTS: [AtomicUsize; 8] = [const { AtomicUsize::new(usize::MAX) }; 8];

fn reset_results() {
    for r in &RESULTS {
        r.store(usize::MAX, Ordering::SeqCst);
    }
}

fn waiter_a(i: usize) {
    RESULTS[i].store(code(futex_wait(&WORD_A, 0, None)), Ordering::SeqCst);
}

fn timed_waiter_a(i: usize) {
    RESULTS[i].store(
        code(futex_wait(&WORD_A, 0, Some(&ts(60_000)))),
        Ordering::SeqCst,
    );
}

/// Starts `n` threads running `f(i)`, each one only once the previous
/// ones are asleep, so that their arrival order is `0..n`.
fn start_waiters(n: usize, f: fn(usize)) -> Result<Vec<JoinHandle>, String> {
    let base = waiting()?;
    let mut handles = Vec::new();
    for i in 0..n {
        handles.push(spawn(f, i)?);
        wait_for_waiters(base + i as u64 + 1)?;
    }
    Ok(handles)
}

/// Which of `handles` are still blocked (in order). A woken thread may
/// already have run and exited (its `status` is then `ESRCH`).
fn blocked(handles: &[JoinHandle]) -> Result<Vec<bool>, String> {
    handles
        .iter()
        .map(|h| {
            let path = format!("proc:{}/status", h.pid());
            match syscall::open(&path, O_RDONLY) {
                Err(e) if e.errno == ESRCH => Ok(false),
                Err(e) => Err(format!("{path}: {}", rt::errno::describe(&e))),
                Ok(fd) => {
                    let _ = syscall::close(fd);
                    proc_state(h.pid()).map(|s| s == "blocked")
                }
            }
        })
        .collect()
}

fn wake_counts_oldest_first() -> TResult {
    WORD_A.store(0, Ordering::SeqCst);
    reset_results();
    let handles = start_waiters(4, waiter_a)?;
    expect_eq("WAKE 1", futex_wake(&WORD_A, 1), Ok(1))?;
    expect_eq("waiters after WAKE 1", waiting()?, 3)?;
    expect_eq(
        "blocked after WAKE 1",
        blocked(&handles)?,
        alloc::vec![false, true, true, true],
    )?;
    expect_eq("WAKE 2", futex_wake(&WORD_A, 2), Ok(2))?;
    expect_eq(
        "blocked after WAKE 2",
        blocked(&handles)?,
        alloc::vec![false, false, false, true],
    )?;
    expect_eq("WAKE 0", futex_wake(&WORD_A, 0), Ok(0))?;
    expect_eq("WAKE all", futex_wake(&WORD_A, i32::MAX), Ok(1))?;
    expect_eq("WAKE with none left", futex_wake(&WORD_A, i32::MAX), Ok(0))?;
    join_all(handles)?;
    for (i, r) in RESULTS[..4].iter().enumerate() {
        expect_eq(&format!("waiter {i}'s result"), r.load(Ordering::SeqCst), 0)?;
    }
    expect_eq("futex waiters after", waiting()?, 0)
}

fn timed_wait_woken_returns_zero() -> TResult {
    WORD_A.store(0, Ordering::SeqCst);
    reset_results();
    let handles = start_waiters(1, timed_waiter_a)?;
    expect_eq("WAKE", futex_wake(&WORD_A, 1), Ok(1))?;
    join_all(handles)?;
    expect_eq(
        "the timed waiter's result",
        RESULTS[0].load(Ordering::SeqCst),
        0,
    )
}

fn requeue_wakes_and_moves() -> TResult {
    WORD_A.store(0, Ordering::SeqCst);
    WORD_B.store(0, Ordering::SeqCst);
    reset_results();
    let handles = start_waiters(3, waiter_a)?;
    expect_eq(
        "REQUEUE wake 0 move 0",
        futex_requeue(&WORD_A, 0, 0, &WORD_B),
        Ok(0),
    )?;
    expect_eq("waiters after REQUEUE 0 0", waiting()?, 3)?;
    // Wakes the oldest, moves the next one to B; returns the number woken.
    expect_eq(
        "REQUEUE wake 1 move 1",
        futex_requeue(&WORD_A, 1, 1, &WORD_B),
        Ok(1),
    )?;
    expect_eq("waiters after REQUEUE 1 1", waiting()?, 2)?;
    expect_eq(
        "blocked after REQUEUE 1 1",
        blocked(&handles)?,
        alloc::vec![false, true, true],
    )?;
    // Waiter 2 is still on A, waiter 1 on B.
    expect_eq("WAKE all on A", futex_wake(&WORD_A, i32::MAX), Ok(1))?;
    expect_eq(
        "blocked after WAKE A",
        blocked(&handles)?,
        alloc::vec![false, true, false],
    )?;
    expect_eq("WAKE all on B", futex_wake(&WORD_B, i32::MAX), Ok(1))?;
    join_all(handles)?;
    for (i, r) in RESULTS[..3].iter().enumerate() {
        expect_eq(&format!("waiter {i}'s result"), r.load(Ordering::SeqCst), 0)?;
    }
    expect_eq("futex waiters after", waiting()?, 0)
}

/// Waits until `pid` is blocked again (it runs once it is woken).
fn wait_until_blocked(pid: usize) -> TResult {
    let deadline = now_ms() + HANG_MS;
    loop {
        let state = proc_state(pid)?;
        if state == "blocked" {
            return Ok(());
        }
        ensure!(now_ms() < deadline, "hang: {} stays {}", pid, state);
        let _ = syscall::sched_yield();
    }
}

static HANDLER_HITS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_usr1(_sig: usize) {
    HANDLER_HITS.fetch_add(1, Ordering::SeqCst);
}

fn set_usr1(handler: Option<extern "C" fn(usize)>) -> TResult {
    let act = SigAction {
        sa_handler: handler,
        sa_mask: [0; 2],
        sa_flags: SigActionFlags::empty(),
    };
    syscall::sigaction(SIGUSR1, Some(&act), None)
        .ctx("sigaction")
        .map(|_| ())
}

fn eintr_by_signal_handler() -> TResult {
    WORD_A.store(0, Ordering::SeqCst);
    reset_results();
    HANDLER_HITS.store(0, Ordering::SeqCst);
    set_usr1(Some(on_usr1))?;
    let result = (|| {
        let handles = start_waiters(1, waiter_a)?;
        let tid = handles[0].pid();
        // A signal that does nothing (SIGCHLD, default: ignore) wakes the
        // waiter to look, but does not end its wait.
        syscall::kill(tid, SIGCHLD).ctx("kill SIGCHLD")?;
        wait_until_blocked(tid)?;
        expect_eq("futex waiters after SIGCHLD", waiting()?, 1)?;
        syscall::kill(tid, SIGUSR1).ctx("kill SIGUSR1")?;
        join_all(handles)?;
        expect_eq(
            "the waiter's result",
            RESULTS[0].load(Ordering::SeqCst),
            EINTR as usize,
        )?;
        expect_eq("handler runs", HANDLER_HITS.load(Ordering::SeqCst), 1)?;
        expect_eq("futex waiters after", waiting()?, 0)
    })();
    set_usr1(None)?;
    result
}

// --------------------------------------------------- the runtime's locks

const LOCKERS: usize = 8;
const LOCK_ROUNDS: usize = 3000;

static COUNTED: Mutex<u64> = Mutex::new(0);
static CONTENDED: AtomicUsize = AtomicUsize::new(0);

fn locker(_: usize) {
    for i in 0..LOCK_ROUNDS {
        let mut g = match COUNTED.try_lock() {
            Some(g) => g,
            None => {
                CONTENDED.fetch_add(1, Ordering::Relaxed);
                COUNTED.lock()
            }
        };
        // A plain read-modify-write: only the lock makes it exact.
        let v = *g;
        if i % 64 == 0 {
            // Give up the CPU holding the lock: the others must sleep.
            let _ = syscall::sched_yield();
            // And allocate: the heap lock is a futex lock too.
            let v: Vec<u64> = (0..16).collect();
            core::hint::black_box(&v);
        }
        *g = v + 1;
    }
}

fn mutex_contention_exact_count() -> TResult {
    *COUNTED.lock() = 0;
    CONTENDED.store(0, Ordering::SeqCst);
    let mut handles = Vec::new();
    for i in 0..LOCKERS {
        handles.push(spawn(locker, i)?);
    }
    join_all(handles)?;
    expect_eq(
        "the counter",
        *COUNTED.lock(),
        (LOCKERS * LOCK_ROUNDS) as u64,
    )?;
    ensure!(
        CONTENDED.load(Ordering::SeqCst) > 0,
        "the lock was never contended"
    );
    expect_eq("futex waiters after", waiting()?, 0)
}

static READY: Mutex<(bool, usize)> = Mutex::new((false, 0));
static READY_CV: Condvar = Condvar::new();

fn cv_waiter(_: usize) {
    let mut g = READY.lock();
    while !g.0 {
        g = READY_CV.wait(g);
    }
    g.1 += 1;
}

fn condvar_notify_all_requeues() -> TResult {
    const N: usize = 4;
    *READY.lock() = (false, 0);
    let mut handles = Vec::new();
    for i in 0..N {
        handles.push(spawn(cv_waiter, i)?);
    }
    wait_for_waiters(N as u64)?;
    {
        let mut g = READY.lock();
        g.0 = true;
        READY_CV.notify_all();
        // One woken, the others moved onto the mutex word, where they
        // sleep until it is unlocked: at least N - 1 stay asleep. (The
        // woken one may already have run and gone to sleep on the mutex
        // too, if the timer preempted us.)
        let w = waiting()?;
        ensure!(
            w == (N - 1) as u64 || w == N as u64,
            "{} futex waiters after notify_all, expected {} or {}",
            w,
            N - 1,
            N
        );
        // With the mutex held, all of them end up asleep on it.
        wait_for_waiters(N as u64)?;
        drop(g);
    }
    join_all(handles)?;
    expect_eq("waiters that went on", READY.lock().1, N)?;
    expect_eq("futex waiters after", waiting()?, 0)?;
    // A timed condvar wait nobody notifies times out.
    let g = READY.lock();
    let (g, timed_out) = READY_CV.wait_timeout(g, &ts(20));
    drop(g);
    ensure!(timed_out, "wait_timeout with no notify did not time out");
    Ok(())
}

// ----------------------------------------------------------- the stress

const PAIRS: usize = 6;
const ROUNDS: usize = 5000;
/// Per-wait timeout: only a lost wake-up can take this long.
const LOST_MS: u64 = 15_000;

static TURNS: [AtomicI32; PAIRS] = [const { AtomicI32::new(0) }; PAIRS];
static DONE_ROUNDS: [AtomicUsize; 2 * PAIRS] = [const { AtomicUsize::new(0) }; 2 * PAIRS];
static LOST: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Thread `2p` plays ping on pair `p` (runs on turn 0, hands over 1),
/// thread `2p + 1` pong (turn 1, hands over 0).
fn player(id: usize) {
    let (pair, me) = (id / 2, (id % 2) as i32);
    let turn = &TURNS[pair];
    for round in 0..ROUNDS {
        loop {
            let v = turn.load(Ordering::Acquire);
            if v == me {
                break;
            }
            match futex_wait(turn, v, Some(&ts(LOST_MS))) {
                Err(e) if e.errno == ETIMEDOUT => {
                    LOST.lock().push(format!(
                        "pair {pair} {} round {round}: no wake in {LOST_MS} ms",
                        if me == 0 { "ping" } else { "pong" }
                    ));
                    return;
                }
                // Woken, EAGAIN (the turn moved first): look again.
                _ => {}
            }
        }
        turn.store(1 - me, Ordering::Release);
        let _ = futex_wake(turn, 1);
        DONE_ROUNDS[id].store(round + 1, Ordering::Relaxed);
    }
}

fn pingpong_stress_no_lost_wakeup() -> TResult {
    LOST.lock().clear();
    for t in &TURNS {
        t.store(0, Ordering::SeqCst);
    }
    let mut handles = Vec::new();
    for id in 0..2 * PAIRS {
        handles.push(spawn(player, id)?);
    }
    join_all(handles)?;
    let lost = core::mem::take(&mut *LOST.lock());
    ensure!(lost.is_empty(), "lost wake-ups: {}", lost.join("; "));
    for (id, d) in DONE_ROUNDS.iter().enumerate() {
        expect_eq(
            &format!("rounds of player {id}"),
            d.load(Ordering::SeqCst),
            ROUNDS,
        )?;
    }
    expect_eq("futex waiters after", waiting()?, 0)
}

// ------------------------------------------------- tracing and killing

static TRACED_WORD: AtomicI32 = AtomicI32::new(0);
static TRACED_RESULT: AtomicUsize = AtomicUsize::new(usize::MAX);

fn traced_waiter(_: usize) {
    TRACED_RESULT.store(code(futex_wait(&TRACED_WORD, 0, None)), Ordering::SeqCst);
}

fn write_word(fd: usize, w: usize) -> TResult {
    rt::io::write_all(fd, &w.to_le_bytes()).ctx("write to pipe")
}

fn read_word(fd: usize) -> Result<usize, String> {
    let mut b = [0u8; 8];
    let n = rt::io::read_full(fd, &mut b).ctx("read from pipe")?;
    ensure!(n == 8, "short read from pipe: {} bytes", n);
    Ok(usize::from_le_bytes(b))
}

/// The child: a thread waits on a futex; on the parent's word, the main
/// thread wakes it and reports the count; exits 0 if the waiter's call
/// returned 0, else 10 + its errno.
fn traced_child(to_parent: usize, from_parent: usize) -> i32 {
    let Ok(h) = rt::thread::spawn(32 * 1024, traced_waiter, 0) else {
        return 2;
    };
    if write_word(to_parent, h.pid()).is_err() || read_word(from_parent).is_err() {
        return 3;
    }
    let woken = futex_wake(&TRACED_WORD, 1).unwrap_or(usize::MAX);
    if write_word(to_parent, woken).is_err() {
        return 4;
    }
    if h.join().map(|s| s != 0).unwrap_or(true) {
        return 5;
    }
    match TRACED_RESULT.load(Ordering::SeqCst) {
        0 => 0,
        e => 10 + e.min(100) as i32,
    }
}

fn traced_waiter_woken_while_held() -> TResult {
    let (p_rd, p_wr) = rt::io::pipe(0).ctx("pipe")?;
    let (c_rd, c_wr) = rt::io::pipe(0).ctx("pipe")?;
    let child = rt::process::fork_with(|| traced_child(p_wr, c_rd)).ctx("fork")?;
    let _ = syscall::close(p_wr);
    let _ = syscall::close(c_rd);
    let result = (|| {
        let tid = read_word(p_rd)?;
        wait_for_waiters(1)?;
        let mut t = Tracer::attach(tid).ctx("attach to the waiter")?;
        expect_eq(
            "the waiter's state at the attach stop",
            proc_state(tid)?,
            String::from("held"),
        )?;
        write_word(c_wr, 1)?;
        let woken = read_word(p_rd)?;
        expect_eq("WAKE while the waiter is held", woken, 1)?;
        expect_eq("futex waiters after the wake", waiting()?, 0)?;
        expect_eq(
            "the woken waiter's state",
            proc_state(tid)?,
            String::from("held"),
        )?;
        match t.resume(PTRACE_SYSCALL, |_| {}).ctx("PTRACE_SYSCALL")? {
            Stopped::Reached(s) => {
                expect_eq("stop cause", s.cause, PTRACE_STOP_POST_SYSCALL)?;
                expect_eq("stop nr", s.nr, SYS_FUTEX as u64)?;
                expect_eq("futex result at its exit stop", s.ret, 0)?;
            }
            other => return Err(format!("PTRACE_SYSCALL: {:?}", stopped_name(&other))),
        }
        drop(t);
        Ok(())
    })();
    let _ = syscall::close(p_rd);
    let _ = syscall::close(c_wr);
    let status = rt::process::wait(child).ctx("wait")?;
    result?;
    expect_exit("the child (0: its waiter's futex returned 0)", status, 0)
}

fn stopped_name(s: &Stopped) -> String {
    match s {
        Stopped::Reached(s) => format!("reached cause {:#x}", s.cause),
        Stopped::Breakpoint(a) => format!("int3 at {a:#x}"),
        Stopped::Exited(st) => format!("exited {st:#x}"),
    }
}

static KILLED_WORD: AtomicI32 = AtomicI32::new(0);

fn sigkill_removes_waiter(traced: bool) -> TResult {
    let child = rt::process::fork_with(|| {
        let _ = futex_wait(&KILLED_WORD, 0, None);
        7
    })
    .ctx("fork")?;
    wait_for_waiters(1)?;
    let t = if traced {
        let t = Tracer::attach(child).ctx("attach")?;
        expect_eq(
            "the waiter's state",
            proc_state(child)?,
            String::from("held"),
        )?;
        Some(t)
    } else {
        None
    };
    syscall::kill(child, SIGKILL).ctx("kill")?;
    let status = rt::process::wait(child).ctx("wait")?;
    drop(t);
    expect_killed("the waiter", status, SIGKILL)?;
    expect_eq("futex waiters after", waiting()?, 0)
}

/// Makes 24 threads runnable at once (one `FUTEX_WAKE` wakes them all), so
/// that the scheduler's run queue has grown past anything a check needs
/// (the stress has 12 threads): its size would otherwise depend on how the
/// timer interleaved the threads, and the memory baseline with it.
fn fill_run_queue() -> TResult {
    const N: usize = 24;
    WORD_A.store(0, Ordering::SeqCst);
    let mut handles = Vec::new();
    for i in 0..N {
        handles.push(spawn(waiter_a, i % RESULTS.len())?);
    }
    wait_for_waiters(N as u64)?;
    expect_eq("WAKE all", futex_wake(&WORD_A, i32::MAX), Ok(N))?;
    join_all(handles)
}

fn main(args: &[&str]) -> i32 {
    let only = &args[1.min(args.len())..];
    let wanted = |name: &str| only.is_empty() || only.contains(&name);
    let mut t = Tests::new();
    let checks: [(&str, Check); 14] = [
        ("wait_value_mismatch_eagain", wait_value_mismatch_eagain),
        ("wait64_compares_all_64_bits", wait64_compares_all_64_bits),
        ("errors", errors),
        ("timeout_expires", timeout_expires),
        ("wake_counts_oldest_first", wake_counts_oldest_first),
        (
            "timed_wait_woken_returns_zero",
            timed_wait_woken_returns_zero,
        ),
        ("requeue_wakes_and_moves", requeue_wakes_and_moves),
        ("eintr_by_signal_handler", eintr_by_signal_handler),
        ("mutex_contention_exact_count", mutex_contention_exact_count),
        ("condvar_notify_all_requeues", condvar_notify_all_requeues),
        (
            "pingpong_stress_no_lost_wakeup",
            pingpong_stress_no_lost_wakeup,
        ),
        (
            "traced_waiter_woken_while_held",
            traced_waiter_woken_while_held,
        ),
        ("sigkill_removes_waiter", || sigkill_removes_waiter(false)),
        ("sigkill_removes_held_waiter", || {
            sigkill_removes_waiter(true)
        }),
    ];
    // Warm-up: the threaded and traced cases once without the leak check,
    // so that lazily grown kernel tables (the run queue, wait lists,
    // session tables) reach their size before the baseline.
    let warm_up: [Check; 4] = [
        fill_run_queue,
        pingpong_stress_no_lost_wakeup,
        traced_waiter_woken_while_held,
        || sigkill_removes_waiter(true),
    ];
    for f in warm_up {
        if let Err(e) = f() {
            rt::println!("warm-up failed: {e}");
        }
    }
    let baseline = memory();
    for (name, f) in checks {
        if wanted(name) {
            t.run(name, f);
            // A failed check may leave sleepers behind: wake them, so the
            // next check starts with none.
            for w in [&WORD_A, &WORD_B] {
                let _ = futex_wake(w, i32::MAX);
            }
            let _ = raw(WIDE.as_ptr() as usize, FUTEX_WAKE, usize::MAX, 0, 0);
        }
    }
    if only.is_empty() {
        t.run("memory_back_to_baseline", || {
            let before = baseline?;
            let mut after = memory()?;
            for _ in 0..10 {
                if after == before {
                    return Ok(());
                }
                let _ = sleep_ms(5);
                after = memory()?;
            }
            Err(format!(
                "leak: sys:memory (frames_free, heap_used) before {before:?}, after {after:?}"
            ))
        });
    }
    t.finish()
}
