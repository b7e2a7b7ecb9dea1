//! A tracer's plumbing: operation writes that retry `EINTR`, the event
//! queue, `stop` and `regs/int` records read through fresh descriptors,
//! open checks, and the ids and signal dispositions a check sets up.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use rt::process::{now_ms, sleep_ms};
use rt::test::Ctx;
use syscall::data::SigAction;
use syscall::error::{Error, Result as SysResult, EAGAIN, EINTR, EPERM};
use syscall::flag::{SigActionFlags, O_RDONLY, O_RDWR};
use tracer::{IntRegisters, PtraceEvent, StopInfo};

use crate::Check;

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

/// Expects `EPERM` for every file but `status`, and `status` to open.
pub fn expect_only_status(pid: usize, what: &str) -> Check {
    for (file, flags) in [
        ("trace", O_RDWR),
        ("regs/int", O_RDONLY),
        ("regs/float", O_RDONLY),
        ("regs/env", O_RDONLY),
        ("mem", O_RDWR),
        ("stop", O_RDONLY),
    ] {
        expect_open_err(&format!("proc:{pid}/{file}"), flags, EPERM)
            .map_err(|e| format!("{what}: {e}"))?;
    }
    expect_open_ok(&format!("proc:{pid}/status"), O_RDONLY).map_err(|e| format!("{what}: {e}"))
}

/// Expects every file but `trace` to open (`regs/int` and `mem` for
/// writing).
pub fn expect_files_open(pid: usize, what: &str) -> Check {
    for (file, flags) in [
        ("regs/int", O_RDWR),
        ("regs/float", O_RDONLY),
        ("regs/env", O_RDONLY),
        ("mem", O_RDWR),
        ("stop", O_RDONLY),
        ("status", O_RDONLY),
    ] {
        expect_open_ok(&format!("proc:{pid}/{file}"), flags).map_err(|e| format!("{what}: {e}"))?;
    }
    Ok(())
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
    let act = SigAction {
        sa_handler: Some(handler),
        sa_mask: [0; 2],
        sa_flags: SigActionFlags::empty(),
    };
    syscall::sigaction(sig, Some(&act), None)
        .map(|_| ())
        .ctx("sigaction")
}

/// Sets the disposition of `sig`: `SIG_DFL` (0), `SIG_IGN` (1) or a handler
/// address.
pub fn set_disposition(sig: usize, handler: usize) -> Check {
    // SAFETY: `Option<extern "C" fn(usize)>` has the layout of a usize with 0
    // as None; the values used here are 0, 1 (which the kernel reads as
    // SIG_IGN and never calls) or the address of such a function.
    let h = unsafe { core::mem::transmute::<usize, Option<extern "C" fn(usize)>>(handler) };
    let act = SigAction {
        sa_handler: h,
        sa_mask: [0; 2],
        sa_flags: SigActionFlags::empty(),
    };
    syscall::sigaction(sig, Some(&act), None).ctx("sigaction")?;
    Ok(())
}
