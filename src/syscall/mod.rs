//! System calls: `dispatch` is the one Rust function the `syscall` entry
//! calls. It runs the ptrace entry stop, the call itself, signal delivery
//! inside the call, the ptrace exit stop and the return-to-user work, then
//! says whether `sysretq` is safe.

mod fs;
mod mmap;
mod proc;
pub mod usermem;

use syscall::error::*;
use syscall::number::*;

use crate::arch::gdt::{USER_CS, USER_SS};
use crate::arch::trap_frame::TrapFrame;
use crate::context::signal::{self, InterruptedSyscall};
use crate::memory::paging::USER_END;

/// What a call did besides producing a result.
pub enum Outcome {
    /// An ordinary result for `rax`.
    Return(Result<usize>),
    /// `sigreturn` restored the frame; `rax` is already the interrupted
    /// code's, and the interrupted call (if any) now reaches its exit.
    Restored(Option<InterruptedSyscall>),
}

fn encode(result: Result<usize>) -> u64 {
    Error::mux(result) as u64
}

/// Called by the `syscall` entry with the saved user registers. Returns
/// true when `sysretq` may be used to return.
pub extern "C" fn dispatch(frame: &mut TrapFrame) -> bool {
    crate::ptrace::on_user_entry(frame);
    let skipped = crate::ptrace::syscall_entry_stop(frame);
    let call = InterruptedSyscall {
        nr: frame.rax as usize,
        args: [
            frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
        ]
        .map(|a| a as usize),
    };
    if !skipped {
        match handle(call.nr, call.args, frame) {
            Outcome::Return(result) => {
                frame.rax = encode(result);
                if !signal::deliver_pending(frame, Some(call)) {
                    crate::ptrace::syscall_exit_stop(frame, call);
                }
            }
            Outcome::Restored(interrupted) => {
                if let Some(call) = interrupted {
                    if !signal::deliver_pending(frame, Some(call)) {
                        crate::ptrace::syscall_exit_stop(frame, call);
                    }
                }
            }
        }
    }
    crate::sched::return_to_user(frame);
    !crate::ptrace::take_force_iret() && sysret_safe(frame)
}

/// `sysretq` restores rip from rcx and rflags from r11, and faults in
/// kernel mode on a non-canonical rip: use it only when the frame is
/// exactly what `syscall` produced.
fn sysret_safe(frame: &TrapFrame) -> bool {
    const TF_RF_VM: u64 = (1 << 8) | (1 << 16) | (1 << 17);
    frame.rcx == frame.rip
        && frame.r11 == frame.rflags
        && frame.rip < USER_END - 0x1000
        && frame.rflags & TF_RF_VM == 0
        && frame.cs == USER_CS as u64
        && frame.ss == USER_SS as u64
}

fn handle(nr: usize, a: [usize; 6], frame: &mut TrapFrame) -> Outcome {
    use Outcome::Return;
    match nr {
        SYS_SIGRETURN => match signal::sigreturn(frame) {
            Ok(interrupted) => Outcome::Restored(interrupted),
            Err(e) => Return(Err(e)),
        },
        SYS_EXIT => crate::process::exit_current(crate::process::wait_status_exited(a[0])),
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
        SYS_FMAP => mmap::fmap(a[0], a[1], a[2]),
        SYS_FMAP_OLD => mmap::fmap_old(a[0], a[1], a[2]),
        SYS_FUNMAP => mmap::funmap(a[0], a[1]),
        SYS_FUNMAP_OLD => mmap::funmap_old(a[0]),
        SYS_MPROTECT => mmap::mprotect(a[0], a[1], a[2]),
        _ => Err(Error::new(ENOSYS)),
    }
}
