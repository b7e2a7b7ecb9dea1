//! 16550 UARTs: COM1 is the kernel console (`debug:`), COM2 a raw byte
//! channel (`serial2:`, used by gdbserver). Input is polled on the timer
//! tick.

use x86_64::instructions::port::Port;

const COM1: u16 = 0x3F8;
const COM2: u16 = 0x2F8;

/// A 16550 UART at a fixed I/O port base.
pub struct Uart {
    base: u16,
}

impl Uart {
    pub const fn com1() -> Self {
        Uart { base: COM1 }
    }

    pub const fn com2() -> Self {
        Uart { base: COM2 }
    }

    fn outb(&self, offset: u16, value: u8) {
        // SAFETY: the UART's registers are I/O ports with no memory effects.
        unsafe { Port::<u8>::new(self.base + offset).write(value) }
    }

    fn inb(&self, offset: u16) -> u8 {
        // SAFETY: as in `outb`; reading a UART register has no memory effects.
        unsafe { Port::<u8>::new(self.base + offset).read() }
    }

    /// 115200 baud, 8N1, FIFOs on, no interrupts (the kernel polls).
    pub fn init(&self) {
        self.outb(1, 0x00);
        self.outb(3, 0x80);
        self.outb(0, 0x01);
        self.outb(1, 0x00);
        self.outb(3, 0x03);
        self.outb(2, 0xC7);
        self.outb(4, 0x03);
    }

    pub fn write_byte(&self, byte: u8) {
        // Bounded spin: a missing UART must not hang the kernel.
        for _ in 0..100_000 {
            if self.inb(5) & 0x20 != 0 {
                break;
            }
        }
        self.outb(0, byte);
    }

    pub fn write_bytes(&self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
    }

    /// A received byte, if one is waiting.
    pub fn try_read_byte(&self) -> Option<u8> {
        if self.inb(5) & 0x01 != 0 {
            Some(self.inb(0))
        } else {
            None
        }
    }
}
