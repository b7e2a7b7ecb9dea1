//! The tracee side: small assembly routines that stop at `int3` at exported
//! labels, so the tracer knows exactly where the tracee is held and what it
//! does with the registers right after the stop; plus the statics the
//! tracer inspects through `mem`.

use core::arch::global_asm;
use core::cell::UnsafeCell;

/// Values the general-register probe loads into rbx, rbp, r12..r15 before
/// its first stop.
pub const GPR_PRESET: [u64; 6] = [
    0x1111_2222_3333_4444,
    0x5555_6666_7777_8888,
    0x0102_0304_0506_0708,
    0x1020_3040_5060_7080,
    0x0A0B_0C0D_0E0F_1011,
    0x7766_5544_3322_1100,
];

/// The qwords the stack probe pushes, in push order.
pub const STACK_PUSHED: [u64; 3] = [
    0xDEAD_BEEF_0000_0001,
    0xDEAD_BEEF_0000_0002,
    0xDEAD_BEEF_0000_0003,
];

/// A static the tracee writes at run time and the tracer reads through
/// `mem` (lands in `.bss`, as it starts zeroed and is mutable).
#[repr(C, align(4096))]
pub struct Shared<const N: usize>(pub UnsafeCell<[u8; N]>);

// SAFETY: only the single thread of a tracee touches its copy; the tracer
// process only takes the address.
unsafe impl<const N: usize> Sync for Shared<N> {}

impl<const N: usize> Shared<N> {
    pub const fn new() -> Self {
        Shared(UnsafeCell::new([0; N]))
    }

    /// The address of the first byte (the same in the tracer and in its
    /// forked tracees).
    pub fn addr(&self) -> u64 {
        self.0.get() as u64
    }

    pub fn ptr(&self) -> *mut u8 {
        self.0.get().cast()
    }
}

/// Where a probe stores what it saw after a stop.
pub static OUT: Shared<4096> = Shared::new();
/// The stack probe stores its rsp here before stopping.
pub static STACK_SP: Shared<4096> = Shared::new();
/// The bulk-transfer area (filled by the tracee, rewritten by the tracer).
pub static BULK: Shared<{ 64 * 1024 }> = Shared::new();
/// Never touched by anyone: must read as zeros.
pub static UNTOUCHED: Shared<{ 3 * 4096 }> = Shared::new();

/// What fs:[0] and gs:[0] should read once the tracer points the bases here.
pub static FS_TARGET: u64 = 0x0F5B_A5E0_F5BA_5E01;
pub static GS_TARGET: u64 = 0x065B_A5E0_65BA_5E02;

global_asm!(
    // General registers: load presets, stop, store what the tracer left,
    // stop again, restore the callee-saved registers.
    ".globl tpr_probe_gpr",
    ".globl tpr_gpr_bp1",
    ".globl tpr_gpr_bp2",
    "tpr_probe_gpr:",
    "push rbx",
    "push rbp",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "movabs rbx, {p0}",
    "movabs rbp, {p1}",
    "movabs r12, {p2}",
    "movabs r13, {p3}",
    "movabs r14, {p4}",
    "movabs r15, {p5}",
    "tpr_gpr_bp1:",
    "int3",
    "mov [rdi], rbx",
    "mov [rdi + 8], rbp",
    "mov [rdi + 16], r12",
    "mov [rdi + 24], r13",
    "mov [rdi + 32], r14",
    "mov [rdi + 40], r15",
    "tpr_gpr_bp2:",
    "int3",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbp",
    "pop rbx",
    "ret",
    // rflags: stop, record the flags (pushfq and setc), stop, record again.
    ".globl tpr_probe_flags",
    ".globl tpr_flags_bp1",
    ".globl tpr_flags_bp2",
    ".globl tpr_flags_bp3",
    "tpr_probe_flags:",
    "tpr_flags_bp1:",
    "int3",
    "pushfq",
    "pop rax",
    "setc cl",
    "cld",
    "mov [rdi], rax",
    "mov [rdi + 8], cl",
    "tpr_flags_bp2:",
    "int3",
    "pushfq",
    "pop rax",
    "setc cl",
    "cld",
    "mov [rdi + 16], rax",
    "mov [rdi + 24], cl",
    "tpr_flags_bp3:",
    "int3",
    "ret",
    // x87 and SSE: st0 = sqrt(32), xmm7 = *rdi; stop; store xmm7, st0 (as
    // f64) and mxcsr to rsi; restore mxcsr; stop.
    ".globl tpr_probe_float",
    ".globl tpr_float_bp1",
    ".globl tpr_float_bp2",
    "tpr_probe_float:",
    "stmxcsr [rsi + 28]",
    "fninit",
    "fld dword ptr [rip + 3f]",
    "fsqrt",
    "movdqu xmm7, xmmword ptr [rdi]",
    "tpr_float_bp1:",
    "int3",
    "movdqu xmmword ptr [rsi], xmm7",
    "fstp qword ptr [rsi + 16]",
    "stmxcsr [rsi + 24]",
    "ldmxcsr [rsi + 28]",
    "tpr_float_bp2:",
    "int3",
    "ret",
    "3:",
    ".long 0x42000000",
    // fs and gs bases: stop; read fs:[0] and gs:[0]; stop.
    ".globl tpr_probe_env",
    ".globl tpr_env_bp1",
    ".globl tpr_env_bp2",
    "tpr_probe_env:",
    "tpr_env_bp1:",
    "int3",
    "mov rax, qword ptr fs:[0]",
    "mov [rdi], rax",
    "mov rax, qword ptr gs:[0]",
    "mov [rdi + 8], rax",
    "tpr_env_bp2:",
    "int3",
    "ret",
    // Stack: push three known qwords, publish rsp, stop; pop them into
    // rdi[0..3]; stop.
    ".globl tpr_probe_stack",
    ".globl tpr_stack_bp1",
    ".globl tpr_stack_bp2",
    "tpr_probe_stack:",
    "movabs rax, {s0}",
    "push rax",
    "movabs rax, {s1}",
    "push rax",
    "movabs rax, {s2}",
    "push rax",
    "mov [rip + {sp}], rsp",
    "tpr_stack_bp1:",
    "int3",
    "pop rax",
    "mov [rdi], rax",
    "pop rax",
    "mov [rdi + 8], rax",
    "pop rax",
    "mov [rdi + 16], rax",
    "tpr_stack_bp2:",
    "int3",
    "ret",
    // The same around a getpid system call: presets, syscall (the tracer
    // changes registers at its entry stop), store what came back, stop.
    ".globl tpr_probe_sys",
    ".globl tpr_sys_ret",
    ".globl tpr_sys_bp",
    "tpr_probe_sys:",
    "push rbx",
    "push rbp",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "movabs rbx, {p0}",
    "movabs rbp, {p1}",
    "movabs r12, {p2}",
    "movabs r13, {p3}",
    "movabs r14, {p4}",
    "movabs r15, {p5}",
    "mov eax, {getpid}",
    "syscall",
    "tpr_sys_ret:",
    "mov [rdi], rbx",
    "mov [rdi + 8], rbp",
    "mov [rdi + 16], r12",
    "mov [rdi + 24], r13",
    "mov [rdi + 32], r14",
    "mov [rdi + 40], r15",
    "mov [rdi + 48], rax",
    "tpr_sys_bp:",
    "int3",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbp",
    "pop rbx",
    "ret",
    // A plain stop.
    ".globl tpr_probe_park",
    ".globl tpr_park_bp",
    "tpr_probe_park:",
    "tpr_park_bp:",
    "int3",
    "ret",
    p0 = const GPR_PRESET[0],
    p1 = const GPR_PRESET[1],
    p2 = const GPR_PRESET[2],
    p3 = const GPR_PRESET[3],
    p4 = const GPR_PRESET[4],
    p5 = const GPR_PRESET[5],
    s0 = const STACK_PUSHED[0],
    s1 = const STACK_PUSHED[1],
    s2 = const STACK_PUSHED[2],
    sp = sym STACK_SP,
    getpid = const syscall::number::SYS_GETPID,
);

unsafe extern "sysv64" {
    fn tpr_probe_gpr(out: *mut u8);
    fn tpr_probe_flags(out: *mut u8);
    fn tpr_probe_float(pattern: *const u8, out: *mut u8);
    fn tpr_probe_env(out: *mut u8);
    fn tpr_probe_stack(out: *mut u8);
    fn tpr_probe_sys(out: *mut u8);
    fn tpr_probe_park();
}

unsafe extern "C" {
    static tpr_gpr_bp1: u8;
    static tpr_gpr_bp2: u8;
    static tpr_flags_bp1: u8;
    static tpr_flags_bp2: u8;
    static tpr_flags_bp3: u8;
    static tpr_float_bp1: u8;
    static tpr_float_bp2: u8;
    static tpr_env_bp1: u8;
    static tpr_env_bp2: u8;
    static tpr_stack_bp1: u8;
    static tpr_stack_bp2: u8;
    static tpr_sys_ret: u8;
    static tpr_sys_bp: u8;
    static tpr_park_bp: u8;
}

/// Addresses of the `int3` instructions of the probes.
pub mod bp {
    pub fn gpr1() -> u64 {
        &raw const super::tpr_gpr_bp1 as u64
    }
    pub fn gpr2() -> u64 {
        &raw const super::tpr_gpr_bp2 as u64
    }
    pub fn flags1() -> u64 {
        &raw const super::tpr_flags_bp1 as u64
    }
    pub fn flags2() -> u64 {
        &raw const super::tpr_flags_bp2 as u64
    }
    pub fn flags3() -> u64 {
        &raw const super::tpr_flags_bp3 as u64
    }
    pub fn float1() -> u64 {
        &raw const super::tpr_float_bp1 as u64
    }
    pub fn float2() -> u64 {
        &raw const super::tpr_float_bp2 as u64
    }
    pub fn env1() -> u64 {
        &raw const super::tpr_env_bp1 as u64
    }
    pub fn env2() -> u64 {
        &raw const super::tpr_env_bp2 as u64
    }
    pub fn stack1() -> u64 {
        &raw const super::tpr_stack_bp1 as u64
    }
    pub fn stack2() -> u64 {
        &raw const super::tpr_stack_bp2 as u64
    }
    /// The instruction after the probe's `syscall` (not an `int3`).
    pub fn sys_ret() -> u64 {
        &raw const super::tpr_sys_ret as u64
    }
    pub fn sys() -> u64 {
        &raw const super::tpr_sys_bp as u64
    }
    pub fn park() -> u64 {
        &raw const super::tpr_park_bp as u64
    }
}

/// Tracee: runs the general-register probe, then exits 0 if it stored
/// `expected` (what the tracer wrote), 2 otherwise.
pub fn run_gpr(expected: [u64; 6]) -> i32 {
    // SAFETY: OUT is 4096 bytes, the probe stores 48; it restores every
    // callee-saved register it changes. Only this thread uses OUT.
    unsafe { tpr_probe_gpr(OUT.ptr()) };
    if read_out_u64s::<6>(0) == expected {
        0
    } else {
        2
    }
}

/// Tracee: runs the getpid probe, then exits 0 if it stored `expected`
/// and its own pid as getpid's result, 2 otherwise.
pub fn run_sys(expected: [u64; 6]) -> i32 {
    // SAFETY: OUT takes the 56 bytes the probe stores; it restores every
    // callee-saved register it changes; getpid has no memory arguments.
    unsafe { tpr_probe_sys(OUT.ptr()) };
    let pid = syscall::getpid().unwrap_or(0) as u64;
    if read_out_u64s::<6>(0) == expected && read_out_u64s::<1>(48)[0] == pid {
        0
    } else {
        2
    }
}

/// Tracee: runs the rflags probe (the tracer reads the results at the
/// stops), exits 0.
pub fn run_flags() -> i32 {
    // SAFETY: the probe stores 25 bytes into OUT and clears DF before it
    // returns; it only clobbers rax and rcx, caller-saved.
    unsafe { tpr_probe_flags(OUT.ptr()) };
    0
}

/// The 128-bit pattern the float probe loads into xmm7.
pub const XMM_PATTERN: u128 = 0x0123_4567_89AB_CDEF_FEDC_BA98_7654_3210;

/// Tracee: runs the float probe with [`XMM_PATTERN`], exits 0.
pub fn run_float() -> i32 {
    let pattern = XMM_PATTERN.to_le_bytes();
    // SAFETY: `pattern` is 16 readable bytes; OUT takes the 32 bytes the
    // probe stores; xmm7 is caller-saved, the x87 stack is left empty and
    // mxcsr restored.
    unsafe { tpr_probe_float(pattern.as_ptr(), OUT.ptr()) };
    0
}

/// Tracee: runs the fs/gs probe, exits 0.
pub fn run_env() -> i32 {
    // SAFETY: the probe reads fs:[0] and gs:[0], which the tracer points at
    // readable statics before resuming it, and stores 16 bytes into OUT.
    unsafe { tpr_probe_env(OUT.ptr()) };
    0
}

/// Tracee: runs the stack probe, exits 0 if it popped `expected`, 2
/// otherwise.
pub fn run_stack(expected: [u64; 3]) -> i32 {
    // SAFETY: the probe pushes and pops three qwords of its own, writes
    // STACK_SP (4096 bytes) and 24 bytes of OUT.
    unsafe { tpr_probe_stack(OUT.ptr()) };
    if read_out_u64s::<3>(0) == expected {
        0
    } else {
        2
    }
}

/// Tracee: stops once at [`bp::park`].
pub fn park() {
    // SAFETY: the probe is `int3; ret` and touches no memory.
    unsafe { tpr_probe_park() };
}

/// Tracee: reads `N` qwords of OUT starting at byte `offset`.
pub fn read_out_u64s<const N: usize>(offset: usize) -> [u64; N] {
    let mut v = [0u64; N];
    for (i, slot) in v.iter_mut().enumerate() {
        // SAFETY: offset + 8 * N stays inside OUT's 4096 bytes for every
        // caller, and OUT is page-aligned, so every qword is aligned when
        // `offset` is a multiple of 8 (it is, for every caller).
        *slot = unsafe { OUT.ptr().add(offset + 8 * i).cast::<u64>().read_volatile() };
    }
    v
}

/// The bulk pattern the tracee writes (`seed` 1) and the tracer writes
/// (`seed` 2) at byte `i`.
pub fn bulk_byte(i: usize, seed: usize) -> u8 {
    let x = i.wrapping_mul(2_654_435_761).wrapping_add(seed * 0x9E37);
    ((x >> 7) ^ (x >> 17) ^ seed) as u8
}

/// Tracee: fills BULK with pattern 1, stops, then checks BULK holds
/// pattern 2 (exit 0) or not (exit 3).
pub fn run_bulk() -> i32 {
    let base = BULK.ptr();
    for i in 0..64 * 1024 {
        // SAFETY: i < BULK's size; only this thread uses BULK.
        unsafe { base.add(i).write_volatile(bulk_byte(i, 1)) };
    }
    park();
    for i in 0..64 * 1024 {
        // SAFETY: as above.
        if unsafe { base.add(i).read_volatile() } != bulk_byte(i, 2) {
            return 3;
        }
    }
    0
}

/// The function a breakpoint is planted in.
#[inline(never)]
pub fn victim(x: u64) -> u64 {
    core::hint::black_box(x).wrapping_mul(3).wrapping_add(1)
}

/// Tracee: calls [`victim`]; exits 0 if it computed the right value.
pub fn run_victim() -> i32 {
    let f: fn(u64) -> u64 = core::hint::black_box(victim);
    if f(14) == 43 {
        0
    } else {
        4
    }
}
