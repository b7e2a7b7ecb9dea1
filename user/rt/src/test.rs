//! A tiny test harness: named checks, a summary line, and helpers to run checks in a child.

use alloc::format;
use alloc::string::{String, ToString};
use core::fmt::Debug;

use syscall::error::{Error, Result as SysResult};

use crate::errno;
use crate::process;

/// Counts passed and failed checks and prints one line per check.
pub struct Tests {
    passed: usize,
    failed: usize,
}

impl Default for Tests {
    fn default() -> Self {
        Self::new()
    }
}

impl Tests {
    /// An empty tally.
    pub const fn new() -> Self {
        Tests {
            passed: 0,
            failed: 0,
        }
    }

    /// Records one result, printing `test NAME ... ok` or
    /// `test NAME ... FAILED: reason`.
    pub fn check(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.passed += 1;
                crate::println!("test {} ... ok", name);
            }
            Err(reason) => {
                self.failed += 1;
                crate::println!("test {} ... FAILED: {}", name, reason);
            }
        }
    }

    /// Runs `f` and records its result under `name`.
    pub fn run(&mut self, name: &str, f: impl FnOnce() -> Result<(), String>) {
        let result = f();
        self.check(name, result);
    }

    /// Number of checks that failed so far.
    pub fn failed(&self) -> usize {
        self.failed
    }

    /// Prints `N passed, N failed` on its own line; returns the exit status
    /// (0 if nothing failed, 1 otherwise).
    pub fn finish(self) -> i32 {
        crate::println!("{} passed, {} failed", self.passed, self.failed);
        if self.failed == 0 {
            0
        } else {
            1
        }
    }
}

/// Adds context to syscall errors so `?` works in test functions:
/// `syscall::open("null:", O_RDONLY).ctx("open null:")?`.
pub trait Ctx<T> {
    /// Converts the error into `"what: ENAME (n)"`.
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T> Ctx<T> for SysResult<T> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{}: {}", what, errno::describe(&e)))
    }
}

/// Checks that `got` is `Err(errno)`.
pub fn expect_errno<T: Debug>(what: &str, got: SysResult<T>, errno: i32) -> Result<(), String> {
    match got {
        Err(Error { errno: e }) if e == errno => Ok(()),
        Err(e) => Err(format!(
            "{}: expected {}, got {}",
            what,
            errno::errno_name(errno),
            errno::describe(&e)
        )),
        Ok(v) => Err(format!(
            "{}: expected {}, got Ok({:?})",
            what,
            errno::errno_name(errno),
            v
        )),
    }
}

/// Checks that `got == expected`.
pub fn expect_eq<T: PartialEq + Debug>(what: &str, got: T, expected: T) -> Result<(), String> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{}: expected {:?}, got {:?}", what, expected, got))
    }
}

/// Checks that a wait status says "exited with `code`".
pub fn expect_exit(what: &str, status: usize, code: usize) -> Result<(), String> {
    if syscall::flag::wifexited(status) && syscall::flag::wexitstatus(status) == code {
        Ok(())
    } else {
        Err(format!(
            "{}: expected exited {}, got {}",
            what,
            code,
            process::describe(status)
        ))
    }
}

/// Checks that a wait status says "killed by `sig`".
pub fn expect_killed(what: &str, status: usize, sig: usize) -> Result<(), String> {
    if syscall::flag::wifsignaled(status) && syscall::flag::wtermsig(status) == sig {
        Ok(())
    } else {
        Err(format!(
            "{}: expected killed by {}, got {}",
            what,
            process::signal_name(sig),
            process::describe(status)
        ))
    }
}

/// Runs `f` in a forked child and returns its result in the parent.
///
/// The child sends its failure reason back through a pipe and exits 1, or
/// exits 0 on success; a child that dies any other way is reported with its
/// wait status.
pub fn in_child(f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let (rd, wr) = crate::io::pipe(0).ctx("in_child: pipe2")?;
    let pid = match process::fork() {
        Ok(pid) => pid,
        Err(e) => {
            let _ = syscall::close(rd);
            let _ = syscall::close(wr);
            return Err(format!("in_child: clone: {}", errno::describe(&e)));
        }
    };
    if pid == 0 {
        let _ = syscall::close(rd);
        let code = match f() {
            Ok(()) => 0,
            Err(reason) => {
                let _ = crate::io::write_all(wr, reason.as_bytes());
                1
            }
        };
        let _ = syscall::close(wr);
        process::exit(code);
    }
    let _ = syscall::close(wr);
    let message = crate::io::read_to_end(rd);
    let _ = syscall::close(rd);
    let status = process::wait(pid).ctx("in_child: waitpid")?;
    let message = match message {
        Ok(bytes) => String::from_utf8_lossy(&bytes).to_string(),
        Err(e) => format!(
            "(reading the child's report failed: {})",
            errno::describe(&e)
        ),
    };
    child_verdict("child", status, message)
}

/// The verdict of a child that ran a check (see [`in_child`]): exited 0
/// with no report is a pass, exited 1 with a report is that failure;
/// anything else is a failure that names `who`, its wait status and what
/// it reported.
pub fn child_verdict(who: &str, status: usize, message: String) -> Result<(), String> {
    match (
        syscall::flag::wifexited(status),
        syscall::flag::wexitstatus(status),
    ) {
        (true, 0) if message.is_empty() => Ok(()),
        (true, 1) if !message.is_empty() => Err(message),
        _ => Err(format!(
            "{} {}; report: {:?}",
            who,
            process::describe(status),
            message
        )),
    }
}
