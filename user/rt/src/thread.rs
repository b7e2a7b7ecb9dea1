//! Threads: `clone` with a shared address space, running on a heap-allocated stack.

use alloc::alloc::{alloc, dealloc};
use core::alloc::Layout;
use core::arch::asm;

use syscall::error::{Error, Result, EINVAL, ENOMEM};
use syscall::flag::{CLONE_FILES, CLONE_FS, CLONE_SIGHAND, CLONE_VM};
use syscall::number::SYS_CLONE;

/// Flags used for threads: shared memory, filesystem info, descriptors and handlers.
pub fn thread_flags() -> usize {
    (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND).bits()
}

/// A running thread; [`JoinHandle::join`] waits for it and frees its stack.
/// Dropping the handle without joining leaks the stack (the thread may still
/// be using it).
pub struct JoinHandle {
    pid: usize,
    stack: *mut u8,
    layout: Layout,
}

impl JoinHandle {
    /// The thread's pid, as returned by `clone`.
    pub fn pid(&self) -> usize {
        self.pid
    }

    /// Waits for the thread to exit and frees its stack; returns its wait status.
    pub fn join(self) -> Result<usize> {
        let status = crate::process::wait(self.pid)?;
        // SAFETY: the thread has exited, so nothing runs on this stack any
        // more; it was allocated in `spawn` with this layout.
        unsafe { dealloc(self.stack, self.layout) };
        Ok(status)
    }
}

/// First Rust code of a new thread: runs `entry(arg)` and exits with status 0.
extern "C" fn thread_start(entry: usize, arg: usize) -> ! {
    // SAFETY: `entry` was written to the new stack by `spawn` from a
    // `fn(usize)`, and function pointers round-trip through usize.
    let f: fn(usize) = unsafe { core::mem::transmute::<usize, fn(usize)>(entry) };
    f(arg);
    crate::process::exit(0)
}

/// Starts a thread running `entry(arg)` on a new stack of `stack_size` bytes
/// (at least 4 KiB), sharing memory, descriptors and signal handlers.
///
/// `clone` with `CLONE_VM` gives the child the parent's registers, rsp
/// included, so the switch to the new stack happens before the syscall: the
/// parent switches rsp to the new stack, which holds `entry` and `arg`, makes
/// the call, and switches back; the child pops them and calls `thread_start`.
pub fn spawn(stack_size: usize, entry: fn(usize), arg: usize) -> Result<JoinHandle> {
    let size = stack_size
        .max(4096)
        .checked_add(15)
        .ok_or(Error::new(EINVAL))?
        & !15;
    let layout = Layout::from_size_align(size, 16).map_err(|_| Error::new(EINVAL))?;
    // SAFETY: the layout has a non-zero size.
    let stack = unsafe { alloc(layout) };
    if stack.is_null() {
        return Err(Error::new(ENOMEM));
    }
    // The stack top is 16-byte aligned (aligned base, size a multiple of 16).
    let sp = stack as usize + size - 16;
    // SAFETY: sp and sp + 8 lie inside the freshly allocated block and are
    // 8-byte aligned.
    unsafe {
        (sp as *mut usize).write(entry as usize);
        ((sp + 8) as *mut usize).write(arg);
    }
    let ret: usize;
    // SAFETY: the parent path only borrows the new stack during the syscall
    // and restores its own rsp (kept in r12, which the kernel preserves). The
    // child path never returns into this function: after popping `entry` and
    // `arg` its rsp is the aligned stack top and it calls a diverging function.
    unsafe {
        asm!(
            "mov r12, rsp",
            "mov rsp, r13",
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "pop rdi",
            "pop rsi",
            "xor ebp, ebp",
            "call {start}",
            "ud2",
            "2:",
            "mov rsp, r12",
            start = sym thread_start,
            inlateout("rax") SYS_CLONE => ret,
            in("rdi") thread_flags(),
            in("r13") sp,
            out("r12") _,
            out("rcx") _,
            out("r11") _,
        );
    }
    match Error::demux(ret) {
        Ok(pid) => Ok(JoinHandle { pid, stack, layout }),
        Err(e) => {
            // SAFETY: the clone failed, so no thread uses the stack.
            unsafe { dealloc(stack, layout) };
            Err(e)
        }
    }
}
