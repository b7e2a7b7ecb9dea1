//! Pipes (`pipe2`, or opening `pipe:`): a bounded byte buffer with a read
//! end and a write end. Readers see end-of-file once every write end is
//! closed; writers get `EPIPE` once every read end is closed.
//!
//! Also owns the accounting of pipe buffers: each pipe's buffer (its
//! allocated capacity, not only the bytes in it) is charged to the real uid
//! that created the pipe, and one user's pipes hold at most
//! `user_pipe_limit()` bytes; a write past that gets `EAGAIN` (even on a
//! blocking pipe: waiting could be for ever when the same user's other pipes
//! hold the bytes). A buffer that empties is freed.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;

use crate::sync::{class, Mutex};
use syscall::data::Stat;
use syscall::error::*;
use syscall::flag::EventFlags;

use super::{fill_stat, Caller, Handle, Scheme, MODE_FIFO};
use crate::context::wait::WaitCondition;

/// Bytes a pipe holds before writers block.
pub const PIPE_CAPACITY: usize = 64 * 1024;
/// A buffer never grows by less than this (a series of small writes does
/// not reallocate each time).
const MIN_GROWTH: usize = 4096;

/// Most pipe-buffer bytes one user's pipes may hold: a quarter of the
/// kernel heap (about 4 MiB with 128 MiB of RAM, 8 MiB with 512 MiB).
pub fn user_pipe_limit() -> usize {
    crate::memory::heap::size() / 4
}

/// Pipe-buffer bytes charged to each uid (entries at zero are removed).
static CHARGED: Mutex<BTreeMap<u32, usize>, { class::PIPE_CHARGES }> = Mutex::new(BTreeMap::new());

/// Bytes `uid`'s pipes may still grow by.
fn user_room(uid: u32) -> usize {
    let charged = CHARGED.lock().get(&uid).copied().unwrap_or(0);
    user_pipe_limit().saturating_sub(charged)
}

fn charge(uid: u32, bytes: usize) {
    if bytes > 0 {
        *CHARGED.lock().entry(uid).or_insert(0) += bytes;
    }
}

fn uncharge(uid: u32, bytes: usize) {
    let mut charged = CHARGED.lock();
    if let Some(total) = charged.get_mut(&uid) {
        *total = total.saturating_sub(bytes);
        if *total == 0 {
            charged.remove(&uid);
            if charged.is_empty() {
                // An empty map still holds its root node: free it too.
                *charged = BTreeMap::new();
            }
        }
    }
}

/// Pipe-buffer bytes `uid`'s pipes hold now (for `sys:limits` and tests).
pub fn user_pipe_bytes(uid: u32) -> usize {
    CHARGED.lock().get(&uid).copied().unwrap_or(0)
}

struct PipeState {
    data: VecDeque<u8>,
    /// The capacity of `data` charged to `owner`.
    charged: usize,
    readers: usize,
    writers: usize,
}

struct Pipe {
    /// Real uid of the creator: who the buffer is charged to.
    owner: u32,
    state: Mutex<PipeState, { class::OBJECT }>,
    changed: WaitCondition,
}

/// Creates a pipe, charged to `owner`: (read end, write end). The caller
/// admitted the few heap bytes this takes.
pub fn new_pipe(owner: u32) -> (Arc<dyn Handle>, Arc<dyn Handle>) {
    let pipe = Arc::new(Pipe {
        owner,
        state: Mutex::new(PipeState {
            data: VecDeque::new(),
            charged: 0,
            readers: 1,
            writers: 1,
        }),
        changed: WaitCondition::new(),
    });
    (Arc::new(ReadEnd(pipe.clone())), Arc::new(WriteEnd(pipe)))
}

impl Pipe {
    fn notify(&self) {
        self.changed.notify_all();
        crate::context::wait::readiness_changed();
    }

    /// Makes room in the buffer for up to `want` more bytes (at least one),
    /// within the owner's limit and the heap reserve; returns how many fit.
    /// `EAGAIN` when the owner's limit leaves no room, `ENOMEM` when the
    /// heap does not.
    fn make_room(&self, state: &mut PipeState, want: usize) -> Result<usize> {
        let len = state.data.len();
        let capacity = state.data.capacity();
        if len + want <= capacity {
            return Ok(want);
        }
        let target = (len + want)
            .max(capacity.saturating_mul(2))
            .clamp(MIN_GROWTH, PIPE_CAPACITY)
            .min(state.charged + user_room(self.owner));
        if target <= len.max(capacity) {
            if capacity > len {
                return Ok(capacity - len);
            }
            return Err(Error::new(EAGAIN));
        }
        // Growing copies into a new buffer before the old one is freed.
        crate::memory::heap::admit(target + 512)?;
        state
            .data
            .try_reserve_exact(target - len)
            .map_err(|_| Error::new(ENOMEM))?;
        let now = state.data.capacity();
        if now > state.charged {
            charge(self.owner, now - state.charged);
            state.charged = now;
        }
        Ok(want.min(now - len))
    }

    /// Frees an emptied buffer and gives its charge back.
    fn release_if_empty(&self, state: &mut PipeState) {
        if state.data.is_empty() && state.charged > 0 {
            state.data = VecDeque::new();
            uncharge(self.owner, core::mem::take(&mut state.charged));
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        let charged = core::mem::take(&mut self.state.get_mut().charged);
        uncharge(self.owner, charged);
    }
}

pub struct PipeScheme;

impl Scheme for PipeScheme {
    /// Opening `pipe:` itself is not how pipes are made: use `pipe2`.
    fn open(&self, _path: &str, _flags: usize, _caller: Caller) -> Result<Arc<dyn Handle>> {
        Err(Error::new(ENOENT))
    }
}

struct ReadEnd(Arc<Pipe>);
struct WriteEnd(Arc<Pipe>);

impl Drop for ReadEnd {
    fn drop(&mut self) {
        self.0.state.lock().readers -= 1;
        self.0.notify();
    }
}

impl Drop for WriteEnd {
    fn drop(&mut self) {
        self.0.state.lock().writers -= 1;
        self.0.notify();
    }
}

impl Handle for ReadEnd {
    fn read(&self, buf: &mut [u8], _pos: &mut u64, nonblock: bool) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let mut state = self.0.state.lock();
            if !state.data.is_empty() {
                let n = buf.len().min(state.data.len());
                for (dst, src) in buf.iter_mut().zip(state.data.drain(..n)) {
                    *dst = src;
                }
                self.0.release_if_empty(&mut state);
                drop(state);
                self.0.notify();
                return Ok(n);
            }
            if state.writers == 0 {
                return Ok(0);
            }
            super::may_block(nonblock)?;
            self.0.changed.wait(state);
        }
    }

    fn path(&self) -> String {
        String::from("pipe:")
    }

    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_FIFO, self.0.state.lock().data.len() as u64);
        Ok(())
    }

    fn readiness(&self) -> EventFlags {
        let state = self.0.state.lock();
        if !state.data.is_empty() || state.writers == 0 {
            EventFlags::EVENT_READ
        } else {
            EventFlags::empty()
        }
    }
}

impl Handle for WriteEnd {
    fn write(&self, buf: &[u8], _pos: &mut u64, nonblock: bool) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let mut state = self.0.state.lock();
            if state.readers == 0 {
                return Err(Error::new(EPIPE));
            }
            let room = PIPE_CAPACITY - state.data.len();
            if room > 0 {
                let n = self.0.make_room(&mut state, room.min(buf.len()))?;
                state.data.extend(buf.iter().take(n));
                drop(state);
                self.0.notify();
                return Ok(n);
            }
            super::may_block(nonblock)?;
            self.0.changed.wait(state);
        }
    }

    fn path(&self) -> String {
        String::from("pipe:")
    }

    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_FIFO, self.0.state.lock().data.len() as u64);
        Ok(())
    }

    fn readiness(&self) -> EventFlags {
        let state = self.0.state.lock();
        if state.data.len() < PIPE_CAPACITY || state.readers == 0 {
            EventFlags::EVENT_WRITE
        } else {
            EventFlags::empty()
        }
    }
}
