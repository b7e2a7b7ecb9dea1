//! The scheduler: a round-robin run queue of pids, the 10 ms time slice
//! from the timer, sleeping, and the switch between contexts (kernel stack,
//! FPU state, fs/gs bases, address space). One CPU; the kernel runs with
//! interrupts off, so a context only leaves the CPU where it calls
//! `switch_away` (to block or yield) or on the way back to user mode
//! (`preempt_if_due`, called by `usermode`). The scheduler calls neither
//! ptrace nor signals.

use alloc::collections::VecDeque;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::sync::{class, Mutex};

use crate::arch::switch::{read_user_bases, switch_stacks, write_user_bases};
use crate::context::{self, ArchState, Pid, State};
use crate::memory::paging;

static RUN_QUEUE: Mutex<VecDeque<Pid>, { class::RUN_QUEUE }> = Mutex::new(VecDeque::new());
static NEED_RESCHED: AtomicBool = AtomicBool::new(false);

/// Puts `pid` at the back of the run queue (if it can run).
fn enqueue(pid: Pid) {
    if pid == 0 {
        return;
    }
    let mut queue = RUN_QUEUE.lock();
    if !queue.contains(&pid) {
        queue.push_back(pid);
    }
}

/// Makes a blocked context runnable. Also used to interrupt a wait for a
/// signal: the waiter re-checks its condition and its signals.
pub fn wake(pid: Pid) {
    let Some(ctx) = context::get(pid) else { return };
    let mut c = ctx.lock();
    c.wakeups += 1;
    if c.state == State::Blocked {
        c.state = State::Runnable;
    }
    let runnable = c.state == State::Runnable && !c.ptrace.is_held();
    drop(c);
    if runnable {
        enqueue(pid);
    }
}

/// Lets a context run: puts it on the run queue (a new context, or one
/// ptrace releases).
pub fn start_context(pid: Pid) {
    enqueue(pid);
}

pub fn mark_current_blocked() {
    let ctx = context::current();
    let mut c = ctx.lock();
    if c.state == State::Runnable {
        c.state = State::Blocked;
    }
}

/// Gives the CPU to another runnable context, staying runnable.
pub fn yield_now() {
    enqueue(context::current_pid());
    switch_away();
}

/// Picks the next context to run. The idle context (pid 0) runs when the
/// queue holds nothing runnable.
fn pick_next() -> Pid {
    loop {
        let Some(pid) = RUN_QUEUE.lock().pop_front() else {
            return 0;
        };
        if let Some(ctx) = context::get(pid) {
            let c = ctx.lock();
            if c.state == State::Runnable && !c.ptrace.is_held() {
                return pid;
            }
        }
    }
}

/// Leaves the CPU to the next runnable context; returns when this context
/// is scheduled again (never, if it has exited).
pub fn switch_away() {
    crate::sync::assert_none_held("switch_away");
    let prev_pid = context::current_pid();
    let next_pid = pick_next();
    if next_pid == prev_pid {
        return;
    }
    let (Some(prev), Some(next)) = (context::get(prev_pid), context::get(next_pid)) else {
        return;
    };
    let prev_arch: *mut ArchState;
    let next_arch: *mut ArchState;
    {
        let mut p = prev.lock();
        let mut n = next.lock();
        prev_arch = &mut *p.arch;
        next_arch = &mut *n.arch;
        match &n.space {
            Some(space) => space.lock().activate(),
            None => paging::activate_kernel_tables(),
        }
    }
    // No `Arc` stays on this stack (a context that has exited is never
    // switched back to): `next` goes to the CPU's current context.
    drop(prev);
    context::set_current(next_pid, next);
    // SAFETY: the ArchState boxes live as long as their contexts, and a
    // context is only freed once reaped, never while it is current or
    // switched out mid-way. Interrupts are off and no lock is held across
    // the switch, so nothing else touches them meanwhile.
    unsafe {
        let pa = &mut *prev_arch;
        let na = &*next_arch;
        pa.fx.save();
        (pa.fs_base, pa.gs_base) = read_user_bases();
        na.fx.restore();
        write_user_bases(na.fs_base, na.gs_base);
        crate::arch::gdt::set_kernel_stack(na.kstack_top());
        crate::arch::percpu::set_kernel_stack(na.kstack_top());
        switch_stacks(&mut pa.rsp, na.rsp);
    }
}

/// Timer interrupt (from either mode): wake sleepers.
pub fn timer_tick() {
    wake_sleepers();
}

/// The timer interrupted user mode: the running context's slice is over;
/// it leaves the CPU on its way back (`preempt_if_due`).
pub fn end_time_slice() {
    NEED_RESCHED.store(true, Ordering::Relaxed);
}

/// On the way back to user mode: if the time slice ended, gives the CPU to
/// the next runnable context (staying runnable) and returns true once this
/// one runs again.
pub fn preempt_if_due() -> bool {
    if NEED_RESCHED.swap(false, Ordering::Relaxed) {
        yield_now();
        return true;
    }
    false
}

/// Sleepers are few: a scan of the table each tick is cheap enough.
fn wake_sleepers() {
    let now = crate::time::monotonic_ns();
    for ctx in context::all() {
        let due = {
            let mut c = ctx.lock();
            match c.wake_at {
                Some(t) if t <= now => {
                    c.wake_at = None;
                    Some(c.pid)
                }
                _ => None,
            }
        };
        if let Some(pid) = due {
            wake(pid);
        }
    }
}

/// What the boot thread does once user space exists (it is the idle
/// context, pid 0): run whatever is runnable, halt when nothing is.
pub fn idle_loop() -> ! {
    loop {
        if RUN_QUEUE.lock().is_empty() {
            x86_64::instructions::interrupts::enable_and_hlt();
            x86_64::instructions::interrupts::disable();
        } else {
            switch_away();
        }
    }
}
