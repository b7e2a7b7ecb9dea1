//! An strace target with a process killed inside a system call: a child
//! sleeps in `nanosleep`; once its `proc:` status says it is blocked, the
//! parent kills it with SIGKILL and reaps it.
#![no_std]
#![no_main]

extern crate alloc;

use syscall::flag::{O_CLOEXEC, O_RDONLY, SIGCHLD, SIGKILL, SIG_BLOCK};

rt::entry!(main);

/// Whether `pid`'s status line says it is blocked in the kernel.
fn blocked(pid: usize) -> bool {
    let path = alloc::format!("proc:{pid}/status");
    let Ok(fd) = syscall::open(&path, O_RDONLY | O_CLOEXEC) else {
        return false;
    };
    let mut buf = [0u8; 256];
    let n = syscall::read(fd, &mut buf).unwrap_or(0);
    let _ = syscall::close(fd);
    let text = core::str::from_utf8(&buf[..n]).unwrap_or("");
    text.contains(" state=blocked ")
}

fn main(_args: &[&str]) -> i32 {
    // As in demo: keep SIGCHLD from landing at a random point of the trace.
    let _ = syscall::sigprocmask(SIG_BLOCK, Some(&[1u64 << (SIGCHLD - 1), 0]), None);
    let child = match rt::process::fork_with(|| {
        let long = syscall::TimeSpec {
            tv_sec: 100,
            tv_nsec: 0,
        };
        let mut rem = syscall::TimeSpec::default();
        let _ = syscall::nanosleep(&long, &mut rem);
        1
    }) {
        Ok(pid) => pid,
        Err(_) => return 1,
    };
    while !blocked(child) {
        let _ = syscall::sched_yield();
    }
    let _ = syscall::kill(child, SIGKILL);
    let status = rt::process::wait(child).unwrap_or(0);
    rt::println!("kill: child {}", rt::process::describe(status));
    0
}
