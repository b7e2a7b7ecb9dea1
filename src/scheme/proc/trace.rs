//! `proc:<pid>/trace`: the handle of a trace session. Opening attaches
//! (the ptrace backend freezes the tracee); reads return events, writes are
//! one-byte operations; closing detaches (or kills, with `O_EXCL`).

use alloc::string::String;
use alloc::sync::Arc;

use ptrace_core::path::{fpath, ProcFile};
use syscall::data::Stat;
use syscall::error::*;
use syscall::flag::EventFlags;

use super::{err, open_sibling, Grant};
use crate::context::{self, ContextRef};
use crate::ptrace::{AttachError, TraceSession};
use crate::scheme::{fill_stat, Caller, Handle, MODE_CHR};

/// Attaches: the tracee is frozen where it is (the attach stop) before
/// `open` returns. A clone child held for this tracer is claimed.
pub(super) fn attach(
    grant: Grant,
    target: ContextRef,
    tracer: context::Pid,
    kill_on_close: bool,
) -> Result<Arc<dyn Handle>> {
    // Never attach with credentials checked before a change (checked
    // before anything changes, a held clone child's claim included).
    if grant
        .epoch
        .is_some_and(|epoch| epoch != target.lock().creds_epoch)
    {
        return Err(err(EPERM));
    }
    let revocable = grant.epoch.is_some();
    let session = crate::ptrace::attach(grant.pid, &target, tracer, kill_on_close, revocable)
        .map_err(|e| match e {
            AttachError::HeldForAnother => err(EBUSY),
            AttachError::Running => err(EBUSY),
        })?;
    Ok(Arc::new(TraceFile { session, grant }))
}

/// `proc:<pid>/trace`.
struct TraceFile {
    session: Arc<TraceSession>,
    grant: Grant,
}

impl TraceFile {
    /// Every operation: `EPERM` once revoked by the tracee's change of
    /// ids, `EBADF` once the session has ended while this copy lives on
    /// (its opener exited).
    fn usable(&self) -> Result<()> {
        self.grant.check()?;
        if self.session.is_detached() {
            return Err(err(EBADF));
        }
        Ok(())
    }
}

impl Handle for TraceFile {
    fn read(&self, buf: &mut [u8], _pos: &mut u64, _nonblock: bool) -> Result<usize> {
        self.usable()?;
        self.session.read_events(buf).map_err(err)
    }

    fn write(&self, buf: &[u8], _pos: &mut u64, nonblock: bool) -> Result<usize> {
        self.usable()?;
        if context::current_pid() == self.session.pid() {
            return Err(err(EPERM));
        }
        self.session.operate(buf, nonblock).map_err(err)
    }

    fn path(&self) -> String {
        fpath(self.session.pid(), ProcFile::Trace)
    }

    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_CHR, 0);
        Ok(())
    }

    fn dup(&self, buf: &[u8], flags: usize, caller: Caller) -> Result<Arc<dyn Handle>> {
        self.usable()?;
        open_sibling(self.session.pid(), buf, flags, caller)
    }

    fn readiness(&self) -> EventFlags {
        let (read, write) = self.session.readiness();
        let mut flags = EventFlags::empty();
        if read {
            flags |= EventFlags::EVENT_READ;
        }
        if write {
            flags |= EventFlags::EVENT_WRITE;
        }
        flags
    }
}

impl Drop for TraceFile {
    /// Closing detaches (or kills, with `O_EXCL`); a tracer that dies closes
    /// its handles the same way.
    fn drop(&mut self) {
        self.session.end_session(true);
    }
}
