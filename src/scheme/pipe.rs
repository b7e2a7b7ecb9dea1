//! Pipes (`pipe2`, or opening `pipe:`): a bounded byte buffer with a read
//! end and a write end. Readers see end-of-file once every write end is
//! closed; writers get `EPIPE` once every read end is closed.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;

use spin::Mutex;
use syscall::data::Stat;
use syscall::error::*;
use syscall::flag::EventFlags;

use super::{fill_stat, Caller, Handle, Scheme, MODE_FIFO};
use crate::context::wait::WaitCondition;

/// Bytes a pipe holds before writers block.
pub const PIPE_CAPACITY: usize = 64 * 1024;

struct PipeState {
    data: VecDeque<u8>,
    readers: usize,
    writers: usize,
}

struct Pipe {
    state: Mutex<PipeState>,
    changed: WaitCondition,
}

/// Creates a pipe: (read end, write end).
pub fn new_pipe() -> (Arc<dyn Handle>, Arc<dyn Handle>) {
    let pipe = Arc::new(Pipe {
        state: Mutex::new(PipeState {
            data: VecDeque::new(),
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
        super::readiness_changed();
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
                let n = room.min(buf.len());
                state.data.extend(&buf[..n]);
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
