//! The `syscall` instruction's entry: switch to the kernel stack, build the
//! same `TrapFrame` an interrupt from user mode would, call
//! `usermode::syscall`, and return with `sysretq` only when that is safe
//! (the boundary decides), else through `iretq`.

use core::arch::naked_asm;
use core::mem::offset_of;

use x86_64::registers::model_specific::{LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::VirtAddr;

use super::gdt::{KERNEL_CS, KERNEL_SS, USER_CS, USER_SS};
use super::percpu::{KERNEL_RSP_OFFSET, USER_RSP_OFFSET};
use super::trap_frame::{pop_general_registers, push_general_registers, TrapFrame, SYSCALL_VECTOR};
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::PrivilegeLevel;

#[unsafe(naked)]
unsafe extern "C" fn syscall_entry() {
    naked_asm!(
        "swapgs",
        "mov gs:[{user_rsp}], rsp",
        "mov rsp, gs:[{kernel_rsp}]",
        "push {user_ss}",
        "push qword ptr gs:[{user_rsp}]",
        "push r11",
        "push {user_cs}",
        "push rcx",
        "push 0",
        "push {vector}",
        push_general_registers!(),
        "mov rdi, rsp",
        "cld",
        "call {dispatch}",
        "test al, al",
        "jz {iret_path}",
        // sysret: rcx/r11 equal the frame's rip/rflags (checked by dispatch).
        pop_general_registers!(),
        "mov rcx, [rsp + {rip}]",
        "mov r11, [rsp + {rflags}]",
        "mov rsp, [rsp + {rsp_off}]",
        "swapgs",
        "sysretq",
        user_rsp = const USER_RSP_OFFSET,
        kernel_rsp = const KERNEL_RSP_OFFSET,
        user_ss = const USER_SS as u64,
        user_cs = const USER_CS as u64,
        vector = const SYSCALL_VECTOR,
        dispatch = sym crate::usermode::syscall,
        iret_path = sym super::idt::return_to_frame,
        rip = const offset_of!(TrapFrame, rip) - offset_of!(TrapFrame, vector),
        rflags = const offset_of!(TrapFrame, rflags) - offset_of!(TrapFrame, vector),
        rsp_off = const offset_of!(TrapFrame, rsp) - offset_of!(TrapFrame, vector),
    );
}

/// Flags cleared on `syscall`: interrupts stay off in the kernel, and no
/// trap, direction, alignment-check or nested-task flag leaks in.
const SYSCALL_MASK: RFlags = RFlags::INTERRUPT_FLAG
    .union(RFlags::TRAP_FLAG)
    .union(RFlags::DIRECTION_FLAG)
    .union(RFlags::ALIGNMENT_CHECK)
    .union(RFlags::NESTED_TASK)
    .union(RFlags::IOPL_HIGH)
    .union(RFlags::IOPL_LOW);

pub fn init() {
    let sel = |index: u16, rpl| SegmentSelector::new(index >> 3, rpl);
    Star::write(
        sel(USER_CS, PrivilegeLevel::Ring3),
        sel(USER_SS, PrivilegeLevel::Ring3),
        sel(KERNEL_CS, PrivilegeLevel::Ring0),
        sel(KERNEL_SS, PrivilegeLevel::Ring0),
    )
    .expect("GDT layout fits sysret");
    LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
    SFMask::write(SYSCALL_MASK);
}
