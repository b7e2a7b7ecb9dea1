//! An strace target for a tracee that stops being strace's descendant.
//!
//! Run as pid 1 (root) without arguments, it forks a child that drops to
//! uid and gid 1000 and runs `strace -f /bin/strace-target-orphan --tree`,
//! and exits with strace's status. So strace is not root and not pid 1.
//!
//! `--tree` (traced): the program forks a child, which forks a grandchild
//! and exits. The grandchild is orphaned onto pid 1, which is not strace:
//! from then on strace may no longer open its `proc:` files (it is no
//! longer an ancestor). The grandchild waits for that (end of file on a
//! pipe only the child held), then calls `getppid` (= 1) and exits 0, and
//! strace must still show all of it. The program itself waits for the
//! grandchild's end (end of file on a pipe the grandchild holds).
#![no_std]
#![no_main]

extern crate alloc;

use syscall::flag::{SIGCHLD, SIG_BLOCK};

rt::entry!(main);

/// The unprivileged user strace runs as.
const USER: usize = 1000;

/// Drops to uid and gid [`USER`] and runs strace on the `--tree` mode.
fn strace_as_user() -> i32 {
    let child = rt::process::fork_with(|| {
        if let Err(e) = syscall::setregid(USER, USER).and_then(|_| syscall::setreuid(USER, USER)) {
            rt::eprintln!("strace-target-orphan: dropping root: {e}");
            return 1;
        }
        let err = rt::process::exec(
            "/bin/strace",
            &["-f", "/bin/strace-target-orphan", "--tree"],
            rt::env(),
        );
        rt::eprintln!("strace-target-orphan: exec strace: {err}");
        1
    });
    let child = match child {
        Ok(pid) => pid,
        Err(e) => {
            rt::eprintln!("strace-target-orphan: fork: {e}");
            return 1;
        }
    };
    match rt::process::wait(child) {
        Ok(status) => rt::process::exit_code(status),
        Err(e) => {
            rt::eprintln!("strace-target-orphan: wait: {e}");
            1
        }
    }
}

/// The traced tree.
fn tree() -> i32 {
    // A child's exit would signal this process at a random point of the
    // trace: keep SIGCHLD blocked, as demo does.
    let _ = syscall::sigprocmask(SIG_BLOCK, Some(&[1u64 << (SIGCHLD - 1), 0]), None);
    let Ok((done_rd, done_wr)) = rt::io::pipe(0) else {
        return 1;
    };
    let child = rt::process::fork_with(move || {
        let Ok((gone_rd, gone_wr)) = rt::io::pipe(0) else {
            return 1;
        };
        let grandchild = rt::process::fork_with(move || {
            let _ = syscall::close(gone_wr);
            // End of file once the child (the only writer) has exited.
            let mut b = [0u8; 1];
            let _ = syscall::read(gone_rd, &mut b);
            match syscall::getppid() {
                Ok(1) => 0,
                _ => 1,
            }
        });
        match grandchild {
            Ok(_) => 0,
            Err(_) => 1,
        }
    });
    let Ok(child) = child else {
        return 1;
    };
    let _ = syscall::close(done_wr);
    let mut status = 0;
    let _ = syscall::waitpid(child, &mut status, syscall::flag::WaitFlags::empty());
    // End of file once the grandchild (the last writer) has exited.
    let mut b = [0u8; 1];
    let _ = syscall::read(done_rd, &mut b);
    0
}

fn main(args: &[&str]) -> i32 {
    if args.get(1) == Some(&"--tree") {
        tree()
    } else {
        strace_as_user()
    }
}
