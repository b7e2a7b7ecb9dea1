//! The GDT (laid out for `syscall`/`sysret`), the TSS with the kernel stack
//! used on entry from user mode, and the IST stacks: double fault, NMI,
//! debug exception and machine check each run on a stack of their own, so
//! no stack pointer user code leaves behind (the `syscall` entry runs its
//! first instructions on the user's `rsp`) is ever used by them.
//!
//! Selectors: 0x08 kernel code, 0x10 kernel data, 0x18 user data, 0x20 user
//! code, 0x28 TSS. `sysret` takes SS = STAR[63:48] + 8 and CS = STAR[63:48]
//! + 16, so STAR[63:48] = 0x10 gives user data 0x18 and user code 0x20.

use core::ptr::addr_of_mut;

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, FS, GS, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::{PrivilegeLevel, VirtAddr};

pub const KERNEL_CS: u16 = 0x08;
pub const KERNEL_SS: u16 = 0x10;
pub const USER_SS: u16 = 0x18 | 3;
pub const USER_CS: u16 = 0x20 | 3;
/// STAR[63:48]: the base `sysret` adds 8 (SS) and 16 (CS) to.
pub const SYSRET_BASE: u16 = 0x10 | 3;

/// IST slots (1-based, as in the IDT gate).
pub const DOUBLE_FAULT_IST: u16 = 1;
pub const NMI_IST: u16 = 2;
pub const DEBUG_IST: u16 = 3;
pub const MACHINE_CHECK_IST: u16 = 4;
const IST_COUNT: usize = 4;
const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct IstStack([u8; IST_STACK_SIZE]);

/// One stack per IST slot (index = slot - 1). A vector's handler never
/// nests on its own stack: NMIs are blocked until its `iretq`, the kernel
/// arms no breakpoint or trap flag for itself, and #DF / #MC end the run.
static mut IST_STACKS: [IstStack; IST_COUNT] = [const { IstStack([0; IST_STACK_SIZE]) }; IST_COUNT];
static mut TSS: TaskStateSegment = TaskStateSegment::new();
static mut GDT: GlobalDescriptorTable = GlobalDescriptorTable::new();

const _: () = {
    assert!(KERNEL_SS == KERNEL_CS + 8);
    assert!(USER_SS == SYSRET_BASE + 8);
    assert!(USER_CS == SYSRET_BASE + 16);
    assert!(IST_COUNT <= 7);
    assert!(IST_STACK_SIZE.is_multiple_of(16));
};

/// Loads the GDT and TSS and reloads every segment register.
pub fn init() {
    // SAFETY: runs once on the boot CPU before anything else uses these
    // statics; afterwards only `set_kernel_stack` writes the TSS.
    unsafe {
        let tss = &mut *addr_of_mut!(TSS);
        for slot in [DOUBLE_FAULT_IST, NMI_IST, DEBUG_IST, MACHINE_CHECK_IST] {
            let index = usize::from(slot - 1);
            let base = addr_of_mut!(IST_STACKS[index]) as u64;
            tss.interrupt_stack_table[index] = VirtAddr::new(base + IST_STACK_SIZE as u64);
        }

        let gdt = &mut *addr_of_mut!(GDT);
        let kcode = gdt.append(Descriptor::kernel_code_segment());
        let kdata = gdt.append(Descriptor::kernel_data_segment());
        let udata = gdt.append(Descriptor::user_data_segment());
        let ucode = gdt.append(Descriptor::user_code_segment());
        let tss_sel = gdt.append(Descriptor::tss_segment_unchecked(addr_of_mut!(TSS)));
        assert_eq!(kcode.0, KERNEL_CS);
        assert_eq!(kdata.0, KERNEL_SS);
        assert_eq!(udata.0, USER_SS);
        assert_eq!(ucode.0, USER_CS);
        gdt.load_unsafe();
        CS::set_reg(kcode);
        SS::set_reg(kdata);
        DS::set_reg(kdata);
        ES::set_reg(kdata);
        let null = SegmentSelector::new(0, PrivilegeLevel::Ring0);
        FS::set_reg(null);
        GS::set_reg(null);
        load_tss(tss_sel);
    }
}

/// The stack the CPU switches to on an interrupt or exception from user mode
/// (the current context's kernel stack top).
pub fn set_kernel_stack(top: u64) {
    // SAFETY: single CPU with interrupts off in the kernel: nothing else
    // touches the TSS while this runs; the CPU reads rsp0 only on entry from
    // user mode.
    unsafe { (*addr_of_mut!(TSS)).privilege_stack_table[0] = VirtAddr::new(top) };
}

/// The current `rsp0`: where the CPU puts the frame of an interrupt or
/// exception from user mode (the IST entry moves its frame there).
pub fn kernel_stack() -> u64 {
    // SAFETY: single CPU with interrupts off: a plain read of a field only
    // `set_kernel_stack` writes.
    unsafe { (*addr_of_mut!(TSS)).privilege_stack_table[0].as_u64() }
}
