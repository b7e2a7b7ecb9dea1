//! Shared test machinery: checks run in timed children, tracee processes
//! that are always reaped, gates (pipes) to release them, `status` lines,
//! stop records, and operation writes that retry `EINTR`.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use rt::process::{self, now_ms, sleep_ms, wait_timeout};
use rt::test::Ctx;
use syscall::error::{Error, Result as SysResult, EAGAIN, EINTR};
use syscall::flag::{WaitFlags, O_NONBLOCK, O_RDONLY, SIGKILL};
use tracer::{IntRegisters, PtraceEvent, StopInfo};

/// What every check returns.
pub type Check = Result<(), String>;

/// Runs `f` in a forked child and reports its verdict; the child is killed
/// (and the check fails) if it has not finished within `timeout_ms`.
///
/// Running every check in its own child keeps uid changes, signal handlers
/// and stray tracees of one check away from the others, and a kernel that
/// wedges one check does not stop the rest of the suite.
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
        Ok(Some(status)) => {
            let message = message.clone() + &drain(rd);
            if syscall::flag::wifexited(status) {
                match syscall::flag::wexitstatus(status) {
                    0 if message.is_empty() => Ok(()),
                    1 if !message.is_empty() => Err(message),
                    _ => Err(format!(
                        "check child {}; report: {:?}",
                        process::describe(status),
                        message
                    )),
                }
            } else {
                Err(format!(
                    "check child {}; report: {:?}",
                    process::describe(status),
                    message
                ))
            }
        }
        Ok(None) => {
            let _ = syscall::kill(pid, SIGKILL);
            let _ = wait_timeout(pid, WaitFlags::empty(), 5000);
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

/// A child process that is killed and reaped when dropped, unless it was
/// reaped already.
pub struct Kid {
    pub pid: usize,
    reaped: bool,
}

impl Kid {
    /// Forks a child running `f`; it exits with `f`'s value.
    pub fn spawn(f: impl FnOnce() -> i32) -> Result<Kid, String> {
        let pid = process::fork_with(f).ctx("clone")?;
        Ok(Kid { pid, reaped: false })
    }

    /// Like [`Kid::spawn`], with `clone` flags (`CLONE_FILES` to share
    /// this process's descriptor table); `CLONE_VM` is refused, since the
    /// child runs on a copy of this stack.
    pub fn spawn_flags(
        flags: syscall::flag::CloneFlags,
        f: impl FnOnce() -> i32,
    ) -> Result<Kid, String> {
        if flags.contains(syscall::flag::CloneFlags::CLONE_VM) {
            return Err(String::from("Kid::spawn_flags: CLONE_VM is not supported"));
        }
        // SAFETY: without CLONE_VM the child gets its own copy of memory, so
        // both sides may keep running on the same stack.
        let pid = unsafe { syscall::clone(flags) }.ctx("clone")?;
        if pid == 0 {
            let code = f();
            process::exit((code & 0xff) as usize);
        }
        Ok(Kid { pid, reaped: false })
    }

    /// Waits up to `timeout_ms` for the child to end; returns its status.
    pub fn wait(&mut self, timeout_ms: u64) -> Result<usize, String> {
        match wait_timeout(self.pid, WaitFlags::empty(), timeout_ms).ctx("waitpid")? {
            Some(status) => {
                self.reaped = true;
                Ok(status)
            }
            None => Err(format!(
                "child {} did not end within {} ms",
                self.pid, timeout_ms
            )),
        }
    }

    /// Kills the child with `SIGKILL` and reaps it.
    pub fn kill(&mut self) {
        if !self.reaped {
            let _ = syscall::kill(self.pid, SIGKILL);
            if let Ok(Some(_)) = wait_timeout(self.pid, WaitFlags::empty(), 5000) {
                self.reaped = true;
            }
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A pipe a child blocks on: it reads one byte (or end of file) from
/// `rd`; the parent releases it by writing to `wr`.
pub struct Gate {
    pub rd: usize,
    pub wr: usize,
}

impl Gate {
    pub fn new() -> Result<Gate, String> {
        let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
        Ok(Gate { rd, wr })
    }

    /// In the child: blocks until one byte arrives (or the pipe closes);
    /// returns the byte (0 at end of file).
    pub fn pass(&self) -> u8 {
        let mut b = [0u8; 1];
        match rt::io::read(self.rd, &mut b) {
            Ok(1) => b[0],
            _ => 0,
        }
    }

    /// In the parent: lets one `pass` through.
    pub fn open(&self) -> Check {
        rt::io::write_all(self.wr, b"g").ctx("write gate")
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = syscall::close(self.rd);
        let _ = syscall::close(self.wr);
    }
}

/// Never returns: sleeps in short naps (a tracee with a syscall every
/// millisecond or so).
pub fn nap_forever() -> ! {
    loop {
        let _ = sleep_ms(1);
    }
}

/// `proc:<pid>/status`, the whole line.
pub fn status_line(pid: usize) -> Result<String, String> {
    let fd = syscall::open(format!("proc:{pid}/status"), O_RDONLY)
        .ctx(&format!("open proc:{pid}/status"))?;
    let mut buf = [0u8; 512];
    let n = rt::io::read(fd, &mut buf);
    let _ = syscall::close(fd);
    let n = n.ctx("read status")?;
    Ok(String::from_utf8_lossy(&buf[..n]).to_string())
}

/// The value of `key=` in a status line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.trim_end()
        .split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// The `state=` and `tracer=` of `pid`.
pub fn state_of(pid: usize) -> Result<(String, usize), String> {
    let line = status_line(pid)?;
    let state = field(&line, "state").ok_or(format!("no state= in {line:?}"))?;
    let tracer = field(&line, "tracer")
        .and_then(|t| t.parse().ok())
        .ok_or(format!("no tracer= in {line:?}"))?;
    Ok((state.to_string(), tracer))
}

/// Checks `state=held tracer=<tracer>`.
pub fn expect_held_by(pid: usize, tracer: usize) -> Check {
    let line = status_line(pid)?;
    let (state, by) = state_of(pid)?;
    if state == "held" && by == tracer {
        Ok(())
    } else {
        Err(format!(
            "pid {pid}: expected state=held tracer={tracer}, got {:?}",
            line.trim_end()
        ))
    }
}

/// Polls `status` every millisecond until `pid` is neither held nor
/// traced (`tracer=0`).
pub fn wait_untraced(pid: usize, timeout_ms: u64) -> Check {
    let deadline = now_ms() + timeout_ms;
    loop {
        let (state, tracer) = state_of(pid)?;
        if state != "held" && tracer == 0 {
            return Ok(());
        }
        if now_ms() >= deadline {
            return Err(format!(
                "pid {pid} still state={state} tracer={tracer} after {timeout_ms} ms"
            ));
        }
        let _ = sleep_ms(1);
    }
}

/// Polls `status` every millisecond until `state=` is `state`.
pub fn wait_for_state(pid: usize, state: &str, timeout_ms: u64) -> Check {
    let deadline = now_ms() + timeout_ms;
    loop {
        let (now, _) = state_of(pid)?;
        if now == state {
            return Ok(());
        }
        if now_ms() >= deadline {
            return Err(format!(
                "pid {pid} not {state} after {timeout_ms} ms (state={now})"
            ));
        }
        let _ = sleep_ms(1);
    }
}

/// Our pid.
pub fn me() -> usize {
    syscall::getpid().unwrap_or(0)
}

/// `proc:<pid>/stop`.
pub fn stop_of(pid: usize) -> Result<StopInfo, String> {
    let fd = tracer::open_proc(pid, "stop", O_RDONLY).ctx("open stop")?;
    let mut buf = [0u8; StopInfo::SIZE];
    let n = rt::io::read(fd, &mut buf);
    let _ = syscall::close(fd);
    let n = n.ctx("read stop")?;
    if n != StopInfo::SIZE {
        return Err(format!("read stop: {n} bytes, expected {}", StopInfo::SIZE));
    }
    StopInfo::from_bytes(&buf).ok_or(String::from("stop: bad record"))
}

/// `proc:<pid>/regs/int`, read through a fresh descriptor.
pub fn regs_of(pid: usize) -> Result<IntRegisters, String> {
    let fd = tracer::open_proc(pid, "regs/int", O_RDONLY).ctx("open regs/int")?;
    let r = read_regs_fd(fd);
    let _ = syscall::close(fd);
    r
}

/// Reads an `IntRegisters` from a `regs/int` descriptor.
pub fn read_regs_fd(fd: usize) -> Result<IntRegisters, String> {
    let mut buf = [0u8; IntRegisters::SIZE];
    let n = rt::io::read(fd, &mut buf).ctx("read regs/int")?;
    if n != IntRegisters::SIZE {
        return Err(format!(
            "read regs/int: {n} bytes, expected {}",
            IntRegisters::SIZE
        ));
    }
    IntRegisters::from_bytes(&buf).ok_or(String::from("regs/int: bad record"))
}

/// Writes operation `op` to a `trace` descriptor, retrying `EINTR` (a
/// child's exit sends us `SIGCHLD`, which may end a blocking write).
pub fn op(fd: usize, op: u8) -> SysResult<usize> {
    loop {
        match syscall::write(fd, &[op]) {
            Err(e) if e.errno == EINTR => {}
            other => return other,
        }
    }
}

/// Like [`op`], but a failure becomes a message naming the operation.
pub fn op_ok(fd: usize, code: u8) -> Result<usize, String> {
    op(fd, code).ctx(&format!("write op {code:#04x}"))
}

/// Reads every queued event from a `trace` descriptor.
pub fn events(fd: usize) -> Result<Vec<PtraceEvent>, String> {
    let mut all = Vec::new();
    let mut buf = vec![0u8; PtraceEvent::SIZE * 8];
    loop {
        let n = syscall::read(fd, &mut buf).ctx("read trace")?;
        if n % PtraceEvent::SIZE != 0 {
            return Err(format!("read trace returned {n} bytes, not whole records"));
        }
        for chunk in buf[..n].chunks_exact(PtraceEvent::SIZE) {
            all.push(PtraceEvent::from_bytes(chunk).ok_or("bad event record")?);
        }
        if n < buf.len() {
            return Ok(all);
        }
    }
}

/// Polls a non-blocking `trace` descriptor with `PTRACE_WAIT` until it
/// returns something other than `EAGAIN`.
pub fn poll_wait(fd: usize, timeout_ms: u64) -> Result<usize, String> {
    let deadline = now_ms() + timeout_ms;
    loop {
        match op(fd, tracer::PTRACE_WAIT) {
            Err(Error { errno: EAGAIN }) if now_ms() < deadline => {
                let _ = sleep_ms(1);
            }
            Err(Error { errno: EAGAIN }) => {
                return Err(format!("PTRACE_WAIT still EAGAIN after {timeout_ms} ms"))
            }
            other => return other.ctx("PTRACE_WAIT"),
        }
    }
}

/// Resumes with `PTRACE_SYSCALL` (reading away any events) until the
/// tracee is held at a stop that `want` accepts; at most `tries` stops.
pub fn syscall_until(
    fd: usize,
    pid: usize,
    tries: usize,
    want: impl Fn(&StopInfo) -> bool,
) -> Result<StopInfo, String> {
    for _ in 0..tries {
        let mut reached = op_ok(fd, tracer::PTRACE_SYSCALL)?;
        while reached == 0 {
            events(fd)?;
            reached = op_ok(fd, tracer::PTRACE_WAIT)?;
        }
        let stop = stop_of(pid)?;
        if want(&stop) {
            return Ok(stop);
        }
    }
    Err(format!("no wanted stop within {tries} syscall stops"))
}

/// The `fpath` of a descriptor.
pub fn fpath_of(fd: usize) -> Result<String, String> {
    let mut buf = [0u8; 128];
    let n = syscall::fpath(fd, &mut buf).ctx("fpath")?;
    Ok(String::from_utf8_lossy(&buf[..n]).to_string())
}

/// Opens `proc:<path>` raw (no `O_CLOEXEC`) and closes it again at once on
/// success; returns the open's result.
pub fn try_open(path: &str, flags: usize) -> SysResult<()> {
    let fd = syscall::open(path, flags)?;
    let _ = syscall::close(fd);
    Ok(())
}

/// Checks that opening `path` with `flags` fails with `errno`.
pub fn expect_open_err(path: &str, flags: usize, errno: i32) -> Check {
    rt::test::expect_errno(
        &format!("open {path:?} flags {flags:#x}"),
        try_open(path, flags),
        errno,
    )
}

/// Checks that opening `path` with `flags` succeeds.
pub fn expect_open_ok(path: &str, flags: usize) -> Check {
    try_open(path, flags).ctx(&format!("open {path:?} flags {flags:#x}"))
}

/// Drops root to `uid` (real and effective), keeping the gids.
pub fn become_user(uid: usize) -> Check {
    syscall::setreuid(uid, uid)
        .map(|_| ())
        .ctx(&format!("setreuid({uid}, {uid})"))
}

/// Sets real and effective gid.
pub fn become_group(gid: usize) -> Check {
    syscall::setregid(gid, gid)
        .map(|_| ())
        .ctx(&format!("setregid({gid}, {gid})"))
}

/// Installs `handler` for `sig` (no flags, empty mask).
pub fn set_handler(sig: usize, handler: extern "C" fn(usize)) -> Check {
    let act = syscall::data::SigAction {
        sa_handler: Some(handler),
        sa_mask: [0; 2],
        sa_flags: syscall::flag::SigActionFlags::empty(),
    };
    syscall::sigaction(sig, Some(&act), None)
        .map(|_| ())
        .ctx("sigaction")
}
