//! Ending a QEMU run through the `isa-debug-exit` device (port 0xf4): QEMU
//! exits with `(code << 1) | 1`, so every status below is odd and never 0.

use x86_64::instructions::port::Port;

/// Why the kernel is ending the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// Everything asked for passed (QEMU exits 33).
    Success = 0x10,
    /// A test or pid 1 failed (QEMU exits 35).
    Failure = 0x11,
    /// The kernel panicked (QEMU exits 37).
    Panic = 0x12,
    /// An unexpected CPU exception in kernel mode (QEMU exits 39).
    Exception = 0x13,
}

/// Ends the run. Under TCG the device's exit is asynchronous, so the CPU
/// halts until QEMU is gone.
pub fn exit_qemu(code: ExitCode) -> ! {
    // SAFETY: port 0xf4 is the debug-exit device; writing it only asks QEMU
    // to exit (on real hardware or without the device it does nothing).
    unsafe { Port::<u32>::new(0xf4).write(code as u32) };
    halt_forever()
}

pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
