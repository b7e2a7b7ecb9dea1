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

/// Per-CPU: how many locks of each level this CPU holds.
#[derive(Debug)]
pub struct HeldLocks {
    count: [u16; LEVELS],
    /// The class last taken at each level (for the panic message).
    last: [u8; LEVELS],
}

impl HeldLocks {
    pub const fn new() -> HeldLocks {
        HeldLocks {
            count: [0; LEVELS],
            last: [0; LEVELS],
        }
    }
}

fn class_info(class: u8) -> (&'static str, usize) {
    let (name, level) = CLASSES
        .get(class as usize)
        .copied()
        .unwrap_or(("unknown", 0));
    (name, level as usize)
}

/// Records that this CPU takes a lock of `class`; panics, naming both
/// locks, if it already holds one of a higher level.
#[track_caller]
fn acquire(class: u8) {
    let (name, level) = class_info(class);
    let at = core::panic::Location::caller();
    percpu::with_held_locks(|held| {
        if let Some(outer) = (level + 1..LEVELS).find(|&l| held.count[l] > 0) {
            let (held_name, held_level) = class_info(held.last[outer]);
            panic!(
                "lock order violated: taking `{name}` (level {level}) while holding \
                 `{held_name}` (level {held_level}), at {at}"
            );
        }
        held.count[level] += 1;
        held.last[level] = class;
    });
}

fn release(class: u8) {
    let (_, level) = class_info(class);
    percpu::with_held_locks(|held| held.count[level] -= 1);
}

/// Panics if this CPU holds any ordered lock: nothing may be held across a
/// context switch (the next context would inherit it).
pub fn assert_none_held(at: &str) {
    percpu::with_held_locks(|held| {
        if let Some(level) = (0..LEVELS).find(|&l| held.count[l] > 0) {
            let (name, _) = class_info(held.last[level]);
            panic!("lock `{name}` held across a context switch ({at})");
        }
    });
}

/// A spin lock of class `CLASS` (see `class`).
pub struct Mutex<T, const CLASS: u8> {
    inner: spin::Mutex<T>,
}

impl<T, const CLASS: u8> Mutex<T, CLASS> {
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
        acquire(CLASS);
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
        release(CLASS);
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
