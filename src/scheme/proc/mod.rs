//! `proc:`, the scheme of per-process files under `proc:<pid>/`, and every
//! handle type it opens: `trace` (the session: one-byte operations in,
//! events out, `trace.rs`), `regs/int`, `regs/float`, `regs/env`
//! (`regs.rs`), `mem` and `stop` (`mem.rs`), `maps` (the mappings, one
//! text line each, `maps.rs`), and `status` (one text line, open to
//! everyone, here). The ptrace module is the backend: sessions,
//! stops and each context's `PtraceState`.
//!
//! Opening checks the contract's rule (v1.2: effective uid 0, or effective
//! ids equal to the target's real and effective ids, a target that has not
//! changed its ids since its last `fexec`, and an ancestor) in the
//! contract's order. Each handle a non-root caller opened remembers the
//! target's credential epoch and fails `EPERM` once the target changes its
//! ids; writes the tracee makes to its own session fail `EPERM`.

mod maps;
mod mem;
mod regs;
mod trace;

use alloc::string::String;
use alloc::sync::Arc;

use ptrace_core::path::{parse_proc_path, parse_sibling, ProcFile};
use ptrace_core::perm::{check_open, OpenRequest};
use ptrace_core::status::{format_status, ProcState, ProcStatus};
use syscall::data::Stat;
use syscall::error::*;
use syscall::flag::{O_ACCMODE, O_EXCL, O_RDONLY, O_WRONLY};

use super::misc::read_at;
use super::{fill_stat, Caller, Handle, Scheme, MODE_FILE};
use crate::context::{self, ContextRef, Pid, State};

pub struct ProcScheme;

impl Scheme for ProcScheme {
    fn open(&self, path: &str, flags: usize, caller: Caller) -> Result<Arc<dyn Handle>> {
        let (pid, file) = parse_proc_path(path).map_err(Error::new)?;
        open_proc_file(pid, file, flags, caller)
    }
}

fn err(errno: i32) -> Error {
    Error::new(errno)
}

/// A live (not exited) context.
fn live_context(pid: Pid) -> Option<ContextRef> {
    context::get(pid).filter(|c| !matches!(c.lock().state, State::Exited(_)))
}

/// What a handle remembers of its open: the target and, when a non-root
/// caller opened it, the target's credential epoch then (contract v1.2:
/// the target's next change of its ids revokes the handle).
#[derive(Copy, Clone, Debug)]
struct Grant {
    pid: Pid,
    epoch: Option<u64>,
}

impl Grant {
    /// `EPERM` once the target has changed its ids since a non-root open.
    /// A target that is gone passes: the operation reports `ESRCH` itself.
    fn check(&self) -> Result<()> {
        let Some(epoch) = self.epoch else {
            return Ok(());
        };
        match context::get(self.pid) {
            Some(c) if c.lock().creds_epoch != epoch => Err(err(EPERM)),
            _ => Ok(()),
        }
    }
}

/// `EPERM` for a write the tracee makes to its own session's files (a
/// tracee never drives its own session, contract v1.2 section 2).
fn refuse_tracee_itself(pid: Pid) -> Result<()> {
    if context::current_pid() == pid && crate::ptrace::is_traced(pid) {
        return Err(err(EPERM));
    }
    Ok(())
}

/// Opens `proc:<pid>/<file>` for `caller` with open `flags`.
fn open_proc_file(
    pid: Pid,
    file: ProcFile,
    flags: usize,
    caller: Caller,
) -> Result<Arc<dyn Handle>> {
    let target = live_context(pid);
    // One snapshot: the ids checked and the epoch the handle keeps.
    let (target_creds, creds_changed, epoch) = target
        .as_ref()
        .map(|c| {
            let c = c.lock();
            (c.creds, c.creds_changed, c.creds_epoch)
        })
        .unwrap_or_default();
    let already_traced = crate::ptrace::is_traced(pid);
    let request = OpenRequest {
        file,
        caller_pid: caller.pid,
        caller: ptrace_core::perm::Creds {
            uid: caller.creds.uid,
            euid: caller.creds.euid,
            gid: caller.creds.gid,
            egid: caller.creds.egid,
        },
        target_pid: pid,
        target_live: target.is_some(),
        target: ptrace_core::perm::Creds {
            uid: target_creds.uid,
            euid: target_creds.euid,
            gid: target_creds.gid,
            egid: target_creds.egid,
        },
        target_creds_changed: creds_changed,
        caller_is_ancestor: target.is_some() && context::is_ancestor(caller.pid, pid),
        readable: flags & O_RDONLY != 0,
        writable: flags & O_WRONLY != 0,
        target_already_traced: already_traced,
    };
    check_open(&request).map_err(err)?;
    let target = target.ok_or(err(ESRCH))?;
    let grant = Grant {
        pid,
        epoch: (caller.creds.euid != 0).then_some(epoch),
    };
    Ok(match file {
        ProcFile::Trace => trace::attach(grant, target, caller.pid, flags & O_EXCL != 0)?,
        ProcFile::RegsInt | ProcFile::RegsFloat | ProcFile::RegsEnv => {
            Arc::new(regs::RegsFile::new(grant, file))
        }
        ProcFile::Mem => Arc::new(mem::MemFile::new(grant)),
        ProcFile::Stop => Arc::new(mem::StopFile::new(grant)),
        ProcFile::Maps => Arc::new(maps::MapsFile { grant }),
        ProcFile::Status => Arc::new(StatusFile { pid }),
    })
}

/// `dup(fd, "regs/int")` on any `proc:` handle of `pid`.
pub fn open_sibling(pid: Pid, buf: &[u8], flags: usize, caller: Caller) -> Result<Arc<dyn Handle>> {
    let name = core::str::from_utf8(buf).map_err(|_| err(EINVAL))?;
    let file = parse_sibling(name).map_err(err)?;
    // A read-only sibling (`stop`, `status`) is opened for reading whatever
    // the original handle's access mode was.
    let flags = if file.is_read_only() {
        (flags & !O_ACCMODE) | O_RDONLY
    } else {
        flags
    };
    open_proc_file(pid, file, flags, caller)
}

/// The status line of `pid`, or None if it is gone.
pub fn status_line(pid: Pid) -> Option<String> {
    let ctx = context::get(pid)?;
    let c = ctx.lock();
    let state = match c.state {
        State::Exited(_) => ProcState::Exited,
        _ if c.ptrace.is_held() => ProcState::Held,
        _ if c.job_stopped.is_some() => ProcState::Stopped,
        State::Blocked => ProcState::Blocked,
        State::Runnable => ProcState::Running,
    };
    let creds = ptrace_core::perm::Creds {
        uid: c.creds.uid,
        euid: c.creds.euid,
        gid: c.creds.gid,
        egid: c.creds.egid,
    };
    Some(format_status(&ProcStatus {
        pid: c.pid,
        ppid: c.ppid,
        creds,
        state,
        tracer: c.ptrace.tracer(),
        name: &c.name,
    }))
}

/// `proc:<pid>/status`.
pub struct StatusFile {
    pub pid: Pid,
}

impl Handle for StatusFile {
    fn read(&self, buf: &mut [u8], pos: &mut u64, _nonblock: bool) -> Result<usize> {
        let text = status_line(self.pid).ok_or(Error::new(ESRCH))?;
        Ok(read_at(text.as_bytes(), buf, pos))
    }

    fn seek(&self, pos: u64, offset: isize, whence: usize) -> Result<u64> {
        let len = status_line(self.pid).map(|t| t.len()).unwrap_or(0);
        crate::scheme::misc::seek_in(len as u64, pos, offset, whence)
    }

    fn path(&self) -> String {
        ptrace_core::path::fpath(self.pid, ProcFile::Status)
    }

    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_FILE, 0);
        Ok(())
    }

    fn dup(&self, buf: &[u8], flags: usize, caller: Caller) -> Result<Arc<dyn Handle>> {
        open_sibling(self.pid, buf, flags, caller)
    }
}
