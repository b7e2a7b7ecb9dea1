//! `futex`: blocking on a word of user memory, as `redox_syscall` 0.2.16
//! defines it (`FUTEX_WAIT`, `FUTEX_WAKE`, `FUTEX_REQUEUE`, `FUTEX_WAIT64`).
//! Owns the table of waiter records.
//!
//! A futex word is identified by its **physical address** (the frame the
//! page table maps it to, plus the offset), found by walking the caller's
//! page tables. Threads sharing an address space (`CLONE_VM`) therefore
//! meet on the same key, and so would two processes sharing a frame
//! through a shared mapping, whatever the virtual addresses.
//!
//! Waiter records are one global table in arrival order (the oldest waiter
//! is woken first). A context waits on at most one futex at a time (it is
//! blocked while it waits), so the table never holds more records than
//! there are contexts; it grows fallibly against the heap reserve and is
//! freed whenever it empties.
//!
//! A waiter finds out whether it was woken by looking for its own record:
//! a `FUTEX_WAKE` removes the record (and marks the context runnable) in
//! the same step, so the wake is kept even if the waiter is held at a
//! ptrace stop, interrupted by a signal at the same moment, or woken by
//! something else first. The value check and the insertion of the record
//! happen with no switch in between (one CPU, interrupts off in the
//! kernel), so a wake between them cannot be missed.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use spin::Mutex;
use syscall::error::*;
use syscall::flag::{FUTEX_REQUEUE, FUTEX_WAIT, FUTEX_WAIT64, FUTEX_WAKE};

use super::usermem::read_duration_ns;
use crate::context::{self, signal, Pid};
use crate::memory::heap;
use crate::memory::paging::USER_END;
use crate::memory::PAGE_SIZE;

/// One context blocked in `FUTEX_WAIT`/`FUTEX_WAIT64`.
#[derive(Clone, Copy)]
struct Waiter {
    /// Physical address of the futex word it waits on (a requeue changes it).
    key: u64,
    pid: Pid,
}

/// Every waiter, oldest first.
static WAITERS: Mutex<Vec<Waiter>> = Mutex::new(Vec::new());

/// Most waiter records there can be: one per context.
pub fn max_waiters() -> usize {
    context::max_contexts()
}

/// Records currently in the table (for tests through `sys:limits`).
pub fn waiters() -> usize {
    WAITERS.lock().len()
}

/// The futex word at user address `addr` of the current address space:
/// its physical address (the key) and a direct-map pointer to it.
/// `align` is the word size; the word never crosses a page.
fn locate(addr: usize, align: usize) -> Result<(u64, *mut u8)> {
    if !addr.is_multiple_of(align) {
        return Err(Error::new(EINVAL));
    }
    if addr as u64 >= USER_END {
        return Err(Error::new(EFAULT));
    }
    let space = context::current()
        .lock()
        .space
        .clone()
        .ok_or(Error::new(EFAULT))?;
    let t = space
        .lock()
        .translate(addr as u64)
        .ok_or(Error::new(EFAULT))?;
    let offset = addr as u64 % PAGE_SIZE;
    // SAFETY: the frame is mapped in the caller's space and direct-mapped;
    // `offset + align` stays inside it because `addr` is aligned.
    let ptr = unsafe { t.frame.as_ptr().add(offset as usize) };
    Ok((t.frame.addr() + offset, ptr))
}

/// `futex(addr, op, val, val2, addr2)`.
///
/// - `FUTEX_WAIT`: if the 32-bit word at `addr` (4-byte aligned) equals
///   `val` (its low 32 bits), sleeps until a `FUTEX_WAKE` on the word, a
///   signal (`EINTR`) or the timeout: `val2` is 0 or points at a relative
///   `TimeSpec` (`ETIMEDOUT`). A different value: `EAGAIN`. Returns 0.
/// - `FUTEX_WAIT64`: the same with the 64-bit word (8-byte aligned) and all
///   of `val`.
/// - `FUTEX_WAKE`: wakes up to `val` waiters, oldest first; returns how many.
/// - `FUTEX_REQUEUE`: wakes up to `val` waiters and moves up to `val2` of
///   the rest to the word at `addr2`; returns the number woken, as Redox
///   does (Linux returns woken plus moved).
///
/// Other ops: `EINVAL`, as Redox.
pub fn futex(addr: usize, op: usize, val: usize, val2: usize, addr2: usize) -> Result<usize> {
    match op {
        FUTEX_WAIT | FUTEX_WAIT64 => wait(addr, op == FUTEX_WAIT64, val, val2),
        FUTEX_WAKE => {
            let (key, _) = locate(addr, 4)?;
            Ok(wake(key, val, None))
        }
        FUTEX_REQUEUE => {
            let (key, _) = locate(addr, 4)?;
            let (key2, _) = locate(addr2, 4)?;
            Ok(wake(key, val, Some((key2, val2))))
        }
        _ => Err(Error::new(EINVAL)),
    }
}

fn wait(addr: usize, wide: bool, val: usize, timeout: usize) -> Result<usize> {
    let (key, ptr) = locate(addr, if wide { 8 } else { 4 })?;
    let deadline = match timeout {
        0 => None,
        t => Some(crate::time::monotonic_ns().saturating_add(read_duration_ns(t)?)),
    };
    // SAFETY: `ptr` points at an aligned word of a frame mapped in this
    // address space (see `locate`); the frame stays mapped while this call
    // runs (nothing else runs until the switch below). User code may write
    // the word at any time, hence the atomic load.
    let current = unsafe {
        if wide {
            (*(ptr as *const AtomicU64)).load(Ordering::SeqCst)
        } else {
            u64::from((*(ptr as *const AtomicU32)).load(Ordering::SeqCst))
        }
    };
    let expected = if wide {
        val as u64
    } else {
        u64::from(val as u32)
    };
    if current != expected {
        return Err(Error::new(EAGAIN));
    }
    let pid = context::current_pid();
    {
        let mut table = WAITERS.lock();
        if table.len() >= max_waiters() {
            // Cannot happen (one record per context), but never grow past it.
            return Err(Error::new(EAGAIN));
        }
        if table.len() == table.capacity() {
            let more = table.capacity().max(4);
            heap::admit(more * core::mem::size_of::<Waiter>())?;
            table.try_reserve(more).map_err(|_| Error::new(ENOMEM))?;
        }
        table.push(Waiter { key, pid });
    }
    // From here until the record is gone, a wake for this word finds it.
    loop {
        if !WAITERS.lock().iter().any(|w| w.pid == pid) {
            return Ok(0);
        }
        if signal::current_has_pending() {
            remove(pid);
            return Err(Error::new(EINTR));
        }
        if deadline.is_some_and(|d| crate::time::monotonic_ns() >= d) {
            remove(pid);
            return Err(Error::new(ETIMEDOUT));
        }
        context::current().lock().wake_at = deadline;
        crate::sched::mark_current_blocked();
        crate::sched::switch_away();
        context::current().lock().wake_at = None;
    }
}

/// Wakes up to `n` waiters on `key`, oldest first, then moves up to `m`
/// of the remaining ones to `key2` (`requeue = Some((key2, m))`), behind
/// the waiters already there. Returns the number woken. Allocates nothing.
fn wake(key: u64, n: usize, requeue: Option<(u64, usize)>) -> usize {
    let mut woken = 0;
    while woken < n {
        // The table lock is not held while waking (lock order: wait lists
        // come after contexts and the run queue's users).
        let pid = {
            let mut table = WAITERS.lock();
            let Some(i) = table.iter().position(|w| w.key == key) else {
                break;
            };
            let pid = table.remove(i).pid;
            free_if_empty(&mut table);
            pid
        };
        crate::sched::wake(pid);
        woken += 1;
    }
    if let Some((key2, m)) = requeue {
        let mut table = WAITERS.lock();
        let (mut i, mut moved) = (0, 0);
        for _ in 0..table.len() {
            if moved < m && table.get(i).is_some_and(|w| w.key == key) {
                // Same length after the push: no allocation.
                let mut w = table.remove(i);
                w.key = key2;
                table.push(w);
                moved += 1;
            } else {
                i += 1;
            }
        }
    }
    woken
}

fn free_if_empty(table: &mut Vec<Waiter>) {
    if table.is_empty() {
        *table = Vec::new();
    }
}

/// Drops the record of `pid`, if any.
fn remove(pid: Pid) {
    let mut table = WAITERS.lock();
    table.retain(|w| w.pid != pid);
    free_if_empty(&mut table);
}

/// Exit hook: a context that dies (`SIGKILL` included) leaves no record.
pub fn on_exit(pid: Pid) {
    remove(pid);
}
