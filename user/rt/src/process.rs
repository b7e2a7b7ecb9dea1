//! Processes: exit, fork, exec, spawn, wait, and naming of wait statuses and signals.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use syscall::error::{Error, Result, EINTR};
use syscall::flag::{
    wexitstatus, wifcontinued, wifexited, wifsignaled, wifstopped, wstopsig, wtermsig, CloneFlags,
    WaitFlags, O_CLOEXEC, O_RDONLY,
};

/// Ends the process with `status`; never returns.
pub fn exit(status: usize) -> ! {
    loop {
        let _ = syscall::exit(status);
    }
}

/// `clone` without flags: copies the address space and descriptor table.
/// Returns the child pid in the parent and 0 in the child.
pub fn fork() -> Result<usize> {
    // SAFETY: without CLONE_VM the child gets its own copy of memory, so both
    // sides may keep running on the same stack.
    unsafe { syscall::clone(CloneFlags::empty()) }
}

/// Forks a child that runs `f` and exits with its result; returns the pid.
pub fn fork_with(f: impl FnOnce() -> i32) -> Result<usize> {
    let pid = fork()?;
    if pid == 0 {
        let code = f();
        exit((code & 0xff) as usize);
    }
    Ok(pid)
}

/// Turns `parts` into the `[ptr, len]` pairs `fexec` takes. The pairs borrow
/// from `parts`, which must outlive their use.
fn pairs(parts: &[&str]) -> Vec<[usize; 2]> {
    parts
        .iter()
        .map(|s| [s.as_ptr() as usize, s.len()])
        .collect()
}

fn argv_for<'a>(path: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut argv = Vec::with_capacity(args.len() + 1);
    argv.push(path);
    argv.extend_from_slice(args);
    argv
}

/// Replaces the current image with the program at `path`, with `argv` as the
/// full argument list (argv[0] included) and `env` as its environment.
/// Returns only on failure.
pub fn fexec_fd(fd: usize, argv: &[&str], env: &[&str]) -> Error {
    let a = pairs(argv);
    let v = pairs(env);
    match syscall::fexec(fd, &a, &v) {
        Ok(_) => Error::new(syscall::error::EIO),
        Err(e) => e,
    }
}

/// Opens `path` and replaces the current image with it; `args` are the
/// arguments after argv[0] (which is `path`). Returns only on failure.
pub fn exec(path: &str, args: &[&str], env: &[&str]) -> Error {
    let fd = match syscall::open(path, O_RDONLY | O_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let err = fexec_fd(fd, &argv_for(path, args), env);
    let _ = syscall::close(fd);
    err
}

/// Starts the program at `path` in a new child with the current environment.
/// `args` are the arguments after argv[0] (which is `path`).
///
/// The file is opened in the parent, so a missing program is reported here
/// (`ENOENT`). If `fexec` fails in the child, the child prints why and exits
/// with status 127.
pub fn spawn(path: &str, args: &[&str]) -> Result<usize> {
    spawn_env(path, args, crate::env())
}

/// Like [`spawn`] with an explicit environment (`KEY=VALUE` strings).
pub fn spawn_env(path: &str, args: &[&str], env: &[&str]) -> Result<usize> {
    // O_CLOEXEC: the new program must not inherit the descriptor of its own file.
    let fd = syscall::open(path, O_RDONLY | O_CLOEXEC)?;
    let argv = argv_for(path, args);
    // Build everything the child needs before cloning.
    let a = pairs(&argv);
    let v = pairs(env);
    let pid = match fork() {
        Ok(pid) => pid,
        Err(e) => {
            let _ = syscall::close(fd);
            return Err(e);
        }
    };
    if pid == 0 {
        let err = match syscall::fexec(fd, &a, &v) {
            Ok(_) => Error::new(syscall::error::EIO),
            Err(e) => e,
        };
        crate::eprintln!("{}: cannot execute: {}", path, crate::errno::describe(&err));
        exit(127);
    }
    let _ = syscall::close(fd);
    Ok(pid)
}

/// `waitpid` that retries `EINTR`; returns `(pid, status)`. `pid == 0` waits
/// for any child.
pub fn waitpid(pid: usize, flags: WaitFlags) -> Result<(usize, usize)> {
    loop {
        let mut status = 0;
        match syscall::waitpid(pid, &mut status, flags) {
            Ok(got) => return Ok((got, status)),
            Err(e) if e.errno == EINTR => {}
            Err(e) => return Err(e),
        }
    }
}

/// Waits until child `pid` exits or is killed; returns its status.
pub fn wait(pid: usize) -> Result<usize> {
    waitpid(pid, WaitFlags::empty()).map(|(_, status)| status)
}

/// Current monotonic time in milliseconds (0 if the clock fails).
pub fn now_ms() -> u64 {
    let mut ts = syscall::TimeSpec::default();
    match syscall::clock_gettime(syscall::flag::CLOCK_MONOTONIC, &mut ts) {
        Ok(_) => ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000,
        Err(_) => 0,
    }
}

/// Sleeps for `ms` milliseconds, going back to sleep for the remaining time
/// if a signal interrupts it (`EINTR`).
pub fn sleep_ms(ms: u64) -> Result<()> {
    let mut req = syscall::TimeSpec {
        tv_sec: (ms / 1000) as i64,
        tv_nsec: ((ms % 1000) * 1_000_000) as i32,
    };
    loop {
        let mut rem = syscall::TimeSpec::default();
        match syscall::nanosleep(&req, &mut rem) {
            Ok(_) => return Ok(()),
            Err(e) if e.errno == EINTR && (rem.tv_sec > 0 || rem.tv_nsec > 0) => req = rem,
            Err(e) if e.errno == EINTR => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Polls `waitpid(pid, flags | WNOHANG)` every millisecond for up to
/// `timeout_ms`; `Ok(None)` if nothing was reported in time.
pub fn wait_timeout(pid: usize, flags: WaitFlags, timeout_ms: u64) -> Result<Option<usize>> {
    let deadline = now_ms() + timeout_ms;
    loop {
        let (got, status) = waitpid(pid, flags | WaitFlags::WNOHANG)?;
        if got != 0 {
            return Ok(Some(status));
        }
        if now_ms() >= deadline {
            return Ok(None);
        }
        let _ = sleep_ms(1);
    }
}

/// The conventional shell exit code for a wait status: the exit status, or
/// 128 + signal for a killed process.
pub fn exit_code(status: usize) -> i32 {
    if wifsignaled(status) {
        128 + wtermsig(status) as i32
    } else {
        wexitstatus(status) as i32
    }
}

/// Describes a wait status: `exited N`, `killed by SIGNAME`, `stopped by
/// SIGNAME`, `continued`.
pub fn describe(status: usize) -> String {
    if wifcontinued(status) {
        String::from("continued")
    } else if wifstopped(status) {
        format!("stopped by {}", signal_name(wstopsig(status)))
    } else if wifsignaled(status) {
        format!("killed by {}", signal_name(wtermsig(status)))
    } else if wifexited(status) {
        format!("exited {}", wexitstatus(status))
    } else {
        format!("status {:#x}", status)
    }
}

/// The name of signal `sig`, e.g. `SIGSEGV` (`SIG?` if unknown).
pub fn signal_name(sig: usize) -> &'static str {
    const NAMES: [&str; 32] = [
        "SIG0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES.get(sig).copied().unwrap_or("SIG?")
}
