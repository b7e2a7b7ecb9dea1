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

/// Pushes the 15 general registers so that, with the vector and error code
/// above them, `rsp` points at a `TrapFrame` (used by both entry paths).
macro_rules! push_general_registers {
    () => {
        concat!(
            "push rdi\n",
            "push rsi\n",
            "push rdx\n",
            "push rcx\n",
            "push rax\n",
            "push r8\n",
            "push r9\n",
            "push r10\n",
            "push r11\n",
            "push rbx\n",
            "push rbp\n",
            "push r12\n",
            "push r13\n",
            "push r14\n",
            "push r15\n",
        )
    };
}

/// The inverse of `push_general_registers`.
macro_rules! pop_general_registers {
    () => {
        concat!(
            "pop r15\n",
            "pop r14\n",
            "pop r13\n",
            "pop r12\n",
            "pop rbp\n",
            "pop rbx\n",
            "pop r11\n",
            "pop r10\n",
            "pop r9\n",
            "pop r8\n",
            "pop rax\n",
            "pop rcx\n",
            "pop rdx\n",
            "pop rsi\n",
            "pop rdi\n",
        )
    };
}

pub(crate) use {pop_general_registers, push_general_registers};

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

/// What `idt::paranoid_entry` leaves on an IST stack: the `TrapFrame`, and
/// below it whether the entry swapped `gs` in (the interrupted code ran
/// with the user's `gs`: user mode, or the edges of the entry and return
/// paths) and so swaps it back on return.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct IstFrame {
    /// Keeps the stack 16-byte aligned for the Rust call.
    pub pad: u64,
    /// 1 if the interrupted code ran with the user's `gs` base, else 0.
    pub user_gs: u64,
    pub frame: TrapFrame,
}

impl TrapFrame {
    pub fn is_from_user(&self) -> bool {
        self.cs & 3 == 3
    }
}
