//! Where every interrupt and exception lands: `dispatch` sorts them into
//! timer ticks, faults in user mode (signals) and fatal kernel faults.

use x86_64::registers::control::Cr2;

use super::idt::{EXCEPTION_NAMES, SPURIOUS_VECTOR, TIMER_VECTOR};
use super::trap_frame::TrapFrame;
use crate::exit::{exit_qemu, ExitCode};

pub const PAGE_FAULT: u64 = 14;

/// Called by `interrupt_entry` with the saved frame.
pub extern "C" fn dispatch(frame: &mut TrapFrame) {
    if frame.is_from_user() {
        crate::ptrace::on_user_entry(frame);
    }
    match frame.vector {
        v if v < 32 => exception(frame),
        v if v == TIMER_VECTOR as u64 => {
            super::apic::end_of_interrupt();
            crate::time::tick();
            crate::sched::timer_tick(frame);
        }
        v if v == SPURIOUS_VECTOR as u64 => {}
        _ => crate::warn!("unexpected interrupt vector {:#x}", frame.vector),
    }
}

fn exception(frame: &mut TrapFrame) {
    if frame.is_from_user() {
        crate::sched::user_exception(frame);
        return;
    }
    if frame.vector == PAGE_FAULT {
        if let Some(resume) = super::probe::fixup(frame.rip) {
            crate::selftest::note_probe_fault(Cr2::read_raw());
            frame.rip = resume;
            frame.rax = 1;
            return;
        }
    }
    fatal(frame)
}

/// Reports an exception the kernel cannot recover from and ends the run.
pub fn fatal(frame: &TrapFrame) -> ! {
    let vector = frame.vector as usize;
    let name = EXCEPTION_NAMES.get(vector).copied().unwrap_or("interrupt");
    let p = crate::console::emergency_print;
    p(format_args!(
        "\nKERNEL FAULT: {} (vector {}) error code {:#x}\n",
        name, vector, frame.error_code
    ));
    p(format_args!(
        "  rip {:#018x}  cs {:#x}  rflags {:#x}\n",
        frame.rip, frame.cs, frame.rflags
    ));
    if frame.vector == PAGE_FAULT {
        p(format_args!("  cr2 {:#018x}\n", Cr2::read_raw()));
    }
    dump_registers(frame);
    exit_qemu(ExitCode::Exception)
}

pub fn dump_registers(f: &TrapFrame) {
    let p = crate::console::emergency_print;
    p(format_args!(
        "  rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}\n",
        f.rax, f.rbx, f.rcx, f.rdx
    ));
    p(format_args!(
        "  rsi {:#018x} rdi {:#018x} rbp {:#018x} rsp {:#018x}\n",
        f.rsi, f.rdi, f.rbp, f.rsp
    ));
    p(format_args!(
        "  r8  {:#018x} r9  {:#018x} r10 {:#018x} r11 {:#018x}\n",
        f.r8, f.r9, f.r10, f.r11
    ));
    p(format_args!(
        "  r12 {:#018x} r13 {:#018x} r14 {:#018x} r15 {:#018x}\n",
        f.r12, f.r13, f.r14, f.r15
    ));
}
