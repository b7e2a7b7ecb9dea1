//! An strace target with more busy tracees than one 16-record read of
//! strace's event queue reports: 24 children wait at a gate (end of file on
//! a pipe), are let go all at once, then each calls `getpid` 10 times and
//! exits with its number (1 to 24). The parent reaps them in order.
#![no_std]
#![no_main]

use syscall::flag::{WaitFlags, SIGCHLD, SIG_BLOCK};

rt::entry!(main);

/// How many children run at once.
const CHILDREN: usize = 24;
/// `getpid` calls per child.
const CALLS: usize = 10;

fn main(_args: &[&str]) -> i32 {
    // As in demo: keep SIGCHLD from landing at a random point of the trace.
    let _ = syscall::sigprocmask(SIG_BLOCK, Some(&[1u64 << (SIGCHLD - 1), 0]), None);
    let Ok((gate_rd, gate_wr)) = rt::io::pipe(0) else {
        return 1;
    };
    let mut pids = [0usize; CHILDREN];
    for (i, pid) in pids.iter_mut().enumerate() {
        let child = rt::process::fork_with(move || {
            let _ = syscall::close(gate_wr);
            let mut b = [0u8; 1];
            let _ = syscall::read(gate_rd, &mut b);
            for _ in 0..CALLS {
                let _ = syscall::getpid();
            }
            i as i32 + 1
        });
        match child {
            Ok(child) => *pid = child,
            Err(_) => return 1,
        }
    }
    // The last writer goes: every child's read ends now.
    let _ = syscall::close(gate_wr);
    let mut failed = 0;
    for (i, &pid) in pids.iter().enumerate() {
        let mut status = 0;
        match syscall::waitpid(pid, &mut status, WaitFlags::empty()) {
            Ok(_) if syscall::flag::wexitstatus(status) == i + 1 => {}
            _ => failed += 1,
        }
    }
    if failed == 0 {
        0
    } else {
        1
    }
}
