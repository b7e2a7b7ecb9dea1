//! `proc:`: per-process files under `proc:<pid>/`. `status` (one text line,
//! open to everyone) is rendered from the live context.

use alloc::string::String;
use alloc::sync::Arc;

use ptrace_core::path::{parse_proc_path, ProcFile};
use ptrace_core::status::{format_status, ProcState, ProcStatus};
use syscall::data::Stat;
use syscall::error::*;

use super::misc::read_at;
use super::{fill_stat, Caller, Handle, Scheme, MODE_FILE};
use crate::context::{self, Pid, State};

pub struct ProcScheme;

impl Scheme for ProcScheme {
    fn open(&self, path: &str, flags: usize, caller: Caller) -> Result<Arc<dyn Handle>> {
        let (pid, file) = parse_proc_path(path).map_err(Error::new)?;
        crate::ptrace::open_proc_file(pid, file, flags, caller)
    }
}

/// The status line of `pid`, or None if it is gone.
pub fn status_line(pid: Pid) -> Option<String> {
    let ctx = context::get(pid)?;
    let c = ctx.lock();
    let state = match c.state {
        State::Exited(_) => ProcState::Exited,
        _ if c.held => ProcState::Held,
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
        tracer: c.tracer,
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
        super::misc::seek_in(len as u64, pos, offset, whence)
    }

    fn path(&self) -> String {
        ptrace_core::path::fpath(self.pid, ProcFile::Status)
    }

    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_FILE, 0);
        Ok(())
    }

    fn dup(&self, buf: &[u8], flags: usize, caller: Caller) -> Result<Arc<dyn Handle>> {
        crate::ptrace::open_sibling(self.pid, buf, flags, caller)
    }
}
