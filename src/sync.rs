//! Ordered locks: every lock the written lock order covers (docs/design.md,
//! "Lock order") is a `Mutex<T, LEVEL>` whose level is part of its type
//! (`class`). A path may take a lock only while every lock it already
//! holds has a level at or below the new one's (outer locks first,
//! skipping levels is fine, going back up is not). The check runs in every
//! build, the kernel the tests boot included: taking a lock out of order
//! panics with a message naming both locks. Locks of one level may nest
//! (two contexts in a switch); a lock is never held across a context
//! switch (`assert_none_held`, called by the scheduler).
//!
//! What a CPU holds is counted per level (three bits a level: at most 7
//! nested locks of one level, two in practice) in that CPU's per-CPU block
//! (`arch::percpu`), never in a global: ready for more CPUs.
//!
//! Locks outside the order (leaves that take no other lock: the heap, the
//! frame allocator, kernel-stack slots, the console) stay plain
//! `spin::Mutex`es.

use core::ops::{Deref, DerefMut};

use crate::arch::percpu;

/// The lock levels, outer first: a lock's level is its class (one kind of
/// lock per level, so the checker names the exact locks).
pub mod class {
    /// A description's file offset (held across the handle's `seek`).
    pub const OFFSET: u8 = 0;
    /// An `event:` queue's registrations (held while it asks handles for
    /// their readiness).
    pub const EVENT_QUEUE: u8 = 1;
    /// The table of trace sessions.
    pub const SESSIONS: u8 = 2;
    /// One trace session.
    pub const SESSION: u8 = 3;
    /// The state of one object: a pipe, a console's input (held while the
    /// caller checks its own signals and goes on a wait list), a tmpfs
    /// handle's name (held while it asks the node table).
    pub const OBJECT: u8 = 4;
    /// The tmpfs node table (takes nothing but the heap).
    pub const TMPFS_NODES: u8 = 5;
    /// The pipe bytes charged to each user.
    pub const PIPE_CHARGES: u8 = 6;
    /// The table of contexts.
    pub const CONTEXTS: u8 = 7;
    /// One context.
    pub const CONTEXT: u8 = 8;
    /// A context's address space.
    pub const SPACE: u8 = 9;
    /// A context's descriptor table.
    pub const FILES: u8 = 10;
    /// A context's signal actions.
    pub const ACTIONS: u8 = 11;
    /// A context's working directory and umask (shared by `CLONE_FS`).
    pub const FS_STATE: u8 = 12;
    /// A `WaitCondition`'s waiter list.
    pub const WAITERS: u8 = 13;
    /// The run queue.
    pub const RUN_QUEUE: u8 = 14;
    /// Self-test only (`test=lock-order`): an outer and an inner lock.
    pub const TEST_OUTER: u8 = 15;
    pub const TEST_INNER: u8 = 16;
}

/// The name of each level.
const NAMES: [&str; LEVELS] = [
    "description offset",
    "event queue registrations",
    "trace session table",
    "trace session",
    "object state (pipe, console input, tmpfs handle name)",
    "tmpfs node table",
    "pipe charges",
    "context table",
    "context",
    "address space",
    "descriptor table",
    "signal actions",
    "working directory and umask",
    "wait list",
    "run queue",
    "self-test outer lock",
    "self-test inner lock",
];

/// How many levels there are.
pub const LEVELS: usize = 17;

/// Bits per level in `HeldLocks` (up to 7 nested locks of one level).
const BITS: usize = 3;

/// Per-CPU: how many locks of each level this CPU holds, three bits per
/// level (level `l` in bits `3l..3l+3`). Checking, counting and releasing
/// are each a shift and one arithmetic operation.
#[derive(Debug)]
pub struct HeldLocks(u64);

impl HeldLocks {
    pub const fn new() -> HeldLocks {
        HeldLocks(0)
    }
}

fn name(level: usize) -> &'static str {
    NAMES.get(level).copied().unwrap_or("unknown")
}

/// Records that this CPU takes a lock of `level`; panics, naming both
/// locks, if it already holds one of a higher level.
#[track_caller]
#[inline]
fn acquire(level: usize) {
    let at = core::panic::Location::caller();
    percpu::with_held_locks(|held| {
        if held.0 >> (BITS * (level + 1)) != 0 {
            out_of_order(held.0, level, at);
        }
        held.0 += 1 << (BITS * level);
    });
}

#[cold]
fn out_of_order(held: u64, level: usize, at: &core::panic::Location<'_>) -> ! {
    // The innermost level held: the highest non-zero group of bits.
    let outer = (u64::BITS - 1 - held.leading_zeros()) as usize / BITS;
    panic!(
        "lock order violated: taking `{}` (level {level}) while holding `{}` (level {outer}), at {at}",
        name(level),
        name(outer)
    );
}

#[inline]
fn release(level: usize) {
    percpu::with_held_locks(|held| held.0 -= 1 << (BITS * level));
}

/// Panics if this CPU holds any ordered lock: nothing may be held across a
/// context switch (the next context would inherit it).
#[inline]
pub fn assert_none_held(at: &str) {
    percpu::with_held_locks(|held| {
        if held.0 != 0 {
            let level = held.0.trailing_zeros() as usize / BITS;
            panic!("lock `{}` held across a context switch ({at})", name(level));
        }
    });
}

/// A spin lock at level `CLASS` (see `class`).
pub struct Mutex<T, const CLASS: u8> {
    inner: spin::Mutex<T>,
}

impl<T, const CLASS: u8> Mutex<T, CLASS> {
    /// The class's level, checked at compile time to exist.
    const LEVEL: usize = {
        assert!((CLASS as usize) < LEVELS && LEVELS * BITS <= 64);
        CLASS as usize
    };

    pub const fn new(value: T) -> Self {
        Mutex {
            inner: spin::Mutex::new(value),
        }
    }

    /// The value, through a unique reference (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }

    /// Takes the lock, checking the order first.
    #[track_caller]
    pub fn lock(&self) -> MutexGuard<'_, T, CLASS> {
        acquire(Self::LEVEL);
        MutexGuard {
            inner: self.inner.lock(),
        }
    }
}

impl<T: Default, const CLASS: u8> Default for Mutex<T, CLASS> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

/// Holds the lock; releasing it updates this CPU's count.
pub struct MutexGuard<'a, T, const CLASS: u8> {
    inner: spin::MutexGuard<'a, T>,
}

impl<T, const CLASS: u8> Deref for MutexGuard<'_, T, CLASS> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T, const CLASS: u8> DerefMut for MutexGuard<'_, T, CLASS> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T, const CLASS: u8> Drop for MutexGuard<'_, T, CLASS> {
    fn drop(&mut self) {
        release(Mutex::<T, CLASS>::LEVEL);
    }
}

/// Self-test `lock-order`: takes the outer test lock inside the inner one.
/// The checker must panic ("lock order violated: taking `self-test outer
/// lock` (level 13) while holding `self-test inner lock` (level 14) ...");
/// returning is a failure.
pub fn selftest_break_order() -> Result<(), alloc::string::String> {
    static OUTER: Mutex<(), { class::TEST_OUTER }> = Mutex::new(());
    static INNER: Mutex<(), { class::TEST_INNER }> = Mutex::new(());
    // The right order passes.
    {
        let _outer = OUTER.lock();
        let _inner = INNER.lock();
    }
    let _inner = INNER.lock();
    let _outer = OUTER.lock();
    Err(alloc::string::String::from(
        "took the outer lock inside the inner one and the checker let it pass",
    ))
}
