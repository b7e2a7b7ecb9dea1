//! `event:`: readiness queues. Writing an `Event { id: fd, flags, data }`
//! registers interest in descriptor `fd` of the writer (flags 0 removes it);
//! reading blocks until a registered handle is ready and returns one `Event`
//! per ready handle, with the ready flags and the registered `data`.
//! Readiness is level-triggered: a handle already ready when it is
//! registered is reported at once.

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use spin::Mutex;
use syscall::data::{Event, Stat};
use syscall::error::*;
use syscall::flag::EventFlags;

use super::{fill_stat, Caller, Description, Handle, Scheme, MODE_CHR, READINESS_CHANGED};

pub const EVENT_SIZE: usize = core::mem::size_of::<Event>();
const _: () = assert!(EVENT_SIZE == 24);

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
}

struct EventQueue {
    registrations: Mutex<Vec<Registration>>,
}

fn word(bytes: &[u8], index: usize) -> usize {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[index * 8..index * 8 + 8]);
    usize::from_le_bytes(w)
}

impl EventQueue {
    fn ready_events(&self, max: usize) -> Vec<Event> {
        let mut regs = self.registrations.lock();
        regs.retain(|r| r.description.strong_count() > 0);
        let mut events = Vec::new();
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
        events
    }
}

impl Handle for EventQueue {
    fn read(&self, buf: &mut [u8], _pos: &mut u64, nonblock: bool) -> Result<usize> {
        let max = buf.len() / EVENT_SIZE;
        if max == 0 {
            return Err(Error::new(EINVAL));
        }
        loop {
            let events = self.ready_events(max);
            if !events.is_empty() {
                for (i, e) in events.iter().enumerate() {
                    let at = i * EVENT_SIZE;
                    buf[at..at + 8].copy_from_slice(&e.id.to_le_bytes());
                    buf[at + 8..at + 16].copy_from_slice(&e.flags.bits().to_le_bytes());
                    buf[at + 16..at + 24].copy_from_slice(&e.data.to_le_bytes());
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
        for record in buf.chunks_exact(EVENT_SIZE) {
            let (id, flags, data) = (word(record, 0), word(record, 1), word(record, 2));
            let flags = EventFlags::from_bits(flags).ok_or(Error::new(EINVAL))?;
            let description = files.lock().get(id)?;
            if description.handle.is_event_queue() {
                return Err(Error::new(EINVAL));
            }
            let mut regs = self.registrations.lock();
            regs.retain(|r| r.id != id);
            if !flags.is_empty() {
                regs.push(Registration {
                    id,
                    description: Arc::downgrade(&description),
                    flags,
                    data,
                });
            }
        }
        Ok(buf.len())
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
        if self.ready_events(1).is_empty() {
            EventFlags::empty()
        } else {
            EventFlags::EVENT_READ
        }
    }
}
