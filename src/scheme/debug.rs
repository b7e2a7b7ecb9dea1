//! `debug:`: the console. Writes go to COM1; reads take bytes received on
//! COM1, which the timer tick moves into a buffer.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;

use spin::Mutex;
use syscall::data::Stat;
use syscall::error::*;
use syscall::flag::EventFlags;

use super::{fill_stat, Caller, Handle, Scheme, MODE_CHR};
use crate::arch::serial::Uart;
use crate::context::wait::WaitCondition;

/// Bytes received and not yet read (older bytes drop past this).
const INPUT_LIMIT: usize = 4096;

static INPUT: Mutex<VecDeque<u8>> = Mutex::new(VecDeque::new());
static INPUT_READY: WaitCondition = WaitCondition::new();

/// Moves received bytes into the input buffer (timer tick).
pub fn poll_input() {
    let uart = Uart::com1();
    let mut got = false;
    let mut input = INPUT.lock();
    while let Some(b) = uart.try_read_byte() {
        if input.len() >= INPUT_LIMIT {
            input.pop_front();
        }
        // Terminals send CR for Enter.
        input.push_back(if b == b'\r' { b'\n' } else { b });
        got = true;
    }
    drop(input);
    if got {
        INPUT_READY.notify_all();
        super::readiness_changed();
    }
}

pub struct DebugScheme;

impl Scheme for DebugScheme {
    fn open(&self, _path: &str, _flags: usize, _caller: Caller) -> Result<Arc<dyn Handle>> {
        Ok(Arc::new(Console))
    }
}

struct Console;

impl Handle for Console {
    fn read(&self, buf: &mut [u8], _pos: &mut u64, nonblock: bool) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let mut input = INPUT.lock();
            if !input.is_empty() {
                let n = buf.len().min(input.len());
                for (dst, src) in buf.iter_mut().zip(input.drain(..n)) {
                    *dst = src;
                }
                return Ok(n);
            }
            if nonblock {
                return Err(Error::new(EAGAIN));
            }
            if crate::context::signal::current_has_pending() {
                return Err(Error::new(EINTR));
            }
            INPUT_READY.wait(input);
        }
    }

    fn write(&self, buf: &[u8], _pos: &mut u64, _nonblock: bool) -> Result<usize> {
        crate::console::write_bytes(buf);
        Ok(buf.len())
    }

    fn path(&self) -> String {
        String::from("debug:")
    }

    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_CHR, 0);
        Ok(())
    }

    fn readiness(&self) -> EventFlags {
        let mut ready = EventFlags::EVENT_WRITE;
        if !INPUT.lock().is_empty() {
            ready |= EventFlags::EVENT_READ;
        }
        ready
    }
}
