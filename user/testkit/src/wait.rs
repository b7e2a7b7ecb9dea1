//! Wait-status checks: exited with a code, killed by a signal, stopped by
//! a signal; each failure names what was expected and what came.

use alloc::string::String;

use rt::ensure;
use syscall::flag::{wexitstatus, wifexited, wifsignaled, wifstopped, wstopsig, wtermsig};

use crate::Check;

/// A wait status, readably.
pub fn fmt_status(status: usize) -> String {
    rt::process::describe(status)
}

/// Checks that a wait status says "exited `code`".
pub fn expect_exited(what: &str, status: usize, code: usize) -> Check {
    ensure!(
        wifexited(status) && wexitstatus(status) == code,
        "{}: expected exited {}, got {} ({:#x})",
        what,
        code,
        fmt_status(status),
        status
    );
    Ok(())
}

/// Checks that a wait status says "killed by `sig`".
pub fn expect_killed(what: &str, status: usize, sig: usize) -> Check {
    ensure!(
        wifsignaled(status) && wtermsig(status) == sig,
        "{}: expected killed by {}, got {} ({:#x})",
        what,
        rt::process::signal_name(sig),
        fmt_status(status),
        status
    );
    Ok(())
}

/// Checks that a wait status (from `waitpid(WUNTRACED)`) says "stopped by
/// `sig`".
pub fn expect_stopped(what: &str, status: usize, sig: usize) -> Check {
    ensure!(
        wifstopped(status) && wstopsig(status) == sig,
        "{}: expected stopped by {}, got {} ({:#x})",
        what,
        rt::process::signal_name(sig),
        fmt_status(status),
        status
    );
    Ok(())
}
