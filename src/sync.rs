//! Ordered locks: every lock the written lock order covers (docs/design.md,
//! "Lock order") is a `Mutex<T, CLASS>` whose class is part of its type.
//! Each class has a level; a path may take a lock only while every lock it
//! already holds has a level at or below the new one's (outer locks first,
//! skipping levels is fine, going back up is not). The check runs in every
//! build, the kernel the tests boot included: taking a lock out of order
//! panics with a message naming both locks. Locks of one level may nest
//! (two contexts in a switch); a lock is never held across a context
//! switch (`assert_none_held`, called by the scheduler).
//!
//! What a CPU holds is counted per level in that CPU's per-CPU block
//! (`arch::percpu`), never in a global: ready for more CPUs.
//!
//! Locks outside the order (leaves that take no other lock: the heap, the
//! frame allocator, kernel-stack slots, the console) stay plain
//! `spin::Mutex`es.

use core::ops::{Deref, DerefMut};

use crate::arch::percpu;

/// The lock classes, outer first. The number is the index in `CLASSES`.
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
    /// caller checks its own signals and goes on a wait list).
    pub const OBJECT: u8 = 4;
    /// The pipe bytes charged to each user.
    pub const PIPE_CHARGES: u8 = 5;
    /// The table of contexts.
    pub const CONTEXTS: u8 = 6;
    /// One context.
    pub const CONTEXT: u8 = 7;
    /// A context's address space.
    pub const SPACE: u8 = 8;
    /// A context's descriptor table.
    pub const FILES: u8 = 9;
    /// A context's signal actions.
    pub const ACTIONS: u8 = 10;
    /// A `WaitCondition`'s waiter list.
    pub const WAITERS: u8 = 11;
    /// The run queue.
    pub const RUN_QUEUE: u8 = 12;
    /// Self-test only (`test=lock-order`): an outer and an inner lock.
    pub const TEST_OUTER: u8 = 13;
    pub const TEST_INNER: u8 = 14;
}

/// Name and level of each class (indexed by class).
const CLASSES: [(&str, u8); 15] = [
    ("description offset", 0),
    ("event queue registrations", 1),
    ("trace session table", 2),
    ("trace session", 3),
    ("object state (pipe, console input)", 4),
    ("pipe charges", 5),
    ("context table", 6),
    ("context", 7),
    ("address space", 8),
    ("descriptor table", 8),
    ("signal actions", 8),
    ("wait list", 9),
    ("run queue", 10),
    ("self-test outer lock", 14),
    ("self-test inner lock", 15),
];

/// How many levels there are (the per-CPU counters).
pub const LEVELS: usize = 16;

/// Per-CPU: which levels this CPU holds locks of, and how many of each.
#[derive(Debug)]
pub struct HeldLocks {
    /// Bit `l` set: at least one lock of level `l` is held.
    mask: u32,
    count: [u16; LEVELS],
    /// The class last taken at each level (for the panic message).
    last: [u8; LEVELS],
}

impl HeldLocks {
    pub const fn new() -> HeldLocks {
        HeldLocks {
            mask: 0,
            count: [0; LEVELS],
            last: [0; LEVELS],
        }
    }
}

/// The name and level of `class` (level 0 for an unknown class, which the
/// compile-time check in `Mutex::LEVEL` rules out).
const fn class_info(class: u8) -> (&'static str, usize) {
    let (name, level) = CLASSES[class as usize % CLASSES.len()];
    (name, level as usize % LEVELS)
}

/// Records that this CPU takes a lock of `class` (at `level`); panics,
/// naming both locks, if it already holds one of a higher level. The
/// common path is a shift and a test.
#[track_caller]
#[inline]
fn acquire(class: u8, level: usize) {
    let at = core::panic::Location::caller();
    percpu::with_held_locks(|held| {
        if held.mask >> (level + 1) != 0 {
            out_of_order(held, class, at);
        }
        held.mask |= 1 << level;
        held.count[level % LEVELS] += 1;
        held.last[level % LEVELS] = class;
    });
}

#[cold]
fn out_of_order(held: &HeldLocks, class: u8, at: &core::panic::Location<'_>) -> ! {
    let (name, level) = class_info(class);
    let outer = (u32::BITS - 1 - held.mask.leading_zeros()) as usize;
    let (held_name, held_level) = class_info(held.last[outer % LEVELS]);
    panic!(
        "lock order violated: taking `{name}` (level {level}) while holding \
         `{held_name}` (level {held_level}), at {at}"
    );
}

#[inline]
fn release(level: usize) {
    percpu::with_held_locks(|held| {
        let count = &mut held.count[level % LEVELS];
        *count -= 1;
        if *count == 0 {
            held.mask &= !(1 << level);
        }
    });
}

/// Panics if this CPU holds any ordered lock: nothing may be held across a
/// context switch (the next context would inherit it).
#[inline]
pub fn assert_none_held(at: &str) {
    percpu::with_held_locks(|held| {
        if held.mask != 0 {
            let level = held.mask.trailing_zeros() as usize;
            let (name, _) = class_info(held.last[level % LEVELS]);
            panic!("lock `{name}` held across a context switch ({at})");
        }
    });
}

/// A spin lock of class `CLASS` (see `class`).
pub struct Mutex<T, const CLASS: u8> {
    inner: spin::Mutex<T>,
}

impl<T, const CLASS: u8> Mutex<T, CLASS> {
    /// The class's level, checked at compile time to exist.
    const LEVEL: usize = {
        assert!((CLASS as usize) < CLASSES.len() && (CLASSES[CLASS as usize].1 as usize) < LEVELS);
        CLASSES[CLASS as usize].1 as usize
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
        acquire(CLASS, Self::LEVEL);
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
/// lock` ... while holding `self-test inner lock` ..."); returning is a
/// failure.
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
