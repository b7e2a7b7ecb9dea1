//! The boundary between user mode and the kernel: every entry from user
//! mode (the `syscall` instruction, and every interrupt or exception taken
//! in user mode) goes through here, and so does every way back. This module
//! owns the order of what happens in between:
//!
//! 1. the single-step bookkeeping of the entry (`ptrace::on_user_entry`);
//! 2. for a `syscall`: the ptrace entry stop, the call, signal delivery
//!    inside the call (a handler runs before the call's exit stop), the
//!    ptrace exit stop; for an exception: a breakpoint or single-step stop,
//!    else the fault's signal; for the timer: the end of the time slice;
//! 3. the way back: pending signals, a due reschedule, the single-step stop
//!    and trap flag (`ptrace::before_user_return`);
//! 4. the choice between `sysretq` and `iretq`.
//!
//! Stops and signal delivery never end the context where they are: they
//! return `Err(Exit(status))`, which `?` carries up to the two entry
//! functions here, the one place a context exits
//! (`process::exit_current`). Nothing of the context's own is then left
//! on its kernel stack: below the entry function lies only the entry stub.
//! This follows Asterinas's per-thread return loop (a reason to leave user
//! mode, handled, then the way back) and Redox's single inner syscall
//! function.

use syscall::error::Error;

use crate::arch::gdt::{USER_CS, USER_SS};
use crate::arch::trap_frame::TrapFrame;
use crate::context::signal::{self, InterruptedSyscall};
use crate::context::Exit;
use crate::memory::paging::USER_END;
use crate::syscall::Outcome;

/// What the kernel does on the way to user mode: go on, or end the context.
type Flow = Result<(), Exit>;

/// Called by the `syscall` entry stub with the saved user registers.
/// Returns true when `sysretq` may be used to return.
pub extern "C" fn syscall(frame: &mut TrapFrame) -> bool {
    match syscall_path(frame) {
        Ok(registers_written) => !registers_written && sysret_safe(frame),
        Err(Exit(status)) => crate::process::exit_current(status),
    }
}

/// Called by the interrupt entry (`arch::trap::dispatch`) for an interrupt
/// or exception taken in user mode. Always returns with `iretq`.
pub fn trap(frame: &mut TrapFrame) {
    if let Err(Exit(status)) = trap_path(frame).map(drop) {
        crate::process::exit_current(status);
    }
}

/// A new context's first way to user mode (its first switch lands in the
/// entry stub `switch::new_context_start`, which calls this). Returns with
/// `iretq`.
pub extern "C" fn first_return(frame: &mut TrapFrame) {
    if let Err(Exit(status)) = way_back(frame).map(drop) {
        crate::process::exit_current(status);
    }
}

/// One system call, from entry stop to exit stop, then the way back.
/// `Ok(true)`: a tracer wrote the registers (return with `iretq`).
fn syscall_path(frame: &mut TrapFrame) -> Result<bool, Exit> {
    crate::ptrace::on_user_entry(frame);
    let skipped = crate::ptrace::syscall_entry_stop(frame)?;
    if !skipped {
        let call = InterruptedSyscall {
            nr: frame.rax as usize,
            args: [
                frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
            ]
            .map(|a| a as usize),
        };
        // The call whose exit is now due, if any.
        let returning = match crate::syscall::handle(call.nr, call.args, frame) {
            Outcome::Return(result) => {
                frame.rax = Error::mux(result) as u64;
                Some(call)
            }
            // `sigreturn`: the call the handler interrupted reaches its exit.
            Outcome::Restored(interrupted) => interrupted,
            Outcome::Exit(status) => return Err(Exit(status)),
        };
        if let Some(call) = returning {
            if !deliver_signals(frame, Some(call))? {
                crate::ptrace::syscall_exit_stop(frame, call)?;
            }
        }
    }
    way_back(frame)
}

/// An interrupt or exception from user mode, then the way back (always
/// `iretq`).
fn trap_path(frame: &mut TrapFrame) -> Result<bool, Exit> {
    use crate::arch::idt::{SPURIOUS_VECTOR, TIMER_VECTOR};
    crate::ptrace::on_user_entry(frame);
    match frame.vector {
        v if v < 32 => exception(frame)?,
        v if v == TIMER_VECTOR as u64 => {
            crate::arch::trap::timer_interrupt();
            crate::sched::end_time_slice();
        }
        v if v == SPURIOUS_VECTOR as u64 => {}
        _ => crate::warn!("unexpected interrupt vector {:#x}", frame.vector),
    }
    way_back(frame)
}

/// A CPU exception in user mode: a ptrace breakpoint or single-step stop,
/// or else the fault's signal (delivered on the way back).
fn exception(frame: &mut TrapFrame) -> Flow {
    const DEBUG: u64 = 1;
    const BREAKPOINT: u64 = 3;
    let stopped = match frame.vector {
        // `int3` traps after the instruction; ptrace reports the byte.
        BREAKPOINT => crate::ptrace::breakpoint_trap(frame)?,
        DEBUG => crate::ptrace::debug_trap(frame)?,
        _ => false,
    };
    if !stopped {
        signal::exception_signal(frame);
    }
    Ok(())
}

/// Work due before any return to user mode: pending signals and a due
/// reschedule (until neither is left), then the single-step stop and the
/// trap flag as the tracer wants it. `Ok(true)`: a tracer wrote the
/// registers.
fn way_back(frame: &mut TrapFrame) -> Result<bool, Exit> {
    loop {
        deliver_signals(frame, None)?;
        if !crate::sched::preempt_if_due() {
            break;
        }
    }
    crate::ptrace::before_user_return(frame)
}

/// Delivers pending, unblocked signals: for each, `SIGKILL` exits at once;
/// any other goes through the ptrace signal stop (where the tracer may
/// discard it), then its action. `in_syscall` is the call that is
/// returning, if any: a handler then runs inside it. Returns true if a
/// handler was set up (the rest stay pending until it returns).
fn deliver_signals(
    frame: &mut TrapFrame,
    in_syscall: Option<InterruptedSyscall>,
) -> Result<bool, Exit> {
    use crate::ptrace::SignalVerdict;
    while let Some((sig, action)) = signal::take_deliverable() {
        if sig == syscall::flag::SIGKILL {
            return Err(Exit(sig));
        }
        match crate::ptrace::signal_stop(frame, sig, action.handler)? {
            SignalVerdict::Discard => continue,
            SignalVerdict::Deliver => {}
        }
        if signal::act(frame, sig, in_syscall)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `sysretq` restores rip from rcx and rflags from r11, and faults in
/// kernel mode on a non-canonical rip: use it only when the frame is
/// exactly what `syscall` produced.
fn sysret_safe(frame: &TrapFrame) -> bool {
    const TF_RF_VM: u64 = (1 << 8) | (1 << 16) | (1 << 17);
    frame.rcx == frame.rip
        && frame.r11 == frame.rflags
        && frame.rip < USER_END - 0x1000
        && frame.rflags & TF_RF_VM == 0
        && frame.cs == USER_CS as u64
        && frame.ss == USER_SS as u64
}
