//! `proc:<pid>/regs/int`, `regs/float`, `regs/env`: the saved user
//! registers of a context that is not running (the FPU state and fs/gs
//! bases of the caller itself come from the CPU). Writes need the target
//! held at a ptrace stop and follow the contract's register rules
//! (`ptrace_core::regs`).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use abi::{EnvRegisters, FloatRegisters, IntRegisters};
use ptrace_core::path::{fpath, ProcFile};
use ptrace_core::regs;
use syscall::data::Stat;
use syscall::error::*;

use super::{err, live_context, open_sibling, refuse_tracee_itself, Grant};
use crate::arch::switch::{mxcsr_mask, read_user_bases};
use crate::arch::trap_frame::TrapFrame;
use crate::context;
use crate::scheme::{fill_stat, Caller, Handle, MODE_FILE};

/// `regs/int`, `regs/float`, `regs/env`.
pub(super) struct RegsFile {
    grant: Grant,
    file: ProcFile,
}

fn int_regs_of(frame: &TrapFrame) -> IntRegisters {
    IntRegisters {
        r15: frame.r15 as usize,
        r14: frame.r14 as usize,
        r13: frame.r13 as usize,
        r12: frame.r12 as usize,
        rbp: frame.rbp as usize,
        rbx: frame.rbx as usize,
        r11: frame.r11 as usize,
        r10: frame.r10 as usize,
        r9: frame.r9 as usize,
        r8: frame.r8 as usize,
        rax: frame.rax as usize,
        rcx: frame.rcx as usize,
        rdx: frame.rdx as usize,
        rsi: frame.rsi as usize,
        rdi: frame.rdi as usize,
        rip: frame.rip as usize,
        cs: frame.cs as usize,
        rflags: frame.rflags as usize,
        rsp: frame.rsp as usize,
        ss: frame.ss as usize,
        fs: 0,
    }
}

fn store_int_regs(frame: &mut TrapFrame, r: &IntRegisters) {
    frame.r15 = r.r15 as u64;
    frame.r14 = r.r14 as u64;
    frame.r13 = r.r13 as u64;
    frame.r12 = r.r12 as u64;
    frame.rbp = r.rbp as u64;
    frame.rbx = r.rbx as u64;
    frame.r11 = r.r11 as u64;
    frame.r10 = r.r10 as u64;
    frame.r9 = r.r9 as u64;
    frame.r8 = r.r8 as u64;
    frame.rax = r.rax as u64;
    frame.rcx = r.rcx as u64;
    frame.rdx = r.rdx as u64;
    frame.rsi = r.rsi as u64;
    frame.rdi = r.rdi as u64;
    frame.rip = r.rip as u64;
    frame.rflags = r.rflags as u64;
    frame.rsp = r.rsp as u64;
}

impl RegsFile {
    pub(super) fn new(grant: Grant, file: ProcFile) -> RegsFile {
        RegsFile { grant, file }
    }

    fn size(&self) -> usize {
        match self.file {
            ProcFile::RegsInt => IntRegisters::SIZE,
            ProcFile::RegsFloat => FloatRegisters::SIZE,
            _ => EnvRegisters::SIZE,
        }
    }

    /// The registers as bytes, read from the saved state of a context that
    /// is not running (or, for the caller itself, from the CPU).
    fn read_bytes(&self) -> Result<Vec<u8>> {
        let pid = self.grant.pid;
        let ctx = live_context(pid).ok_or(err(ESRCH))?;
        let is_current = pid == context::current_pid();
        let c = ctx.lock();
        Ok(match self.file {
            ProcFile::RegsInt => {
                // The caller itself is running: its registers are not saved
                // anywhere a handle may read them.
                let frame = c.user_frame().map_err(|_| err(EBUSY))?;
                regs::visible_int_regs(&int_regs_of(frame), c.ptrace.kernel_tf())
                    .to_bytes()
                    .to_vec()
            }
            ProcFile::RegsFloat => {
                let mut fx = c.arch.fx.clone();
                if is_current {
                    fx.save();
                }
                fx.0[..FloatRegisters::SIZE].to_vec()
            }
            _ => {
                let (fs, gs) = if is_current {
                    read_user_bases()
                } else {
                    (c.arch.fs_base, c.arch.gs_base)
                };
                EnvRegisters {
                    fsbase: fs,
                    gsbase: gs,
                }
                .to_bytes()
                .to_vec()
            }
        })
    }

    fn write_bytes(&self, buf: &[u8]) -> Result<()> {
        regs::check_regs_write_len(buf.len(), self.size()).map_err(err)?;
        let pid = self.grant.pid;
        let ctx = live_context(pid).ok_or(err(ESRCH))?;
        if !crate::ptrace::is_held_at_stop(pid) {
            return Err(err(EBUSY));
        }
        let mut c = ctx.lock();
        match self.file {
            ProcFile::RegsInt => {
                let written = IntRegisters::from_bytes(buf).ok_or(err(EINVAL))?;
                let frame = c.user_frame_mut().map_err(|_| err(EBUSY))?;
                let current = int_regs_of(frame);
                let new = regs::apply_int_write(&current, &written).map_err(err)?;
                store_int_regs(frame, &new);
                c.ptrace.request_iret();
            }
            ProcFile::RegsFloat => {
                let written = FloatRegisters::from_bytes(buf).ok_or(err(EINVAL))?;
                let new = regs::apply_float_write(&written, mxcsr_mask()).map_err(err)?;
                c.arch.fx.0[..FloatRegisters::SIZE].copy_from_slice(&new.to_bytes());
            }
            _ => {
                let written = EnvRegisters::from_bytes(buf).ok_or(err(EINVAL))?;
                let new = regs::apply_env_write(&written).map_err(err)?;
                c.arch.fs_base = new.fsbase;
                c.arch.gs_base = new.gsbase;
            }
        }
        Ok(())
    }
}

impl Handle for RegsFile {
    fn read(&self, buf: &mut [u8], _pos: &mut u64, _nonblock: bool) -> Result<usize> {
        self.grant.check()?;
        regs::check_regs_read_len(buf.len(), self.size()).map_err(err)?;
        let bytes = self.read_bytes()?;
        buf.get_mut(..bytes.len())
            .ok_or(err(EINVAL))?
            .copy_from_slice(&bytes);
        Ok(bytes.len())
    }

    fn write(&self, buf: &[u8], _pos: &mut u64, _nonblock: bool) -> Result<usize> {
        self.grant.check()?;
        refuse_tracee_itself(self.grant.pid)?;
        self.write_bytes(buf)?;
        Ok(buf.len())
    }

    fn path(&self) -> String {
        fpath(self.grant.pid, self.file)
    }

    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_FILE, self.size() as u64);
        Ok(())
    }

    fn dup(&self, buf: &[u8], flags: usize, caller: Caller) -> Result<Arc<dyn Handle>> {
        self.grant.check()?;
        open_sibling(self.grant.pid, buf, flags, caller)
    }
}
