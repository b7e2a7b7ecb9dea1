//! The one timeout policy of the suites: every check runs in its own forked
//! child with a deadline, and the child is killed (and the check fails) when
//! the deadline passes; the kit's waits and polls give up after
//! [`WAIT_MS`]. Deadlines catch hangs only: no check depends on how fast
//! the machine is.
//!
//! Running every check in its own child also keeps uid changes, signal
//! handlers and stray tracees of one check away from the others.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use rt::process::{self, wait_timeout};
use rt::test::{child_verdict, Ctx};
use rt::Tests;
use syscall::flag::{WaitFlags, O_NONBLOCK, SIGKILL};

use crate::Check;

/// The deadline of a check unless its suite gives it a longer one (a
/// flood, a stress loop).
pub const CHECK_MS: u64 = 20_000;

/// How long the kit waits for a child to end or for a process to reach a
/// state before it reports a failure.
pub const WAIT_MS: u64 = 5_000;

/// Runs `f` under [`CHECK_MS`] and records its result under `name`.
pub fn run(t: &mut Tests, name: &str, f: impl FnOnce() -> Check) {
    run_for(t, name, CHECK_MS, f);
}

/// Runs `f` under `deadline_ms` and records its result under `name`; then
/// reaps what the check child orphaned onto this process.
pub fn run_for(t: &mut Tests, name: &str, deadline_ms: u64, f: impl FnOnce() -> Check) {
    t.check(name, timed(deadline_ms, f));
    reap_orphans();
}

/// A named check and its deadline in milliseconds.
pub type Entry = (&'static str, fn() -> Check, u64);

/// Runs the checks of `table` that `only` names (every one when `only` is
/// empty), each under its own deadline.
pub fn run_table(t: &mut Tests, table: &[Entry], only: &[&str]) {
    for &(name, check, deadline) in table {
        if only.is_empty() || only.contains(&name) {
            run_for(t, name, deadline, check);
        }
    }
}

/// Runs `f` in a forked child and reports its verdict; the child is killed
/// (and the check fails) if it has not finished within `timeout_ms`.
pub fn timed(timeout_ms: u64, f: impl FnOnce() -> Check) -> Check {
    let (rd, wr) = rt::io::pipe(O_NONBLOCK).ctx("timed: pipe")?;
    let pid = match process::fork() {
        Ok(pid) => pid,
        Err(e) => {
            let _ = syscall::close(rd);
            let _ = syscall::close(wr);
            return Err(format!("timed: clone: {}", rt::errno::describe(&e)));
        }
    };
    if pid == 0 {
        let _ = syscall::close(rd);
        let code = match f() {
            Ok(()) => 0,
            Err(reason) => {
                let mut bytes = reason.into_bytes();
                bytes.truncate(4000);
                let _ = rt::io::write_all(wr, &bytes);
                1
            }
        };
        let _ = syscall::close(wr);
        process::exit(code);
    }
    let _ = syscall::close(wr);
    let waited = wait_timeout(pid, WaitFlags::empty(), timeout_ms);
    let message = drain(rd);
    let verdict = match waited {
        Ok(Some(status)) => child_verdict("check child", status, message + &drain(rd)),
        Ok(None) => {
            let _ = syscall::kill(pid, SIGKILL);
            let _ = wait_timeout(pid, WaitFlags::empty(), WAIT_MS);
            Err(format!(
                "timed out after {} ms (the check child was killed); report: {:?}",
                timeout_ms,
                message + &drain(rd)
            ))
        }
        Err(e) => Err(format!("timed: waitpid: {}", rt::errno::describe(&e))),
    };
    let _ = syscall::close(rd);
    verdict
}

/// Reads whatever a non-blocking pipe holds now.
fn drain(fd: usize) -> String {
    let mut out = Vec::new();
    let mut chunk = [0u8; 512];
    while let Ok(n) = rt::io::read(fd, &mut chunk) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Reaps children that were orphaned onto this process (pid 1) by checks
/// that were killed.
pub fn reap_orphans() {
    while let Ok((pid, _)) = process::waitpid(0, WaitFlags::WNOHANG) {
        if pid == 0 {
            break;
        }
    }
}
