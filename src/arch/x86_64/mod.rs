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
}

/// Enables the `syscall` instruction's entry point.
pub fn syscall_init() {
    syscall_entry::init();
}
