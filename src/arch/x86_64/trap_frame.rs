//! The one register frame every entry from user mode (interrupt, exception,
//! `syscall`) leaves at the top of the kernel stack. Its general registers
//! are in `IntRegisters` order, so ptrace reads and writes them directly.

/// `vector` value of a frame built by the `syscall` entry.
pub const SYSCALL_VECTOR: u64 = 0x100;

#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    /// Exception or interrupt vector, or `SYSCALL_VECTOR`.
    pub vector: u64,
    /// The CPU's error code, or 0.
    pub error_code: u64,
    // Pushed by the CPU (or built the same way by the syscall entry).
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Bytes the entry code pushes before the CPU's part: 15 registers, vector,
/// error code.
pub const SAVED_BYTES: usize = 17 * 8;

const _: () = {
    assert!(core::mem::size_of::<TrapFrame>() == 22 * 8);
    assert!(core::mem::offset_of!(TrapFrame, vector) == 15 * 8);
    assert!(core::mem::offset_of!(TrapFrame, rip) == SAVED_BYTES);
    assert!(core::mem::offset_of!(TrapFrame, cs) == SAVED_BYTES + 8);
    // The frame must keep the stack 16-byte aligned for the Rust call.
    assert!(core::mem::size_of::<TrapFrame>().is_multiple_of(16));
};

impl TrapFrame {
    pub fn is_from_user(&self) -> bool {
        self.cs & 3 == 3
    }
}
