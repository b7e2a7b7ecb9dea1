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

    /// Reads one chunk (blocking until bytes arrive) and queues every
    /// input it completes, interrupt requests (0x03) included: they are
    /// never dropped, whether the program runs or steps.
    pub fn fill(&mut self) -> Result<()> {
        let mut buf = [0u8; CHUNK];
        let n = rt::io::read(self.fd, &mut buf)?;
        let inputs = self.decoder.push_all(&buf[..n.min(CHUNK)]);
        self.queue.extend(inputs);
        Ok(())
    }

    /// Whether an interrupt request is queued.
    pub fn has_interrupts(&self) -> bool {
        self.queue.contains(&Input::Interrupt)
    }

    /// Takes the queued interrupt requests out (the packets stay queued, in
    /// order); returns how many there were. Called while the program runs,
    /// including right after the resume packet: a Ctrl-C that came in the
    /// same read as that packet counts.
    pub fn take_interrupts(&mut self) -> usize {
        let before = self.queue.len();
        self.queue.retain(|input| *input != Input::Interrupt);
        before - self.queue.len()
    }

    /// The next input, waiting for one.
    pub fn next(&mut self) -> Result<Input> {
        loop {
            if let Some(input) = self.queue.pop_front() {
                return Ok(input);
            }
            self.fill()?;
        }
    }

    /// Acknowledges a good packet: `+`, unless acknowledgements are off. A
    /// `qSupported` starts a new session (a new gdb connected), in which
    /// they are on until it asks otherwise, so it is always acknowledged.
    pub fn ack_packet(&mut self, payload: &[u8]) -> Result<()> {
        if gdb_remote::request::starts_session(payload) {
            self.no_ack = false;
        }
        self.ack()
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
