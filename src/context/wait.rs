//! `WaitCondition`: a list of contexts blocked until something changes.
//! The waiter is enqueued before the lock it was given is released, so a
//! notification sent right after the release cannot be missed. Waiters
//! always loop on their own condition (and on pending signals): a wake-up is
//! a hint, not a promise. Also the two kernel-wide conditions: a child
//! changed (`waitpid`) and a handle's readiness changed (`event:`).

use alloc::vec::Vec;

use crate::sync::{class, Mutex};

use super::{current_pid, Pid};
use crate::sched;

/// Notified whenever a child exits or stops: `waitpid` waits here.
pub static CHILD_EVENTS: WaitCondition = WaitCondition::new();

/// Notified whenever a handle's readiness may have changed (a pipe, the
/// console, a trace session): `event:` queues wait here.
pub static READINESS_CHANGED: WaitCondition = WaitCondition::new();

/// Wakes every `event:` queue waiting for a change of readiness.
pub fn readiness_changed() {
    READINESS_CHANGED.notify_all();
}

pub struct WaitCondition {
    waiters: Mutex<Vec<Pid>, { class::WAITERS }>,
}

impl Default for WaitCondition {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitCondition {
    pub const fn new() -> WaitCondition {
        WaitCondition {
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// Blocks the current context until `notify_all` (or a signal) wakes it;
    /// `guard` is released only once the context is on the list.
    pub fn wait<G>(&self, guard: G) {
        let pid = current_pid();
        self.waiters.lock().push(pid);
        sched::mark_current_blocked();
        drop(guard);
        sched::switch_away();
        self.waiters.lock().retain(|&p| p != pid);
    }

    /// Like `wait` with no lock to release.
    pub fn wait_unlocked(&self) {
        let pid = current_pid();
        self.waiters.lock().push(pid);
        sched::mark_current_blocked();
        sched::switch_away();
        self.waiters.lock().retain(|&p| p != pid);
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        let waiters = core::mem::take(&mut *self.waiters.lock());
        for pid in waiters {
            sched::wake(pid);
        }
    }
}
