//! Names for error numbers and a short `Display` for syscall errors.

use alloc::format;
use alloc::string::String;
use syscall::error::*;

/// The symbolic name of an error number, e.g. `EFAULT`, or `E?` if unknown.
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        EINTR => "EINTR",
        EIO => "EIO",
        ENXIO => "ENXIO",
        E2BIG => "E2BIG",
        ENOEXEC => "ENOEXEC",
        EBADF => "EBADF",
        ECHILD => "ECHILD",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EFAULT => "EFAULT",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        ENODEV => "ENODEV",
        ENOTDIR => "ENOTDIR",
        EISDIR => "EISDIR",
        EINVAL => "EINVAL",
        ENFILE => "ENFILE",
        EMFILE => "EMFILE",
        ENOTTY => "ENOTTY",
        ESPIPE => "ESPIPE",
        EROFS => "EROFS",
        EPIPE => "EPIPE",
        ERANGE => "ERANGE",
        ENAMETOOLONG => "ENAMETOOLONG",
        ENOSYS => "ENOSYS",
        ETIMEDOUT => "ETIMEDOUT",
        _ => "E?",
    }
}

/// Formats an error as `NAME (number)`, e.g. `EFAULT (14)`.
pub fn describe(err: &Error) -> String {
    format!("{} ({})", errno_name(err.errno), err.errno)
}

/// Formats a syscall result as `Ok(value)` or `Err(NAME (number))`.
pub fn describe_result(res: &Result<usize>) -> String {
    match res {
        Ok(v) => format!("Ok({})", v),
        Err(e) => format!("Err({})", describe(e)),
    }
}
