//! A small client for the kernel's tracing interface (`proc:<pid>/trace`,
//! `regs/*`, `mem`, `stop`), written only against the ABI contract.
//!
//! The core loop every tracer writes is [`Tracer::resume`]: write an
//! operation, and while the write returns 0 (events are unread), read and
//! hand over the events, then write `PTRACE_WAIT` to go on waiting.

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
use syscall::error::{Error, Result, EINVAL};
use syscall::flag::{O_CLOEXEC, O_RDWR};

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
    /// The tracee exited (the `PTRACE_STOP_EXIT` event was seen) with this
    /// wait status.
    Exited(usize),
}

/// A tracing session on one process.
pub struct Tracer {
    pub pid: usize,
    trace: usize,
    mem: Option<usize>,
    int_regs: Option<usize>,
    /// Set once the exit event has been seen.
    pub exit_status: Option<usize>,
}

impl Tracer {
    /// Attaches to `pid` (it is stopped before this returns).
    pub fn attach(pid: usize) -> Result<Tracer> {
        Self::attach_flags(pid, 0)
    }

    /// Attaches with extra open flags (`O_EXCL`, `O_NONBLOCK`).
    pub fn attach_flags(pid: usize, flags: usize) -> Result<Tracer> {
        let trace = open_proc(pid, "trace", O_RDWR | flags)?;
        Ok(Tracer {
            pid,
            trace,
            mem: None,
            int_regs: None,
            exit_status: None,
        })
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

    /// The contract's loop: writes `op`, hands every event to `on_event`,
    /// and returns once the breakpoint is reached or the tracee has exited.
    pub fn resume(&mut self, op: u8, mut on_event: impl FnMut(&PtraceEvent)) -> Result<Stopped> {
        let mut reached = self.op(op)?;
        loop {
            if reached == 1 {
                return Ok(Stopped::Reached(self.stop()?));
            }
            for event in self.read_events()? {
                on_event(&event);
            }
            if let Some(status) = self.exit_status {
                return Ok(Stopped::Exited(status));
            }
            reached = self.op(PTRACE_WAIT)?;
        }
    }

    /// Like [`Tracer::resume`], collecting the events.
    pub fn resume_collect(&mut self, op: u8) -> Result<(Stopped, Vec<PtraceEvent>)> {
        let mut events = Vec::new();
        let stopped = self.resume(op, |e| events.push(*e))?;
        Ok((stopped, events))
    }

    /// What the current stop is (`proc:<pid>/stop`).
    pub fn stop(&self) -> Result<StopInfo> {
        let fd = open_proc(self.pid, "stop", syscall::flag::O_RDONLY)?;
        let mut buf = [0u8; StopInfo::SIZE];
        let result = syscall::read(fd, &mut buf);
        let _ = syscall::close(fd);
        result?;
        StopInfo::from_bytes(&buf).ok_or(Error::new(EINVAL))
    }

    fn int_fd(&mut self) -> Result<usize> {
        if let Some(fd) = self.int_regs {
            return Ok(fd);
        }
        let fd = open_proc(self.pid, "regs/int", O_RDWR)?;
        self.int_regs = Some(fd);
        Ok(fd)
    }

    pub fn regs(&mut self) -> Result<IntRegisters> {
        let fd = self.int_fd()?;
        let mut buf = [0u8; IntRegisters::SIZE];
        syscall::read(fd, &mut buf)?;
        IntRegisters::from_bytes(&buf).ok_or(Error::new(EINVAL))
    }

    pub fn set_regs(&mut self, regs: &IntRegisters) -> Result<()> {
        let fd = self.int_fd()?;
        syscall::write(fd, &regs.to_bytes()).map(|_| ())
    }

    fn read_file(&self, file: &str, size: usize) -> Result<Vec<u8>> {
        let fd = open_proc(self.pid, file, syscall::flag::O_RDONLY)?;
        let mut buf = vec![0u8; size];
        let result = syscall::read(fd, &mut buf);
        let _ = syscall::close(fd);
        result.map(|n| {
            buf.truncate(n);
            buf
        })
    }

    fn write_file(&self, file: &str, data: &[u8]) -> Result<usize> {
        let fd = open_proc(self.pid, file, syscall::flag::O_WRONLY)?;
        let result = syscall::write(fd, data);
        let _ = syscall::close(fd);
        result
    }

    pub fn float_regs(&self) -> Result<FloatRegisters> {
        let buf = self.read_file("regs/float", FloatRegisters::SIZE)?;
        FloatRegisters::from_bytes(&buf).ok_or(Error::new(EINVAL))
    }

    pub fn set_float_regs(&self, regs: &FloatRegisters) -> Result<()> {
        self.write_file("regs/float", &regs.to_bytes()).map(|_| ())
    }

    pub fn env_regs(&self) -> Result<EnvRegisters> {
        let buf = self.read_file("regs/env", EnvRegisters::SIZE)?;
        EnvRegisters::from_bytes(&buf).ok_or(Error::new(EINVAL))
    }

    pub fn set_env_regs(&self, regs: &EnvRegisters) -> Result<()> {
        self.write_file("regs/env", &regs.to_bytes()).map(|_| ())
    }

    fn mem_fd(&mut self) -> Result<usize> {
        if let Some(fd) = self.mem {
            return Ok(fd);
        }
        let fd = open_proc(self.pid, "mem", O_RDWR)?;
        self.mem = Some(fd);
        Ok(fd)
    }

    /// Reads tracee memory at `addr`; may return short at an unmapped page.
    pub fn read_mem(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        let fd = self.mem_fd()?;
        seek_to(fd, addr)?;
        syscall::read(fd, buf)
    }

    /// Writes tracee memory at `addr` (read-only text too).
    pub fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<usize> {
        let fd = self.mem_fd()?;
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

    /// Reads a NUL-terminated string of at most `max` bytes.
    pub fn read_cstr(&mut self, addr: u64, max: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 64];
        while out.len() < max {
            let n = self.read_mem(addr + out.len() as u64, &mut chunk)?;
            if n == 0 {
                break;
            }
            if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..end]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..n]);
        }
        out.truncate(max);
        Ok(out)
    }

    /// Closes the session (detaches, or kills with `O_EXCL`).
    pub fn detach(mut self) -> Result<()> {
        self.close_all()
    }

    fn close_all(&mut self) -> Result<()> {
        for fd in [self.mem.take(), self.int_regs.take()]
            .into_iter()
            .flatten()
        {
            let _ = syscall::close(fd);
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
