//! x86_64: boot trampoline, descriptor tables, entry stubs, APIC and timer
//! hardware, serial port.

pub mod apic;
mod boot;
pub mod gdt;
pub mod idt;
pub mod percpu;
pub mod probe;
pub mod serial;
pub mod switch;
mod syscall_entry;
pub mod trap;
pub mod trap_frame;

/// Brings up the CPU tables: GDT/TSS, per-CPU `gs`, IDT.
pub fn init_cpu() {
    gdt::init();
    percpu::init();
    idt::init();
    enable_protections();
}

/// Enables the `syscall` instruction's entry point.
pub fn syscall_init() {
    syscall_entry::init();
}

/// Turns on the protections the CPU offers that nothing here needs to
/// avoid: SMEP (the kernel never runs user pages) and UMIP (user mode may
/// not read descriptor-table registers). User memory is only ever touched
/// through the direct map, so SMAP would not change anything.
pub fn enable_protections() {
    use x86_64::registers::control::{Cr4, Cr4Flags};
    let leaf7 = core::arch::x86_64::__cpuid_count(7, 0);
    let mut flags = Cr4::read();
    if leaf7.ebx & (1 << 7) != 0 {
        flags |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if leaf7.ecx & (1 << 2) != 0 {
        flags |= Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION;
    }
    // SAFETY: both bits only add checks; the kernel executes no user page
    // and uses none of the instructions UMIP restricts from user mode.
    unsafe { Cr4::write(flags) };
}
