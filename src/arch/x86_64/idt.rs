//! The IDT: one naked stub per vector the kernel handles (all 32 exceptions,
//! the timer, the spurious vector). Each stub pushes the vector (and a zero
//! where the CPU pushes no error code) and jumps to `interrupt_entry`, which
//! saves one `TrapFrame` and calls `trap::dispatch`. The debug exception,
//! NMI and machine check arrive on IST stacks and jump to `paranoid_entry`
//! instead, which saves one `IstFrame` and calls `trap::ist_dispatch`.

use core::arch::naked_asm;
use core::ptr::addr_of;

use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

use super::gdt::{DEBUG_IST, DOUBLE_FAULT_IST, KERNEL_CS, MACHINE_CHECK_IST, NMI_IST};
use super::trap_frame::{
    pop_general_registers, push_general_registers, IstFrame, TrapFrame, SAVED_BYTES,
};

/// The MSR holding the active `gs` base.
const IA32_GS_BASE: u32 = 0xC000_0101;

pub const TIMER_VECTOR: u8 = 0x30;
pub const SPURIOUS_VECTOR: u8 = 0xFF;
/// Vectors the legacy PIC is moved to (then masked), clear of exceptions.
pub const PIC_BASE: u8 = 0x20;

/// An interrupt gate as the CPU reads it.
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

const _: () = assert!(core::mem::size_of::<Gate>() == 16);

impl Gate {
    const MISSING: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        type_attr: 0,
        offset_mid: 0,
        offset_high: 0,
        reserved: 0,
    };

    /// A present 64-bit interrupt gate (IF cleared on entry), DPL 0.
    fn interrupt(handler: u64, ist: u16) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: KERNEL_CS,
            ist: ist as u8,
            type_attr: 0x8E,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static mut IDT: Idt = Idt([Gate::MISSING; 256]);

/// Saves the general registers below the vector/error/CPU frame, calls the
/// dispatcher with the frame, restores and returns with `iretq`. `swapgs`
/// when the frame came from (and returns to) user mode.
#[unsafe(naked)]
unsafe extern "C" fn interrupt_entry() {
    naked_asm!(
        "test qword ptr [rsp + 24], 3",
        "jz 2f",
        "swapgs",
        "2:",
        push_general_registers!(),
        "mov rdi, rsp",
        "cld",
        "call {dispatch}",
        "jmp {ret}",
        dispatch = sym super::trap::dispatch,
        ret = sym return_to_frame,
    );
}

/// Restores the `TrapFrame` at `rsp` and returns through `iretq`. New
/// contexts start here too, with a frame built for their first entry to
/// user mode.
#[unsafe(naked)]
pub unsafe extern "C" fn return_to_frame() {
    naked_asm!(
        pop_general_registers!(),
        "test qword ptr [rsp + {cs}], 3",
        "jz 2f",
        "swapgs",
        "2:",
        "add rsp, 16",
        "iretq",
        cs = const SAVED_BYTES + 8 - 15 * 8,
    );
}

/// The entry for vectors on an IST stack, which can interrupt the kernel
/// anywhere, also where `gs` still holds the user's base (the first
/// instructions of the `syscall` entry, before its `swapgs`; the last ones
/// of both return paths) and `rsp` the user's value. The CPU's `cs` cannot
/// tell those apart from kernel code, so `gs` is judged by `IA32_GS_BASE`
/// itself: anything but the per-CPU block is swapped in here and swapped
/// back on return. `ist_dispatch` either handles the trap in place (null)
/// or, for one from user mode, returns the copy of the frame it made at the
/// top of the kernel stack: that one goes down the ordinary path.
#[unsafe(naked)]
unsafe extern "C" fn paranoid_entry() {
    naked_asm!(
        push_general_registers!(),
        "mov ebx, 1",
        "test qword ptr [rsp + {cs}], 3",
        "jnz 2f",
        "mov ecx, {gs_base_msr}",
        "rdmsr",
        "shl rdx, 32",
        "or rax, rdx",
        "lea rcx, [rip + {percpu}]",
        "cmp rax, rcx",
        "jne 2f",
        "xor ebx, ebx",
        "jmp 3f",
        "2:",
        "swapgs",
        "3:",
        "push rbx",
        "sub rsp, 8",
        "mov rdi, rsp",
        "cld",
        "call {ist_dispatch}",
        "test rax, rax",
        "jnz 4f",
        "add rsp, 8",
        "pop rbx",
        "test rbx, rbx",
        "jz 5f",
        "swapgs",
        "5:",
        pop_general_registers!(),
        "add rsp, 16",
        "iretq",
        // From user mode: gs is the kernel's now, as after `interrupt_entry`'s
        // `swapgs`; carry on as that entry does.
        "4:",
        "mov rsp, rax",
        "mov rdi, rsp",
        "call {dispatch}",
        "jmp {ret}",
        cs = const core::mem::offset_of!(TrapFrame, cs),
        gs_base_msr = const IA32_GS_BASE,
        percpu = sym super::percpu::PERCPU,
        ist_dispatch = sym super::trap::ist_dispatch,
        dispatch = sym super::trap::dispatch,
        ret = sym return_to_frame,
    );
}

macro_rules! stubs {
    ($( $name:ident = $vector:literal $(, $err:ident)? $(=> $entry:ident)? ;)*) => {
        $( stubs!(@stub $name, $vector, ($($err)?), ($($entry)?)); )*
        /// (vector, stub) for every vector with a handler.
        const STUBS: &[(u8, unsafe extern "C" fn())] = &[$(($vector, $name)),*];
    };
    (@stub $name:ident, $vector:literal, ($($err:ident)?), ()) => {
        stubs!(@stub $name, $vector, ($($err)?), (interrupt_entry));
    };
    (@stub $name:ident, $vector:literal, ($($err:ident)?), ($entry:ident)) => {
        #[unsafe(naked)]
        unsafe extern "C" fn $name() {
            naked_asm!(
                stubs!(@zero $($err)?),
                "push {vector}",
                "jmp {entry}",
                vector = const $vector,
                entry = sym $entry,
            );
        }
    };
    (@zero) => { "push 0" };
    (@zero err) => { "" };
}

stubs! {
    divide_error = 0;
    debug = 1 => paranoid_entry;
    nmi = 2 => paranoid_entry;
    breakpoint = 3;
    overflow = 4;
    bound_range = 5;
    invalid_opcode = 6;
    device_not_available = 7;
    double_fault = 8, err;
    coprocessor_overrun = 9;
    invalid_tss = 10, err;
    segment_not_present = 11, err;
    stack_segment = 12, err;
    general_protection = 13, err;
    page_fault = 14, err;
    reserved_15 = 15;
    x87_floating_point = 16;
    alignment_check = 17, err;
    machine_check = 18 => paranoid_entry;
    simd_floating_point = 19;
    virtualization = 20;
    control_protection = 21, err;
    reserved_22 = 22;
    reserved_23 = 23;
    reserved_24 = 24;
    reserved_25 = 25;
    reserved_26 = 26;
    reserved_27 = 27;
    hypervisor_injection = 28;
    vmm_communication = 29, err;
    security = 30, err;
    reserved_31 = 31;
    timer = 0x30;
    spurious = 0xFF;
}

const _: () = {
    assert!(core::mem::size_of::<TrapFrame>() == SAVED_BYTES + 5 * 8);
    // `paranoid_entry` pushes `user_gs` then the pad word on the TrapFrame.
    assert!(core::mem::offset_of!(IstFrame, pad) == 0);
    assert!(core::mem::offset_of!(IstFrame, user_gs) == 8);
    assert!(core::mem::offset_of!(IstFrame, frame) == 16);
    assert!(core::mem::size_of::<IstFrame>().is_multiple_of(16));
};

/// The IST slot of a vector's gate (0: the current stack).
const fn ist_of(vector: u8) -> u16 {
    match vector {
        1 => DEBUG_IST,
        2 => NMI_IST,
        8 => DOUBLE_FAULT_IST,
        18 => MACHINE_CHECK_IST,
        _ => 0,
    }
}

/// Exception names, for fault reports.
pub const EXCEPTION_NAMES: [&str; 32] = [
    "divide error",
    "debug",
    "non-maskable interrupt",
    "breakpoint",
    "overflow",
    "bound range exceeded",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor segment overrun",
    "invalid TSS",
    "segment not present",
    "stack-segment fault",
    "general protection fault",
    "page fault",
    "reserved (15)",
    "x87 floating-point exception",
    "alignment check",
    "machine check",
    "SIMD floating-point exception",
    "virtualization exception",
    "control protection exception",
    "reserved (22)",
    "reserved (23)",
    "reserved (24)",
    "reserved (25)",
    "reserved (26)",
    "reserved (27)",
    "hypervisor injection exception",
    "VMM communication exception",
    "security exception",
    "reserved (31)",
];

/// Fills and loads the IDT. `int3` and `into` may be used from user mode
/// (DPL 3); the debug exception, NMI, double fault and machine check run on
/// IST stacks of their own.
pub fn init() {
    // SAFETY: runs once on the boot CPU before interrupts are enabled.
    let idt = unsafe { &mut *core::ptr::addr_of_mut!(IDT) };
    for &(vector, stub) in STUBS {
        let mut gate = Gate::interrupt(stub as *const () as u64, ist_of(vector));
        if vector == 3 || vector == 4 {
            gate.type_attr |= 3 << 5;
        }
        idt.0[vector as usize] = gate;
    }
    let ptr = DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: VirtAddr::new(addr_of!(IDT) as u64),
    };
    // SAFETY: the IDT is a static with valid gates for every used vector.
    unsafe { lidt(&ptr) };
}
