//! `proc:<pid>/maps`: the target's mappings, one text line each
//! (`start-end perms offset what`, see docs/ptrace.md), rendered from its
//! address space's mapping list at every read. Opened under the same rule
//! as `regs/*`; read-only.

use alloc::string::String;
use alloc::sync::Arc;

use ptrace_core::path::{fpath, ProcFile};
use syscall::data::Stat;
use syscall::error::*;

use super::{live_context, Grant};
use crate::scheme::misc::{read_at, seek_in};
use crate::scheme::{fill_stat, Caller, Handle, MODE_FILE};

pub struct MapsFile {
    pub(super) grant: Grant,
}

impl MapsFile {
    /// The current text, or `ESRCH` once the target is gone, `EPERM` once
    /// revoked, `ENOMEM` when the heap cannot hold it.
    fn text(&self) -> Result<String> {
        self.grant.check()?;
        let ctx = live_context(self.grant.pid).ok_or(Error::new(ESRCH))?;
        let space = ctx.lock().space.clone().ok_or(Error::new(ESRCH))?;
        let space = space.lock();
        crate::memory::heap::admit(space.mappings.render_size())?;
        Ok(space.mappings.render())
    }
}

impl Handle for MapsFile {
    fn read(&self, buf: &mut [u8], pos: &mut u64, _nonblock: bool) -> Result<usize> {
        let text = self.text()?;
        Ok(read_at(text.as_bytes(), buf, pos))
    }

    fn seek(&self, pos: u64, offset: isize, whence: usize) -> Result<u64> {
        let len = self.text()?.len();
        seek_in(len as u64, pos, offset, whence)
    }

    fn path(&self) -> String {
        fpath(self.grant.pid, ProcFile::Maps)
    }

    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_FILE, 0);
        Ok(())
    }

    fn dup(&self, buf: &[u8], flags: usize, caller: Caller) -> Result<Arc<dyn Handle>> {
        self.grant.check()?;
        super::open_sibling(self.grant.pid, buf, flags, caller)
    }
}
