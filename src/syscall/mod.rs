//! System calls: `handle` runs one call by number. The order around it
//! (ptrace stops, signal delivery, the way back to user mode) is the
//! boundary's: see `crate::usermode`.

// User input flows through here: no unwrap, no unchecked indexing
// (each exception is a local `#[allow]` with its reason).
#![warn(clippy::unwrap_used, clippy::indexing_slicing)]

mod fs;
pub mod futex;
mod mmap;
mod proc;
pub mod usermem;

use syscall::error::*;
use syscall::number::*;

use crate::arch::trap_frame::TrapFrame;
use crate::context::signal::{self, InterruptedSyscall};

/// What a call did besides producing a result.
pub enum Outcome {
    /// An ordinary result for `rax`.
    Return(Result<usize>),
    /// `sigreturn` restored the frame; `rax` is already the interrupted
    /// code's, and the interrupted call (if any) now reaches its exit.
    Restored(Option<InterruptedSyscall>),
    /// `exit`: the context ends with this wait status (at the boundary).
    Exit(usize),
}

/// Runs call `nr` with its arguments; `frame` is the caller's saved user
/// registers (for `fexec`, `clone` and `sigreturn`).
pub fn handle(nr: usize, a: [usize; 6], frame: &mut TrapFrame) -> Outcome {
    use Outcome::Return;
    match nr {
        SYS_SIGRETURN => match signal::sigreturn(frame) {
            Ok(interrupted) => Outcome::Restored(interrupted),
            Err(e) => Return(Err(e)),
        },
        SYS_EXIT => Outcome::Exit(crate::process::wait_status_exited(a[0])),
        SYS_FEXEC => Return(proc::fexec(a, frame)),
        SYS_CLONE => Return(crate::process::clone(a[0], frame)),
        _ => Return(simple(nr, a)),
    }
}

/// Calls that only need their arguments.
fn simple(nr: usize, a: [usize; 6]) -> Result<usize> {
    match nr {
        SYS_OPEN => fs::open(a[0], a[1], a[2]),
        SYS_CLOSE => fs::close(a[0]),
        SYS_READ => fs::read(a[0], a[1], a[2]),
        SYS_WRITE => fs::write(a[0], a[1], a[2]),
        SYS_LSEEK => fs::lseek(a[0], a[1] as isize, a[2]),
        SYS_DUP => fs::dup(a[0], a[1], a[2]),
        SYS_DUP2 => fs::dup2(a[0], a[1], a[2], a[3]),
        SYS_FCNTL => fs::fcntl(a[0], a[1], a[2]),
        SYS_FPATH => fs::fpath(a[0], a[1], a[2]),
        SYS_FSTAT => fs::fstat(a[0], a[1], a[2]),
        SYS_PIPE2 => fs::pipe2(a[0], a[1]),
        SYS_FTRUNCATE => fs::ftruncate(a[0], a[1]),
        SYS_FSYNC => fs::fsync(a[0]),
        SYS_FSTATVFS => fs::fstatvfs(a[0], a[1], a[2]),
        SYS_FCHMOD => fs::fchmod(a[0], a[1]),
        SYS_FCHOWN => fs::fchown(a[0], a[1], a[2]),
        SYS_FUTIMENS => fs::futimens(a[0], a[1], a[2]),
        SYS_FRENAME => fs::frename(a[0], a[1], a[2]),
        SYS_UNLINK => fs::unlink(a[0], a[1]),
        SYS_RMDIR => fs::rmdir(a[0], a[1]),
        SYS_LINK => fs::link(a[0], a[1], a[2], a[3]),
        SYS_CHDIR => fs::chdir(a[0], a[1]),
        SYS_GETCWD => fs::getcwd(a[0], a[1]),
        SYS_UMASK => fs::umask(a[0]),
        SYS_CHMOD => fs::chmod(a[0], a[1], a[2]),
        SYS_GETPID => Ok(crate::context::current_pid()),
        SYS_GETPPID => proc::getppid(),
        SYS_GETUID | SYS_GETEUID | SYS_GETGID | SYS_GETEGID => proc::get_id(nr),
        SYS_SETREUID => proc::setreuid(a[0], a[1]),
        SYS_SETREGID => proc::setregid(a[0], a[1]),
        SYS_WAITPID => proc::waitpid(a[0], a[1], a[2]),
        SYS_KILL => proc::kill(a[0], a[1]),
        SYS_SIGACTION => proc::sigaction(a[0], a[1], a[2], a[3]),
        SYS_SIGPROCMASK => proc::sigprocmask(a[0], a[1], a[2]),
        SYS_YIELD => {
            crate::sched::yield_now();
            Ok(0)
        }
        SYS_NANOSLEEP => proc::nanosleep(a[0], a[1]),
        SYS_CLOCK_GETTIME => proc::clock_gettime(a[0], a[1]),
        SYS_FUTEX => futex::futex(a[0], a[1], a[2], a[3], a[4]),
        SYS_FMAP => mmap::fmap(a[0], a[1], a[2]),
        SYS_FMAP_OLD => mmap::fmap_old(a[0], a[1], a[2]),
        SYS_FUNMAP => mmap::funmap(a[0], a[1]),
        SYS_FUNMAP_OLD => mmap::funmap_old(a[0]),
        SYS_MPROTECT => mmap::mprotect(a[0], a[1], a[2]),
        _ => Err(Error::new(ENOSYS)),
    }
}
