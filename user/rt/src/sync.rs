//! Blocking synchronisation for threads sharing an address space, built on
//! the kernel's `futex`: the raw calls ([`futex_wait`], [`futex_wake`],
//! [`futex_requeue`]), a [`Mutex`] that sleeps instead of spinning, and a
//! [`Condvar`].

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

use syscall::error::{Result, ETIMEDOUT};
use syscall::flag::{FUTEX_REQUEUE, FUTEX_WAIT, FUTEX_WAKE};

/// `FUTEX_WAIT`: sleeps while `*word == val`, until a wake, a signal
/// (`EINTR`) or the relative `timeout` (`ETIMEDOUT`). `EAGAIN` if the word
/// already differs.
pub fn futex_wait(word: &AtomicI32, val: i32, timeout: Option<&syscall::TimeSpec>) -> Result<()> {
    let t = timeout.map_or(0, |t| t as *const syscall::TimeSpec as usize);
    // SAFETY: the kernel only reads the word and the TimeSpec, both of
    // which are borrowed for the call.
    unsafe { syscall::futex(word.as_ptr(), FUTEX_WAIT, val, t, core::ptr::null_mut()) }.map(|_| ())
}

/// `FUTEX_WAKE`: wakes up to `n` waiters on `word`; returns how many.
pub fn futex_wake(word: &AtomicI32, n: i32) -> Result<usize> {
    // SAFETY: the kernel only uses the word's address as a key.
    unsafe { syscall::futex(word.as_ptr(), FUTEX_WAKE, n, 0, core::ptr::null_mut()) }
}

/// `FUTEX_REQUEUE`: wakes up to `n` waiters on `word` and moves up to
/// `max_moved` of the others to `to`; returns the number woken.
pub fn futex_requeue(word: &AtomicI32, n: i32, max_moved: usize, to: &AtomicI32) -> Result<usize> {
    // SAFETY: the kernel only uses both words' addresses as keys.
    unsafe { syscall::futex(word.as_ptr(), FUTEX_REQUEUE, n, max_moved, to.as_ptr()) }
}

/// The lock word of a [`Mutex`]: 0 free, 1 locked, 2 locked with possible
/// sleepers (the unlocker must wake one). Usable on its own, as the
/// allocator does.
pub struct RawMutex {
    state: AtomicI32,
}

impl Default for RawMutex {
    fn default() -> Self {
        Self::new()
    }
}

impl RawMutex {
    /// A free lock.
    pub const fn new() -> Self {
        RawMutex {
            state: AtomicI32::new(0),
        }
    }

    /// Takes the lock, sleeping on the futex while another thread holds it.
    pub fn lock(&self) {
        if self
            .state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
    }

    /// Takes the lock marking it contended (2), so that the unlock wakes a
    /// sleeper: for waiters that may have been requeued onto this word.
    fn lock_contended(&self) {
        while self.state.swap(2, Ordering::Acquire) != 0 {
            // EAGAIN (the word changed), EINTR (a signal) and a wake all
            // mean: try again.
            let _ = futex_wait(&self.state, 2, None);
        }
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> bool {
        self.state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Releases the lock, waking one sleeper if there may be any.
    ///
    /// # Safety
    /// The caller holds the lock.
    pub unsafe fn unlock(&self) {
        if self.state.swap(0, Ordering::Release) == 2 {
            let _ = futex_wake(&self.state, 1);
        }
    }
}

/// A mutual-exclusion lock whose waiters sleep in the kernel.
pub struct Mutex<T> {
    raw: RawMutex,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard, and only one guard
// exists at a time (the lock); moving `T` between threads needs `T: Send`.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Mutex<T> {}

/// Access to a [`Mutex`]'s value; dropping it unlocks.
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    /// A free lock around `value`.
    pub const fn new(value: T) -> Self {
        Mutex {
            raw: RawMutex::new(),
            value: UnsafeCell::new(value),
        }
    }

    /// Waits for the lock and returns the guard.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock();
        MutexGuard { mutex: self }
    }

    /// The guard if the lock is free, without waiting.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        // Not `then_some`: a guard built eagerly would unlock on drop.
        self.raw.try_lock().then(|| MutexGuard { mutex: self })
    }

    /// The value, with the lock no longer needed.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held, and `&mut self` that no
        // other reference comes from this guard.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard holds the lock.
        unsafe { self.mutex.raw.unlock() }
    }
}

/// A condition variable: a sequence number bumped by every notify.
/// `notify_all` wakes one waiter and requeues the others onto the mutex
/// they wait with (no thundering herd). All waits on one `Condvar` must use
/// the same mutex.
pub struct Condvar {
    seq: AtomicI32,
    /// The lock word of the mutex waited with (set by the first wait).
    mutex: AtomicPtr<AtomicI32>,
}

impl Default for Condvar {
    fn default() -> Self {
        Self::new()
    }
}

impl Condvar {
    /// A condition variable nobody waits on.
    pub const fn new() -> Self {
        Condvar {
            seq: AtomicI32::new(0),
            mutex: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Unlocks the guard's mutex, sleeps until a notify (or a spurious
    /// wake), and locks it again. Callers loop on their own condition.
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_inner(guard, None).0
    }

    /// As [`Condvar::wait`], giving up after the relative `timeout`;
    /// also returns true if the wait timed out.
    pub fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: &syscall::TimeSpec,
    ) -> (MutexGuard<'a, T>, bool) {
        self.wait_inner(guard, Some(timeout))
    }

    fn wait_inner<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Option<&syscall::TimeSpec>,
    ) -> (MutexGuard<'a, T>, bool) {
        let mutex = guard.mutex;
        self.mutex.store(
            &mutex.raw.state as *const AtomicI32 as *mut AtomicI32,
            Ordering::Relaxed,
        );
        let seq = self.seq.load(Ordering::Relaxed);
        drop(guard);
        // A wake, EAGAIN (a notify came first) and EINTR all end the wait:
        // a spurious wake is allowed.
        let timed_out = matches!(
            futex_wait(&self.seq, seq, timeout),
            Err(e) if e.errno == ETIMEDOUT
        );
        // Possibly requeued onto the mutex: mark it contended so the
        // unlock wakes the next one.
        mutex.raw.lock_contended();
        (MutexGuard { mutex }, timed_out)
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.seq.fetch_add(1, Ordering::Release);
        let _ = futex_wake(&self.seq, 1);
    }

    /// Wakes every waiter: one now, the rest moved to the mutex word, each
    /// woken by the unlock before it.
    pub fn notify_all(&self) {
        self.seq.fetch_add(1, Ordering::Release);
        let m = self.mutex.load(Ordering::Relaxed);
        if m.is_null() {
            return;
        }
        // SAFETY: the kernel uses both addresses only as keys and reads
        // nothing through them; `m` is not dereferenced here (the mutex may
        // be gone if nobody waits any more: then nobody is moved).
        let moved = unsafe {
            syscall::futex(
                self.seq.as_ptr(),
                FUTEX_REQUEUE,
                1,
                i32::MAX as usize,
                m.cast::<i32>(),
            )
        };
        if moved.is_err() {
            let _ = futex_wake(&self.seq, i32::MAX);
        }
    }
}
