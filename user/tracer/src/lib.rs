//! A small client for the kernel's tracing interface (`proc:<pid>/trace`,
//! `regs/*`, `mem`, `stop`), written only against the ABI contract.
//!
//! The core loop every tracer writes is [`Tracer::resume`]: write an
//! operation, and while the write returns 0 (events are unread), read and
//! hand over the events, then write `PTRACE_WAIT` to go on waiting. It
//! returns at the breakpoint the operation set, at an `int3` (where the
//! tracee is held until the caller moves it past the byte), or at the exit.
//! It needs a blocking `trace` handle.
//!
//! A [`Tracer`] opens `stop`, `regs/int` and `mem` once, when it attaches,
//! and keeps them: permission is checked at open only, so a tracee that
//! stops being our descendant (orphaned onto pid 1) stays fully traceable.

#![no_std]

extern crate alloc;

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

pub use abi::{
    EnvRegisters, FloatRegisters, IntRegisters, PtraceEvent, StopInfo, PTRACE_CONT,
    PTRACE_EVENT_CLONE, PTRACE_SIGNAL, PTRACE_SINGLESTEP, PTRACE_STOP_BREAKPOINT, PTRACE_STOP_EXIT,
    PTRACE_STOP_POST_SYSCALL, PTRACE_STOP_PRE_SYSCALL, PTRACE_STOP_SIGNAL, PTRACE_STOP_SINGLESTEP,
    PTRACE_SYSCALL, PTRACE_SYSEMU, PTRACE_WAIT,
};
use core::cell::Cell;

use syscall::error::{Error, Result, EFAULT, EINTR, EINVAL};
use syscall::flag::{F_GETFL, O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_RDWR};

/// A raw system call whose result is decoded as an error only for
/// `-4095..=-1` (redox_syscall's own wrappers look at the low 32 bits only,
/// which misreads large results such as `lseek` to high addresses).
///
/// # Safety
/// The arguments must be valid for system call `nr`.
pub unsafe fn raw_syscall3(nr: usize, a: usize, b: usize, c: usize) -> Result<usize> {
    let ret: usize;
    // SAFETY: the caller vouches for the arguments; `syscall` clobbers only
    // rcx and r11 besides rax.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            out("rcx") _,
            out("r11") _,
            options(nostack),
        );
    }
    if (ret as isize) < 0 && (ret as isize) >= -4095 {
        Err(Error::new(-(ret as isize) as i32))
    } else {
        Ok(ret)
    }
}

/// `lseek(fd, offset, SEEK_SET)` that works for every offset.
pub fn seek_to(fd: usize, offset: u64) -> Result<u64> {
    // SAFETY: lseek takes plain integers.
    unsafe { raw_syscall3(syscall::number::SYS_LSEEK, fd, offset as usize, 0) }.map(|v| v as u64)
}

/// Opens `proc:<pid>/<file>` with `flags`.
pub fn open_proc(pid: usize, file: &str, flags: usize) -> Result<usize> {
    syscall::open(format!("proc:{pid}/{file}"), flags | O_CLOEXEC)
}

/// Why [`Tracer::resume`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// The breakpoint the operation set was reached; `stop` says which.
    Reached(StopInfo),
    /// The tracee executed the `int3` at this address (a
    /// `PTRACE_STOP_BREAKPOINT` event) and is held there, with `rip` on the
    /// `int3` byte. Resuming it as it is executes the `int3` again: the
    /// caller restores the original byte or moves `rip` first, then resumes
    /// with any operation.
    Breakpoint(usize),
    /// The tracee exited (the `PTRACE_STOP_EXIT` event was seen) with this
    /// wait status.
    Exited(usize),
}

/// A `proc:<pid>/` file of the session besides `trace`: opened once and
/// kept, so that later use never meets the permission check again.
struct Sibling {
    file: &'static str,
    flags: usize,
    fd: Cell<Option<usize>>,
}

impl Sibling {
    const fn new(file: &'static str, flags: usize) -> Sibling {
        Sibling {
            file,
            flags,
            fd: Cell::new(None),
        }
    }

    /// The descriptor, opened now if it is not open yet.
    fn fd(&self, pid: usize) -> Result<usize> {
        if let Some(fd) = self.fd.get() {
            return Ok(fd);
        }
        let fd = open_proc(pid, self.file, self.flags)?;
        self.fd.set(Some(fd));
        Ok(fd)
    }

    fn close(&self) {
        if let Some(fd) = self.fd.take() {
            let _ = syscall::close(fd);
        }
    }
}

/// A tracing session on one process.
///
/// Besides `trace`, the session keeps descriptors of `stop`, `regs/int` and
/// `mem`, all opened by [`Tracer::attach_flags`]. The contract checks
/// permission when a file is opened (an ancestor with the same effective
/// uid, or root), so opening them once at attach time means a tracer never
/// loses a tracee it holds: a descendant orphaned onto pid 1 is no longer
/// ours to open, but the kept descriptors still work. `regs/float` and
/// `regs/env` are opened at their first use and kept from then on.
pub struct Tracer {
    pub pid: usize,
    trace: usize,
    stop: Sibling,
    int_regs: Sibling,
    mem: Sibling,
    float_regs: Sibling,
    env_regs: Sibling,
    /// After a signal interrupts a blocking wait in [`Tracer::resume`]:
    /// whether to give up (return `EINTR`) rather than wait on.
    give_up: Option<fn() -> bool>,
    /// Set once the exit event has been seen.
    pub exit_status: Option<usize>,
}

impl Tracer {
    /// Attaches to `pid` (it is stopped before this returns).
    pub fn attach(pid: usize) -> Result<Tracer> {
        Self::attach_flags(pid, 0)
    }

    /// Attaches with extra open flags (`O_EXCL`, `O_NONBLOCK`), and opens
    /// `stop`, `regs/int` and `mem` right away (see [`Tracer`]). Only the
    /// `trace` open can fail the attach: a sibling file that does not open
    /// now (the tracee was killed meanwhile, the descriptor table is full)
    /// is opened again at its first use, where its error is reported.
    pub fn attach_flags(pid: usize, flags: usize) -> Result<Tracer> {
        let trace = open_proc(pid, "trace", O_RDWR | flags)?;
        let tracer = Tracer {
            pid,
            trace,
            stop: Sibling::new("stop", O_RDONLY),
            int_regs: Sibling::new("regs/int", O_RDWR),
            mem: Sibling::new("mem", O_RDWR),
            float_regs: Sibling::new("regs/float", O_RDWR),
            env_regs: Sibling::new("regs/env", O_RDWR),
            give_up: None,
            exit_status: None,
        };
        for file in [&tracer.stop, &tracer.int_regs, &tracer.mem] {
            let _ = file.fd(pid);
        }
        Ok(tracer)
    }

    /// The `trace` descriptor.
    pub fn fd(&self) -> usize {
        self.trace
    }

    /// Writes one operation byte; returns the write's result (0 or 1).
    pub fn op(&self, op: u8) -> Result<usize> {
        syscall::write(self.trace, &[op])
    }

    /// Reads every queued event (never blocks).
    pub fn read_events(&mut self) -> Result<Vec<PtraceEvent>> {
        let mut all = Vec::new();
        let mut buf = vec![0u8; PtraceEvent::SIZE * 16];
        loop {
            let n = syscall::read(self.trace, &mut buf)?;
            for chunk in buf[..n].chunks_exact(PtraceEvent::SIZE) {
                if let Some(event) = PtraceEvent::from_bytes(chunk) {
                    if event.cause == PTRACE_STOP_EXIT {
                        self.exit_status = Some(event.a);
                    }
                    all.push(event);
                }
            }
            if n < buf.len() {
                return Ok(all);
            }
        }
    }

    /// Lets [`Tracer::resume`] give up when a signal interrupts its wait
    /// and `check()` is true (a watchdog's flag, say): it then returns
    /// `EINTR`. The breakpoint stays set, so `resume(PTRACE_WAIT, ..)` goes
    /// on waiting for it. Without this, `resume` always waits on.
    pub fn set_give_up(&mut self, check: fn() -> bool) {
        self.give_up = Some(check);
    }

    /// Whether the `trace` handle is non-blocking (`O_NONBLOCK`, from
    /// `attach_flags` or a later `fcntl(F_SETFL)`).
    pub fn is_nonblocking(&self) -> Result<bool> {
        let flags = syscall::fcntl(self.trace, F_GETFL, 0)?;
        Ok(flags & O_NONBLOCK != 0)
    }

    /// The contract's loop: writes `op`, hands every event to `on_event`,
    /// and returns once the breakpoint is reached
    /// ([`Stopped::Reached`]), the tracee is held at an `int3`
    /// ([`Stopped::Breakpoint`]) or the tracee has exited
    /// ([`Stopped::Exited`], which wins if both happen).
    ///
    /// A signal that interrupts the blocking wait (`EINTR`) leaves the
    /// breakpoint set (contract section 3, step 5), so the loop reads the
    /// events and goes on with `PTRACE_WAIT`; writing `op` again could
    /// resume the tracee from a stop reached in between. See
    /// [`Tracer::set_give_up`] to let a signal end the wait.
    ///
    /// The loop needs a blocking handle: on a non-blocking one (its writes
    /// return at once) it fails with `EINVAL`, having written nothing. A
    /// tracer with non-blocking handles runs its own loop on an `event:`
    /// queue (as strace does).
    pub fn resume(&mut self, op: u8, mut on_event: impl FnMut(&PtraceEvent)) -> Result<Stopped> {
        if self.is_nonblocking()? {
            return Err(Error::new(EINVAL));
        }
        let mut reached = self.wait_write(op)?;
        loop {
            if reached == 1 {
                return Ok(Stopped::Reached(self.stop()?));
            }
            let mut int3 = None;
            for event in self.read_events()? {
                if event.cause == PTRACE_STOP_BREAKPOINT {
                    int3 = Some(event.a);
                }
                on_event(&event);
            }
            if let Some(status) = self.exit_status {
                return Ok(Stopped::Exited(status));
            }
            if let Some(addr) = int3 {
                // Held at the int3: PTRACE_WAIT would resume it onto the
                // same int3 again.
                return Ok(Stopped::Breakpoint(addr));
            }
            reached = self.wait_write(PTRACE_WAIT)?;
        }
    }

    /// One blocking write of `op`; an interrupted wait counts as "read the
    /// events" (`0`) unless the caller asked to give up.
    fn wait_write(&self, op: u8) -> Result<usize> {
        match self.op(op) {
            Err(e) if e.errno == EINTR && !self.give_up.is_some_and(|give_up| give_up()) => Ok(0),
            other => other,
        }
    }

    /// Like [`Tracer::resume`], collecting the events.
    pub fn resume_collect(&mut self, op: u8) -> Result<(Stopped, Vec<PtraceEvent>)> {
        let mut events = Vec::new();
        let stopped = self.resume(op, |e| events.push(*e))?;
        Ok((stopped, events))
    }

    /// What the current stop is (`proc:<pid>/stop`, read through the
    /// descriptor opened at attach time).
    pub fn stop(&self) -> Result<StopInfo> {
        let fd = self.stop.fd(self.pid)?;
        let mut buf = [0u8; StopInfo::SIZE];
        syscall::read(fd, &mut buf)?;
        StopInfo::from_bytes(&buf).ok_or(Error::new(EINVAL))
    }

    pub fn regs(&mut self) -> Result<IntRegisters> {
        let fd = self.int_regs.fd(self.pid)?;
        let mut buf = [0u8; IntRegisters::SIZE];
        syscall::read(fd, &mut buf)?;
        IntRegisters::from_bytes(&buf).ok_or(Error::new(EINVAL))
    }

    pub fn set_regs(&mut self, regs: &IntRegisters) -> Result<()> {
        let fd = self.int_regs.fd(self.pid)?;
        syscall::write(fd, &regs.to_bytes()).map(|_| ())
    }

    fn read_file(&self, file: &Sibling, size: usize) -> Result<Vec<u8>> {
        let fd = file.fd(self.pid)?;
        let mut buf = vec![0u8; size];
        let n = syscall::read(fd, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    fn write_file(&self, file: &Sibling, data: &[u8]) -> Result<usize> {
        syscall::write(file.fd(self.pid)?, data)
    }

    pub fn float_regs(&self) -> Result<FloatRegisters> {
        let buf = self.read_file(&self.float_regs, FloatRegisters::SIZE)?;
        FloatRegisters::from_bytes(&buf).ok_or(Error::new(EINVAL))
    }

    pub fn set_float_regs(&self, regs: &FloatRegisters) -> Result<()> {
        self.write_file(&self.float_regs, &regs.to_bytes())
            .map(|_| ())
    }

    pub fn env_regs(&self) -> Result<EnvRegisters> {
        let buf = self.read_file(&self.env_regs, EnvRegisters::SIZE)?;
        EnvRegisters::from_bytes(&buf).ok_or(Error::new(EINVAL))
    }

    pub fn set_env_regs(&self, regs: &EnvRegisters) -> Result<()> {
        self.write_file(&self.env_regs, &regs.to_bytes())
            .map(|_| ())
    }

    /// Reads tracee memory at `addr`; may return short at an unmapped page.
    pub fn read_mem(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        let fd = self.mem.fd(self.pid)?;
        seek_to(fd, addr)?;
        syscall::read(fd, buf)
    }

    /// Writes tracee memory at `addr` (read-only text too).
    pub fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<usize> {
        let fd = self.mem.fd(self.pid)?;
        seek_to(fd, addr)?;
        syscall::write(fd, data)
    }

    pub fn read_u64(&mut self, addr: u64) -> Result<u64> {
        let mut b = [0u8; 8];
        let n = self.read_mem(addr, &mut b)?;
        if n != 8 {
            return Err(Error::new(syscall::error::EFAULT));
        }
        Ok(u64::from_le_bytes(b))
    }

    /// Reads a NUL-terminated string at `addr`: the bytes before the NUL,
    /// at most `max` of them. A string that runs into an unmapped page (or
    /// the end of user space) before its NUL ends there, and the bytes read
    /// up to that point are returned, as for one that reaches `max`. Fails
    /// (`EFAULT`) only if not even the first byte can be read, or with the
    /// error of a session that no longer works (`ESRCH`, ...).
    pub fn read_cstr(&mut self, addr: u64, max: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 64];
        while out.len() < max {
            let Some(at) = addr.checked_add(out.len() as u64) else {
                break;
            };
            let want = (max - out.len()).min(chunk.len());
            let n = match self.read_mem(at, &mut chunk[..want]) {
                Ok(n) => n,
                Err(e) if e.errno == EFAULT && !out.is_empty() => break,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..end]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..n]);
        }
        Ok(out)
    }

    /// Closes the session (detaches, or kills with `O_EXCL`).
    pub fn detach(mut self) -> Result<()> {
        self.close_all()
    }

    fn close_all(&mut self) -> Result<()> {
        for file in [
            &self.stop,
            &self.int_regs,
            &self.mem,
            &self.float_regs,
            &self.env_regs,
        ] {
            file.close();
        }
        if self.trace != usize::MAX {
            let fd = core::mem::replace(&mut self.trace, usize::MAX);
            syscall::close(fd)?;
        }
        Ok(())
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.close_all();
    }
}
