//! The error numbers this crate returns: plain `i32`s with `redox_syscall`'s
//! values, so the kernel can hand them to `syscall::Error::new` unchanged.

/// An error number, positive (the kernel negates it on return to user mode).
pub type Errno = i32;

/// Operation not permitted.
pub const EPERM: Errno = 1;
/// No such file (unknown `proc:` file name).
pub const ENOENT: Errno = 2;
/// No such process, or it has exited.
pub const ESRCH: Errno = 3;
/// Interrupted by a signal.
pub const EINTR: Errno = 4;
/// Bad file handle.
pub const EBADF: Errno = 9;
/// Try again (non-blocking handle with nothing ready).
pub const EAGAIN: Errno = 11;
/// Bad address.
pub const EFAULT: Errno = 14;
/// Busy (already traced, or not held for a register write).
pub const EBUSY: Errno = 16;
/// Invalid argument.
pub const EINVAL: Errno = 22;
