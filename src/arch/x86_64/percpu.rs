//! Per-CPU data reached through `gs` in kernel mode (`swapgs` on every entry
//! from user mode): the scratch slot and kernel stack the `syscall` entry
//! needs before it has a stack, and the count of ordered locks the CPU
//! holds (`crate::sync`). One CPU only.

use core::ptr::addr_of_mut;

use x86_64::registers::model_specific::{GsBase, KernelGsBase};
use x86_64::VirtAddr;

use crate::sync::HeldLocks;

#[repr(C)]
pub struct PerCpu {
    /// The user `rsp` while the syscall entry switches stacks.
    pub user_rsp: u64,
    /// Top of the current context's kernel stack.
    pub kernel_rsp: u64,
    /// The ordered locks this CPU holds (`crate::sync`).
    held_locks: HeldLocks,
}

pub const USER_RSP_OFFSET: usize = core::mem::offset_of!(PerCpu, user_rsp);
pub const KERNEL_RSP_OFFSET: usize = core::mem::offset_of!(PerCpu, kernel_rsp);

/// The block `GS_BASE` points at in kernel mode (`idt::paranoid_entry`
/// compares `IA32_GS_BASE` with its address).
pub(super) static mut PERCPU: PerCpu = PerCpu {
    user_rsp: 0,
    kernel_rsp: 0,
    held_locks: HeldLocks::new(),
};

/// In kernel mode `GS_BASE` points at the per-CPU block and
/// `KERNEL_GS_BASE` holds the user's gs base; `swapgs` exchanges them.
pub fn init() {
    let base = addr_of_mut!(PERCPU) as u64;
    GsBase::write(VirtAddr::new(base));
    KernelGsBase::write(VirtAddr::new(0));
}

/// Sets the stack the `syscall` entry switches to.
pub fn set_kernel_stack(top: u64) {
    // SAFETY: one CPU, interrupts off in the kernel: no concurrent access;
    // the entry stub reads the field only on the next syscall.
    unsafe { (*addr_of_mut!(PERCPU)).kernel_rsp = top };
}

/// Runs `f` on this CPU's count of held ordered locks.
#[inline]
pub fn with_held_locks<R>(f: impl FnOnce(&mut HeldLocks) -> R) -> R {
    // SAFETY: one CPU, and the kernel runs with interrupts off except in
    // the idle loop's `hlt`, where no lock is held and this is not running;
    // the IST handlers (NMI, #DB, machine check) take no lock. So nothing
    // else touches the field while `f` runs, and `f` cannot re-enter here
    // (it takes no lock).
    f(unsafe { &mut (*addr_of_mut!(PERCPU)).held_locks })
}
