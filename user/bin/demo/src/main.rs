//! A small tour of the system-call interface, made to be watched with
//! `strace -f /bin/demo`: console output, a failed open, a child that
//! exits with a status, a signal handler running inside `kill`.
#![no_std]
#![no_main]

use syscall::data::SigAction;
use syscall::flag::{SigActionFlags, WaitFlags, O_CLOEXEC, O_RDONLY, SIGCHLD, SIGUSR1, SIG_BLOCK};

rt::entry!(main);

/// The status the child exits with.
const CHILD_STATUS: i32 = 3;

extern "C" fn on_usr1(_sig: usize) {
    // Plain `write`: nothing in a handler may take locks.
    let _ = syscall::write(1, b"demo: got SIGUSR1\n");
}

fn main(_args: &[&str]) -> i32 {
    rt::println!("demo: hello");
    // SIGCHLD would be reported wherever the child's exit happens to catch
    // this process; blocking it keeps the trace the same from run to run.
    let _ = syscall::sigprocmask(SIG_BLOCK, Some(&[1u64 << (SIGCHLD - 1), 0]), None);
    if syscall::open("/bin/nothere", O_RDONLY | O_CLOEXEC).is_ok() {
        rt::println!("demo: /bin/nothere exists?");
    }
    let child = match rt::process::fork_with(|| {
        rt::println!("demo: child exits with {}", CHILD_STATUS);
        CHILD_STATUS
    }) {
        Ok(pid) => pid,
        Err(e) => {
            rt::eprintln!("demo: fork: {}", e);
            return 1;
        }
    };
    let mut status = 0;
    if let Err(e) = syscall::waitpid(child, &mut status, WaitFlags::empty()) {
        rt::eprintln!("demo: waitpid: {}", e);
        return 1;
    }
    rt::println!("demo: child {}", rt::process::describe(status));
    let action = SigAction {
        sa_handler: Some(on_usr1),
        sa_mask: [0, 0],
        sa_flags: SigActionFlags::empty(),
    };
    if let Err(e) = syscall::sigaction(SIGUSR1, Some(&action), None) {
        rt::eprintln!("demo: sigaction: {}", e);
        return 1;
    }
    let me = syscall::getpid().unwrap_or(0);
    let _ = syscall::kill(me, SIGUSR1);
    rt::println!("demo: bye");
    0
}
