//! The link to gdb: the `serial2:` byte stream, decoded into packets and
//! control bytes, and replies framed back with acknowledgements (until gdb
//! turns them off with `QStartNoAckMode`).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use gdb_remote::packet::{frame, Decoder, Input};
use syscall::error::Result;

/// Bytes read from the port at once (the kernel drains the UART at 100 Hz,
/// so read in large chunks).
const CHUNK: usize = 4096;

pub struct Link {
    fd: usize,
    decoder: Decoder,
    /// Decoded inputs not handled yet.
    queue: VecDeque<Input>,
    /// Set by `QStartNoAckMode`: no `+`/`-` either way.
    pub no_ack: bool,
    /// The last packet sent, for a `-` from gdb.
    last: Vec<u8>,
}

impl Link {
    pub fn new(fd: usize) -> Link {
        Link {
            fd,
            decoder: Decoder::default(),
            queue: VecDeque::new(),
            no_ack: false,
            last: Vec::new(),
        }
    }

    /// The port's descriptor (to wait for input with `event:`).
    pub fn fd(&self) -> usize {
        self.fd
    }

    /// Reads one chunk (blocking until bytes arrive) and queues what it
    /// completes; returns how many interrupt bytes (0x03) came in. With
    /// `keep_interrupts` they are queued too.
    pub fn fill(&mut self, keep_interrupts: bool) -> Result<usize> {
        let mut buf = [0u8; CHUNK];
        let n = rt::io::read(self.fd, &mut buf)?;
        let mut interrupts = 0;
        for input in self.decoder.push_all(&buf[..n.min(CHUNK)]) {
            if input == Input::Interrupt {
                interrupts += 1;
                if !keep_interrupts {
                    continue;
                }
            }
            self.queue.push_back(input);
        }
        Ok(interrupts)
    }

    /// The next input, waiting for one.
    pub fn next(&mut self) -> Result<Input> {
        loop {
            if let Some(input) = self.queue.pop_front() {
                return Ok(input);
            }
            self.fill(true)?;
        }
    }

    fn write(&self, bytes: &[u8]) -> Result<()> {
        rt::io::write_all(self.fd, bytes)
    }

    /// `+` for a good packet (nothing in no-ack mode).
    pub fn ack(&self) -> Result<()> {
        if self.no_ack {
            Ok(())
        } else {
            self.write(b"+")
        }
    }

    /// `-` for a packet with a bad checksum (nothing in no-ack mode).
    pub fn nack(&self) -> Result<()> {
        if self.no_ack {
            Ok(())
        } else {
            self.write(b"-")
        }
    }

    /// Frames and sends a reply, remembering it for a retransmission.
    pub fn send(&mut self, payload: &[u8]) -> Result<()> {
        self.last = frame(payload);
        self.write(&self.last)
    }

    /// Sends the last packet again (gdb answered `-`).
    pub fn resend(&self) -> Result<()> {
        if self.no_ack || self.last.is_empty() {
            return Ok(());
        }
        self.write(&self.last)
    }
}
