//! An strace target for the descriptor table strace keeps to name
//! `fexec`'s file: a duplicate made with `fcntl(F_DUPFD)` names the same
//! file, and a successful `fexec` closes the close-on-exec descriptors, so
//! their numbers name nothing any more. The program runs three times, each
//! run `fexec`ing the next:
//!
//! 1. (no argument) opens itself close-on-exec (descriptor `A`), duplicates
//!    it with `fcntl(A, F_DUPFD, 10)` (not close-on-exec) and `fexec`s 10
//!    with `again A`;
//! 2. `again A`: `fexec(A)` fails with `EBADF` (the first `fexec` closed
//!    it); marks 10 close-on-exec (`F_SETFD`) and `fexec`s it with `last`;
//! 3. `last`: `fexec(10)` fails with `EBADF`; exits 0.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use syscall::error::EBADF;
use syscall::flag::{F_DUPFD, F_SETFD, O_CLOEXEC, O_RDONLY};

rt::entry!(main);

/// This program.
const SELF: &str = "/bin/strace-target-fds";
/// Where the duplicate goes.
const DUP_AT: usize = 10;

/// `fexec(fd)` of this program with `args`; returns its error.
fn exec(fd: usize, args: &[&str]) -> syscall::Error {
    let mut argv = alloc::vec![SELF];
    argv.extend_from_slice(args);
    rt::process::fexec_fd(fd, &argv, rt::env())
}

/// Runs 2 and 3 expect `fexec` of a closed descriptor to fail with EBADF.
fn expect_ebadf(fd: usize, args: &[&str]) -> Result<(), String> {
    match exec(fd, args) {
        e if e.errno == EBADF => Ok(()),
        e => Err(format!("fexec({fd}): {e}, expected EBADF")),
    }
}

fn run(args: &[&str]) -> Result<(), String> {
    match args.get(1).copied() {
        None => {
            let fd = syscall::open(SELF, O_RDONLY | O_CLOEXEC).map_err(|e| format!("open: {e}"))?;
            let dup = syscall::fcntl(fd, F_DUPFD, DUP_AT).map_err(|e| format!("F_DUPFD: {e}"))?;
            if dup != DUP_AT {
                return Err(format!("F_DUPFD gave {dup}, expected {DUP_AT}"));
            }
            let fd = format!("{fd}");
            Err(format!("fexec: {}", exec(DUP_AT, &["again", &fd])))
        }
        Some("again") => {
            let fd: usize = args
                .get(2)
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| String::from("again: no descriptor"))?;
            expect_ebadf(fd, &["never"])?;
            syscall::fcntl(DUP_AT, F_SETFD, 1).map_err(|e| format!("F_SETFD: {e}"))?;
            Err(format!("fexec: {}", exec(DUP_AT, &["last"])))
        }
        Some("last") => expect_ebadf(DUP_AT, &["never"]),
        Some(other) => Err(format!("unknown argument {other:?}")),
    }
}

fn main(args: &[&str]) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(e) => {
            rt::eprintln!("strace-target-fds: {e}");
            1
        }
    }
}
