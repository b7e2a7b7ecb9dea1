//! Switching kernel stacks between contexts, and the per-context CPU state
//! that lives outside the trap frame: callee-saved registers (on the kernel
//! stack), the FXSAVE image, and the user's fs/gs bases.

use core::arch::naked_asm;

use x86_64::registers::model_specific::{FsBase, KernelGsBase};
use x86_64::VirtAddr;

use super::trap_frame::TrapFrame;

/// An FXSAVE/FXRSTOR image (x87, MMX, SSE state).
#[derive(Clone)]
#[repr(C, align(16))]
pub struct FxArea(pub [u8; 512]);

/// Offset of MXCSR in an FXSAVE image.
pub const FX_MXCSR: usize = 24;
/// Offset of MXCSR_MASK in an FXSAVE image.
pub const FX_MXCSR_MASK: usize = 28;

impl FxArea {
    /// The state after `fninit` with SSE exceptions masked (MXCSR 0x1F80).
    pub fn initial() -> FxArea {
        let mut fx = FxArea([0; 512]);
        fx.0[0..2].copy_from_slice(&0x037Fu16.to_le_bytes());
        fx.0[FX_MXCSR..FX_MXCSR + 4].copy_from_slice(&0x1F80u32.to_le_bytes());
        fx.0[FX_MXCSR_MASK..FX_MXCSR_MASK + 4].copy_from_slice(&mxcsr_mask().to_le_bytes());
        fx
    }

    pub fn save(&mut self) {
        // SAFETY: the area is 512 bytes, 16-byte aligned; CR4.OSFXSR is set.
        unsafe { core::arch::x86_64::_fxsave64(self.0.as_mut_ptr()) }
    }

    pub fn restore(&self) {
        // SAFETY: as in `save`; images only ever hold values FXSAVE wrote or
        // that passed the MXCSR check, so FXRSTOR cannot fault.
        unsafe { core::arch::x86_64::_fxrstor64(self.0.as_ptr()) }
    }
}

/// The MXCSR bits this CPU supports (FXSAVE's MXCSR_MASK, 0xFFBF if 0).
pub fn mxcsr_mask() -> u32 {
    static MASK: spin::Once<u32> = spin::Once::new();
    *MASK.call_once(|| {
        let mut fx = FxArea([0; 512]);
        fx.save();
        let mask = u32::from_le_bytes([
            fx.0[FX_MXCSR_MASK],
            fx.0[FX_MXCSR_MASK + 1],
            fx.0[FX_MXCSR_MASK + 2],
            fx.0[FX_MXCSR_MASK + 3],
        ]);
        if mask == 0 {
            0xFFBF
        } else {
            mask
        }
    })
}

/// The user's fs and gs bases while the context is in the kernel (`gs` is
/// swapped into KERNEL_GS_BASE there).
pub fn read_user_bases() -> (u64, u64) {
    (FsBase::read().as_u64(), KernelGsBase::read().as_u64())
}

pub fn write_user_bases(fs: u64, gs: u64) {
    // Callers only pass canonical user addresses (checked when written).
    FsBase::write(VirtAddr::new_truncate(fs));
    KernelGsBase::write(VirtAddr::new_truncate(gs));
}

/// Saves callee-saved registers on the current stack, stores `rsp` in
/// `*save_rsp`, loads `next_rsp` and returns into whatever that stack holds.
///
/// # Safety
/// `next_rsp` must be a stack left by `switch_stacks` or built by
/// `initial_stack`, and both stacks must stay alive.
#[unsafe(naked)]
pub unsafe extern "C" fn switch_stacks(save_rsp: *mut u64, next_rsp: u64) {
    naked_asm!(
        "push rbp",
        "push rbx",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "mov [rdi], rsp",
        "mov rsp, rsi",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "ret",
    );
}

/// Where a new context's first `switch_stacks` returns to, with `rsp` at
/// its `TrapFrame`: the boundary's way back (`usermode::first_return`:
/// pending signals, single-stepping), then `return_to_frame`.
#[unsafe(naked)]
unsafe extern "C" fn new_context_start() {
    naked_asm!(
        "mov rdi, rsp",
        "call {first}",
        "jmp {ret}",
        first = sym crate::usermode::first_return,
        ret = sym super::idt::return_to_frame,
    );
}

/// Callee-saved registers `switch_stacks` pops, plus its return address.
const SWITCH_FRAME_WORDS: usize = 7;

/// Writes `frame` at the top of a fresh kernel stack with a switch frame
/// below it that returns into `return_to_frame`; returns the initial rsp.
///
/// # Safety
/// `top` must be the 16-byte aligned top of a kernel stack of at least
/// `size_of::<TrapFrame>() + 56` bytes that nothing else uses.
pub unsafe fn initial_stack(top: u64, frame: &TrapFrame) -> u64 {
    let frame_at = top - core::mem::size_of::<TrapFrame>() as u64;
    let rsp = frame_at - (SWITCH_FRAME_WORDS * 8) as u64;
    // SAFETY: the caller guarantees the memory is ours and large enough.
    unsafe {
        (frame_at as *mut TrapFrame).write(*frame);
        let words = rsp as *mut u64;
        for i in 0..SWITCH_FRAME_WORDS - 1 {
            words.add(i).write(0);
        }
        words
            .add(SWITCH_FRAME_WORDS - 1)
            .write(new_context_start as *const () as u64);
    }
    rsp
}
