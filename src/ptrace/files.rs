//! The `proc:<pid>/` files a tracer uses: `trace` (the session: one-byte
//! operations in, events out), `regs/int`, `regs/float`, `regs/env`, `mem`
//! and `stop`. Opening checks the contract's rule (v1.2: effective uid 0,
//! or effective ids equal to the target's real and effective ids, a target
//! that has not changed its ids since its last `fexec`, and an ancestor) in
//! the contract's order. Each handle a non-root caller opened remembers the
//! target's credential epoch and fails `EPERM` once the target changes its
//! ids; writes the tracee makes to its own session fail `EPERM`.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use abi::{EnvRegisters, FloatRegisters, IntRegisters, StopInfo};
use ptrace_core::path::{fpath, parse_sibling, ProcFile};
use ptrace_core::perm::{check_open, OpenRequest};
use ptrace_core::regs;
use ptrace_core::session::{Session, WriteReply};
use syscall::data::Stat;
use syscall::error::*;
use syscall::flag::{EventFlags, O_ACCMODE, O_EXCL, O_RDONLY, O_WRONLY};

use super::{register, session_holding_child, session_of, Tracee};
use crate::arch::switch::{mxcsr_mask, read_user_bases};
use crate::arch::trap_frame::TrapFrame;
use crate::context::signal::current_has_pending;
use crate::context::{self, ContextRef, Pid, State};
use crate::scheme::{fill_stat, Caller, Handle, MODE_CHR, MODE_FILE};

fn err(errno: i32) -> Error {
    Error::new(errno)
}

/// A live (not exited) context.
pub(super) fn live_context(pid: Pid) -> Option<ContextRef> {
    context::get(pid).filter(|c| !matches!(c.lock().state, State::Exited(_)))
}

/// What a handle remembers of its open: the target and, when a non-root
/// caller opened it, the target's credential epoch then (contract v1.2:
/// the target's next change of its ids revokes the handle).
#[derive(Copy, Clone, Debug)]
pub(super) struct Grant {
    pub(super) pid: Pid,
    epoch: Option<u64>,
}

impl Grant {
    /// `EPERM` once the target has changed its ids since a non-root open.
    /// A target that is gone passes: the operation reports `ESRCH` itself.
    pub(super) fn check(&self) -> Result<()> {
        let Some(epoch) = self.epoch else {
            return Ok(());
        };
        match context::get(self.pid) {
            Some(c) if c.lock().creds_epoch != epoch => Err(err(EPERM)),
            _ => Ok(()),
        }
    }
}

/// Whether `pid` has a live trace session.
fn traced(pid: Pid) -> bool {
    session_of(pid).is_some_and(|t| !t.session.lock().is_detached())
}

/// `EPERM` for a write the tracee makes to its own session's files (a
/// tracee never drives its own session, contract v1.2 section 2).
fn refuse_tracee_itself(pid: Pid) -> Result<()> {
    if context::current_pid() == pid && traced(pid) {
        return Err(err(EPERM));
    }
    Ok(())
}

/// Opens `proc:<pid>/<file>` for `caller` with open `flags`.
pub fn open_proc_file(
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
    let already_traced = traced(pid);
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
        ProcFile::Trace => attach(grant, target, caller.pid, flags & O_EXCL != 0)?,
        ProcFile::RegsInt | ProcFile::RegsFloat | ProcFile::RegsEnv => {
            Arc::new(RegsFile { grant, file })
        }
        ProcFile::Mem => Arc::new(MemFile { grant }),
        ProcFile::Stop => Arc::new(StopFile { grant }),
        ProcFile::Status => Arc::new(crate::scheme::proc::StatusFile { pid }),
        ProcFile::Maps => Arc::new(super::maps::MapsFile { grant }),
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

/// Attaches: the tracee is frozen where it is (the attach stop) before
/// `open` returns. A clone child held for this tracer is claimed.
fn attach(
    grant: Grant,
    target: ContextRef,
    tracer: Pid,
    kill_on_close: bool,
) -> Result<Arc<dyn Handle>> {
    let pid = grant.pid;
    // Never attach with credentials checked before a change (checked
    // before anything changes, a held clone child's claim included).
    if grant
        .epoch
        .is_some_and(|epoch| epoch != target.lock().creds_epoch)
    {
        return Err(err(EPERM));
    }
    if let Some(owner) = session_holding_child(pid) {
        // A clone child held for a tracer is that tracer's to claim.
        if owner.tracer != tracer {
            return Err(err(EBUSY));
        }
        owner.session.lock().claim_child(pid);
    }
    let rip = {
        let mut c = target.lock();
        c.held = true;
        c.tracer = tracer;
        // SAFETY: the target is not running (one CPU, the caller is
        // running); its user registers are at the top of its kernel stack.
        unsafe { (*c.arch.user_frame()).rip }
    };
    let tracee = Arc::new(Tracee {
        pid,
        tracer,
        session: spin::Mutex::new(Session::attach(StopInfo {
            addr: rip,
            ..StopInfo::default()
        })),
        tracer_queue: crate::context::wait::WaitCondition::new(),
        tracee_queue: crate::context::wait::WaitCondition::new(),
        kill_on_close,
        revocable: grant.epoch.is_some(),
    });
    register(tracee.clone());
    Ok(Arc::new(TraceFile { tracee, grant }))
}

/// `proc:<pid>/trace`.
struct TraceFile {
    tracee: Arc<Tracee>,
    grant: Grant,
}

impl TraceFile {
    /// Every operation: `EPERM` once revoked by the tracee's change of
    /// ids, `EBADF` once the session has ended while this copy lives on
    /// (its opener exited).
    fn usable(&self) -> Result<()> {
        self.grant.check()?;
        if self.tracee.session.lock().is_detached() {
            return Err(err(EBADF));
        }
        Ok(())
    }
}

/// Lets clone children run on, untraced.
pub(super) fn release_children(children: &[Pid]) {
    for &child in children {
        if let Some(ctx) = context::get(child) {
            ctx.lock().tracer = 0;
        }
        crate::sched::set_held(child, false);
    }
}

impl Handle for TraceFile {
    fn read(&self, buf: &mut [u8], _pos: &mut u64, _nonblock: bool) -> Result<usize> {
        self.usable()?;
        let events = self
            .tracee
            .session
            .lock()
            .read_events(buf.len())
            .map_err(err)?;
        let mut n = 0;
        for event in events {
            buf[n..n + abi::PtraceEvent::SIZE].copy_from_slice(&event.to_bytes());
            n += abi::PtraceEvent::SIZE;
        }
        if n > 0 {
            // A tracee throttled on a full event queue may go on.
            self.tracee.tracee_queue.notify_all();
        }
        Ok(n)
    }

    fn write(&self, buf: &[u8], _pos: &mut u64, nonblock: bool) -> Result<usize> {
        self.usable()?;
        let t = &self.tracee;
        if context::current_pid() == t.pid {
            return Err(err(EPERM));
        }
        let outcome = t.session.lock().write_op(buf, nonblock).map_err(err)?;
        release_children(&outcome.release_children);
        if outcome.wake_tracee {
            t.release_tracee();
        }
        match outcome.reply {
            WriteReply::Ready(value) => Ok(value),
            WriteReply::WouldBlock => Err(err(EAGAIN)),
            WriteReply::MustWait => loop {
                let session = t.session.lock();
                if let Some(result) = session.poll() {
                    return result.map_err(err);
                }
                if current_has_pending() {
                    return Err(err(EINTR));
                }
                t.tracer_queue.wait(session);
            },
        }
    }

    fn path(&self) -> String {
        fpath(self.tracee.pid, ProcFile::Trace)
    }

    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_CHR, 0);
        Ok(())
    }

    fn dup(&self, buf: &[u8], flags: usize, caller: Caller) -> Result<Arc<dyn Handle>> {
        self.usable()?;
        super::open_sibling(self.tracee.pid, buf, flags, caller)
    }

    fn readiness(&self) -> EventFlags {
        let r = self.tracee.session.lock().readiness();
        let mut flags = EventFlags::empty();
        if r.read {
            flags |= EventFlags::EVENT_READ;
        }
        if r.write {
            flags |= EventFlags::EVENT_WRITE;
        }
        flags
    }
}

impl Drop for TraceFile {
    /// Closing detaches (or kills, with `O_EXCL`); a tracer that dies closes
    /// its handles the same way.
    fn drop(&mut self) {
        self.tracee.end_session(true);
    }
}

/// Whether `pid` is held by ptrace (register writes need that).
fn held_by_ptrace(pid: Pid) -> bool {
    session_of(pid).is_some_and(|t| t.session.lock().is_held())
}

/// `regs/int`, `regs/float`, `regs/env`.
struct RegsFile {
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
                // SAFETY: the frame at the top of the kernel stack holds the
                // user registers of a context that is in the kernel, which
                // every context but the running one is (and the running one
                // is the caller, inside this syscall).
                let frame = unsafe { &*c.arch.user_frame() };
                regs::visible_int_regs(&int_regs_of(frame), c.kernel_tf)
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
        if !held_by_ptrace(pid) {
            return Err(err(EBUSY));
        }
        let mut c = ctx.lock();
        match self.file {
            ProcFile::RegsInt => {
                let written = IntRegisters::from_bytes(buf).ok_or(err(EINVAL))?;
                // SAFETY: as in `read_bytes`; the tracee is held, not running.
                let frame = unsafe { &mut *c.arch.user_frame() };
                let current = int_regs_of(frame);
                let new = regs::apply_int_write(&current, &written).map_err(err)?;
                store_int_regs(frame, &new);
                c.force_iret = true;
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
        buf[..bytes.len()].copy_from_slice(&bytes);
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
        super::open_sibling(self.grant.pid, buf, flags, caller)
    }
}

/// `proc:<pid>/mem`: the file offset is the user address.
struct MemFile {
    grant: Grant,
}

impl MemFile {
    fn space(&self) -> Result<Arc<spin::Mutex<crate::memory::paging::AddressSpace>>> {
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
        let n = space.lock().read(*pos, &mut buf[..len]);
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
        let n = space.lock().write(*pos, &buf[..len], true);
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
        super::open_sibling(self.grant.pid, buf, flags, caller)
    }
}

/// `proc:<pid>/stop`: the `StopInfo` of the current stop.
struct StopFile {
    grant: Grant,
}

impl Handle for StopFile {
    fn read(&self, buf: &mut [u8], _pos: &mut u64, _nonblock: bool) -> Result<usize> {
        self.grant.check()?;
        if buf.len() < StopInfo::SIZE {
            return Err(err(EINVAL));
        }
        live_context(self.grant.pid).ok_or(err(ESRCH))?;
        let info = session_of(self.grant.pid)
            .map(|t| t.session.lock().stop_info())
            .unwrap_or_default();
        buf[..StopInfo::SIZE].copy_from_slice(&info.to_bytes());
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
        super::open_sibling(self.grant.pid, buf, flags, caller)
    }
}
