//! `event:`: readiness queues. Writing an `Event { id: fd, flags, data }`
//! registers interest in descriptor `fd` of the writer (flags 0 removes it);
//! reading blocks until a registered handle is ready and returns one `Event`
//! per ready handle, with the ready flags and the registered `data`.
//! Readiness is level-triggered: a handle already ready when it is
//! registered is reported at once.
//!
//! Registrations are bounded: at most `MAX_PER_QUEUE` in one queue and
//! `MAX_PER_PROCESS` made by one process (counted in its descriptor table,
//! given back when a registration goes). A write that would pass either
//! gets `EAGAIN` for its first record, or a short count (the records
//! before the refused one are registered).

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::sync::{class, Mutex};
use syscall::data::{Event, Stat};
use syscall::error::*;
use syscall::flag::EventFlags;

use super::{fill_stat, Caller, Description, Handle, Scheme, MODE_CHR};
use crate::context::wait::READINESS_CHANGED;

pub const EVENT_SIZE: usize = core::mem::size_of::<Event>();
const _: () = assert!(EVENT_SIZE == 24);

/// Most registrations in one queue (there is one per descriptor number).
pub const MAX_PER_QUEUE: usize = 512;
/// Most registrations one process may have in all its queues.
pub const MAX_PER_PROCESS: usize = 4096;

pub struct EventScheme;

impl Scheme for EventScheme {
    fn open(&self, _path: &str, _flags: usize, _caller: Caller) -> Result<Arc<dyn Handle>> {
        Ok(Arc::new(EventQueue {
            registrations: Mutex::new(Vec::new()),
        }))
    }
}

struct Registration {
    id: usize,
    /// Weak: registering must not keep a closed descriptor's object alive.
    description: Weak<Description>,
    flags: EventFlags,
    data: usize,
    /// The registering process's count, given back on drop.
    owner_count: Arc<AtomicUsize>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.owner_count.fetch_sub(1, Ordering::Relaxed);
    }
}

struct EventQueue {
    registrations: Mutex<Vec<Registration>, { class::EVENT_QUEUE }>,
}

/// Word `index` of a registration record (`EINVAL` if it is short).
fn word(bytes: &[u8], index: usize) -> Result<usize> {
    crate::syscall::usermem::le_u64(bytes, index)
        .map(|w| w as usize)
        .ok_or(Error::new(EINVAL))
}

impl EventQueue {
    /// Up to `max` ready events (`ENOMEM` if the heap has no room for
    /// the list).
    fn ready_events(&self, max: usize) -> Result<Vec<Event>> {
        let mut regs = self.registrations.lock();
        regs.retain(|r| r.description.strong_count() > 0);
        let mut events = Vec::new();
        events
            .try_reserve_exact(max.min(regs.len()))
            .map_err(|_| Error::new(ENOMEM))?;
        for r in regs.iter() {
            if events.len() == max {
                break;
            }
            let Some(description) = r.description.upgrade() else {
                continue;
            };
            let ready = description.handle.readiness() & r.flags;
            if !ready.is_empty() {
                events.push(Event {
                    id: r.id,
                    flags: ready,
                    data: r.data,
                });
            }
        }
        Ok(events)
    }

    /// Registers (or with empty `flags` removes) interest in `id`.
    fn register(
        &self,
        id: usize,
        description: &Arc<Description>,
        flags: EventFlags,
        data: usize,
        owner_count: &Arc<AtomicUsize>,
    ) -> Result<()> {
        let mut regs = self.registrations.lock();
        regs.retain(|r| r.id != id && r.description.strong_count() > 0);
        if flags.is_empty() {
            return Ok(());
        }
        if regs.len() >= MAX_PER_QUEUE {
            return Err(Error::new(EAGAIN));
        }
        // Claim one of the process's registrations (given back on drop).
        owner_count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < MAX_PER_PROCESS).then_some(n + 1)
            })
            .map_err(|_| Error::new(EAGAIN))?;
        let registration = Registration {
            id,
            description: Arc::downgrade(description),
            flags,
            data,
            owner_count: owner_count.clone(),
        };
        // Growing the list copies it into a new block first.
        let growth = if regs.len() == regs.capacity() {
            regs.capacity().max(4) * 2 * core::mem::size_of::<Registration>()
        } else {
            0
        };
        if crate::memory::heap::admit(growth + 256).is_err() || regs.try_reserve(1).is_err() {
            // Dropping it gives the count back.
            drop(registration);
            return Err(Error::new(ENOMEM));
        }
        regs.push(registration);
        Ok(())
    }
}

impl Handle for EventQueue {
    fn read(&self, buf: &mut [u8], _pos: &mut u64, nonblock: bool) -> Result<usize> {
        let max = buf.len() / EVENT_SIZE;
        if max == 0 {
            return Err(Error::new(EINVAL));
        }
        loop {
            let events = self.ready_events(max)?;
            if !events.is_empty() {
                for (record, e) in buf.chunks_exact_mut(EVENT_SIZE).zip(&events) {
                    let bytes = e.id.to_le_bytes().into_iter();
                    let bytes = bytes.chain(e.flags.bits().to_le_bytes());
                    let bytes = bytes.chain(e.data.to_le_bytes());
                    for (dst, src) in record.iter_mut().zip(bytes) {
                        *dst = src;
                    }
                }
                return Ok(events.len() * EVENT_SIZE);
            }
            super::may_block(nonblock)?;
            READINESS_CHANGED.wait_unlocked();
        }
    }

    fn write(&self, buf: &[u8], _pos: &mut u64, _nonblock: bool) -> Result<usize> {
        if buf.is_empty() || !buf.len().is_multiple_of(EVENT_SIZE) {
            return Err(Error::new(EINVAL));
        }
        let files = crate::context::current().lock().files.clone();
        let owner_count = files.lock().event_registrations();
        let mut done = 0;
        for record in buf.chunks_exact(EVENT_SIZE) {
            let result = (|| {
                let (id, flags, data) = (word(record, 0)?, word(record, 1)?, word(record, 2)?);
                let flags = EventFlags::from_bits(flags).ok_or(Error::new(EINVAL))?;
                let description = files.lock().get(id)?;
                if description.handle.is_event_queue() {
                    return Err(Error::new(EINVAL));
                }
                self.register(id, &description, flags, data, &owner_count)
            })();
            match result {
                Ok(()) => done += EVENT_SIZE,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(done)
    }

    fn path(&self) -> String {
        String::from("event:")
    }

    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_CHR, 0);
        Ok(())
    }

    fn is_event_queue(&self) -> bool {
        true
    }

    fn readiness(&self) -> EventFlags {
        if self.ready_events(1).map_or(true, |e| e.is_empty()) {
            EventFlags::empty()
        } else {
            EventFlags::EVENT_READ
        }
    }
}
