//! `proc:<pid>/mem` (the target's memory; the file offset is the user
//! address; writes override write protection, for breakpoints) and
//! `proc:<pid>/stop` (the `StopInfo` of the current stop).

use alloc::string::String;
use alloc::sync::Arc;

use abi::StopInfo;
use ptrace_core::path::{fpath, ProcFile};
use ptrace_core::regs;
use syscall::data::Stat;
use syscall::error::*;

use super::{err, live_context, open_sibling, refuse_tracee_itself, Grant};
use crate::scheme::{fill_stat, Caller, Handle, MODE_FILE};

/// `proc:<pid>/mem`: the file offset is the user address.
pub(super) struct MemFile {
    grant: Grant,
}

impl MemFile {
    pub(super) fn new(grant: Grant) -> MemFile {
        MemFile { grant }
    }

    fn space(&self) -> Result<crate::context::SpaceRef> {
        self.grant.check()?;
        let ctx = live_context(self.grant.pid).ok_or(err(ESRCH))?;
        let space = ctx.lock().space.clone();
        space.ok_or(err(ESRCH))
    }
}

impl Handle for MemFile {
    fn read(&self, buf: &mut [u8], pos: &mut u64, _nonblock: bool) -> Result<usize> {
        let space = self.space()?;
        if buf.is_empty() {
            return Ok(0);
        }
        let len = regs::check_mem_range(*pos, buf.len()).map_err(err)?;
        let n = space
            .lock()
            .read(*pos, buf.get_mut(..len).ok_or(err(EINVAL))?);
        if n == 0 {
            return Err(err(EFAULT));
        }
        *pos += n as u64;
        Ok(n)
    }

    fn write(&self, buf: &[u8], pos: &mut u64, _nonblock: bool) -> Result<usize> {
        let space = self.space()?;
        refuse_tracee_itself(self.grant.pid)?;
        if buf.is_empty() {
            return Ok(0);
        }
        let len = regs::check_mem_range(*pos, buf.len()).map_err(err)?;
        let n = space
            .lock()
            .write(*pos, buf.get(..len).ok_or(err(EINVAL))?, true);
        if n == 0 {
            return Err(err(EFAULT));
        }
        *pos += n as u64;
        Ok(n)
    }

    fn seek(&self, pos: u64, offset: isize, whence: usize) -> Result<u64> {
        self.grant.check()?;
        live_context(self.grant.pid).ok_or(err(ESRCH))?;
        regs::mem_seek(pos, offset as usize, whence).map_err(err)
    }

    fn path(&self) -> String {
        fpath(self.grant.pid, ProcFile::Mem)
    }

    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_FILE, 0);
        Ok(())
    }

    fn dup(&self, buf: &[u8], flags: usize, caller: Caller) -> Result<Arc<dyn Handle>> {
        self.grant.check()?;
        open_sibling(self.grant.pid, buf, flags, caller)
    }
}

/// `proc:<pid>/stop`: the `StopInfo` of the current stop.
pub(super) struct StopFile {
    grant: Grant,
}

impl StopFile {
    pub(super) fn new(grant: Grant) -> StopFile {
        StopFile { grant }
    }
}

impl Handle for StopFile {
    fn read(&self, buf: &mut [u8], _pos: &mut u64, _nonblock: bool) -> Result<usize> {
        self.grant.check()?;
        let Some(out) = buf.get_mut(..StopInfo::SIZE) else {
            return Err(err(EINVAL));
        };
        live_context(self.grant.pid).ok_or(err(ESRCH))?;
        let info = crate::ptrace::stop_info(self.grant.pid);
        out.copy_from_slice(&info.to_bytes());
        Ok(StopInfo::SIZE)
    }

    fn path(&self) -> String {
        fpath(self.grant.pid, ProcFile::Stop)
    }

    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_FILE, StopInfo::SIZE as u64);
        Ok(())
    }

    fn dup(&self, buf: &[u8], flags: usize, caller: Caller) -> Result<Arc<dyn Handle>> {
        self.grant.check()?;
        open_sibling(self.grant.pid, buf, flags, caller)
    }
}
