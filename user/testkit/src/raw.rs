//! Raw system calls: the asm a check needs to pass arguments the `syscall`
//! crate's typed wrappers would not, and to see `rax` as the kernel left it.

/// A raw system call with six arguments; returns `rax` as the kernel left it.
///
/// # Safety
/// The arguments must be valid for system call `nr`.
pub unsafe fn raw6(nr: usize, a: [usize; 6]) -> usize {
    let ret: usize;
    // SAFETY: the caller vouches for the arguments; `syscall` clobbers only
    // rcx and r11 besides rax.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            out("rcx") _,
            out("r11") _,
            options(nostack),
        );
    }
    ret
}
