//! `debug:` (the console on COM1) and `serial2:` (a raw byte channel on
//! COM2, for gdbserver). Writes go straight to the UART; bytes received are
//! moved into a buffer on each timer tick, where reads take them.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;

use crate::sync::{class, Mutex};
use syscall::data::Stat;
use syscall::error::*;
use syscall::flag::EventFlags;

use super::{fill_stat, Caller, Handle, Scheme, MODE_CHR};
use crate::arch::serial::Uart;
use crate::context::wait::WaitCondition;

/// Bytes received and not yet read (older bytes drop past this).
const INPUT_LIMIT: usize = 64 * 1024;

/// One serial port as a byte stream.
pub struct Port {
    uart: Uart,
    name: &'static str,
    /// The console turns CR into LF (terminals send CR for Enter).
    translate_cr: bool,
    input: Mutex<VecDeque<u8>, { class::OBJECT }>,
    ready: WaitCondition,
}

pub static CONSOLE: Port = Port {
    uart: Uart::com1(),
    name: "debug:",
    translate_cr: true,
    input: Mutex::new(VecDeque::new()),
    ready: WaitCondition::new(),
};

pub static SERIAL2: Port = Port {
    uart: Uart::com2(),
    name: "serial2:",
    translate_cr: false,
    input: Mutex::new(VecDeque::new()),
    ready: WaitCondition::new(),
};

/// Moves received bytes into the input buffers (timer tick).
pub fn poll_input() {
    CONSOLE.poll();
    SERIAL2.poll();
}

/// COM2 is set up only when first opened (it may not exist).
static SERIAL2_INIT: spin::Once<()> = spin::Once::new();

impl Port {
    fn poll(&self) {
        if core::ptr::eq(self, &SERIAL2) && SERIAL2_INIT.get().is_none() {
            return;
        }
        let mut got = false;
        let mut input = self.input.lock();
        while let Some(b) = self.uart.try_read_byte() {
            if input.len() >= INPUT_LIMIT {
                input.pop_front();
            }
            input.push_back(if self.translate_cr && b == b'\r' {
                b'\n'
            } else {
                b
            });
            got = true;
        }
        drop(input);
        if got {
            self.ready.notify_all();
            crate::context::wait::readiness_changed();
        }
    }
}

pub struct DebugScheme;
pub struct Serial2Scheme;

impl Scheme for DebugScheme {
    fn open(&self, _path: &str, _flags: usize, _caller: Caller) -> Result<Arc<dyn Handle>> {
        Ok(Arc::new(PortHandle(&CONSOLE)))
    }
}

impl Scheme for Serial2Scheme {
    fn open(&self, _path: &str, _flags: usize, _caller: Caller) -> Result<Arc<dyn Handle>> {
        SERIAL2_INIT.call_once(|| SERIAL2.uart.init());
        Ok(Arc::new(PortHandle(&SERIAL2)))
    }
}

struct PortHandle(&'static Port);

impl Handle for PortHandle {
    fn read(&self, buf: &mut [u8], _pos: &mut u64, nonblock: bool) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let port = self.0;
        loop {
            let mut input = port.input.lock();
            if !input.is_empty() {
                let n = buf.len().min(input.len());
                for (dst, src) in buf.iter_mut().zip(input.drain(..n)) {
                    *dst = src;
                }
                return Ok(n);
            }
            super::may_block(nonblock)?;
            port.ready.wait(input);
        }
    }

    fn write(&self, buf: &[u8], _pos: &mut u64, _nonblock: bool) -> Result<usize> {
        if core::ptr::eq(self.0, &CONSOLE) {
            crate::console::write_bytes(buf);
        } else {
            for &b in buf {
                self.0.uart.write_byte(b);
            }
        }
        Ok(buf.len())
    }

    fn path(&self) -> String {
        String::from(self.0.name)
    }

    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_CHR, 0);
        Ok(())
    }

    fn readiness(&self) -> EventFlags {
        let mut ready = EventFlags::EVENT_WRITE;
        if !self.0.input.lock().is_empty() {
            ready |= EventFlags::EVENT_READ;
        }
        ready
    }
}
