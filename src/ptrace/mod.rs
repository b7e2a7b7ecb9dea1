//! The in-kernel ptrace subsystem: trace sessions and the hooks the entry
//! paths call. The state machine itself (what a stop means, which op
//! matches which stop, the event queue, held clone children) is
//! `ptrace_core::session::Session`; this module stores one per traced
//! process with its two wait queues, and carries out what the session
//! decides: holding and resuming the tracee, waking the tracer, the trap
//! flag for single-stepping.
//!
//! A held tracee is frozen through its context's `held` flag (the scheduler
//! never runs it) and, at stops it reaches itself, also waits on the
//! session's tracee queue. Lock order (see docs/design.md): `SESSIONS`,
//! then a session's mutex, then contexts; a session lock is never taken
//! while a context lock is held.

pub mod files;
pub mod maps;

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};

use abi::StopInfo;
use ptrace_core::op::StopKind;
use ptrace_core::session::{CloneDecision, Session, StopDecision};
use spin::Mutex;
use syscall::flag::SIGKILL;

use crate::arch::trap_frame::{TrapFrame, SYSCALL_VECTOR};
use crate::context::signal::{bit, InterruptedSyscall};
use crate::context::wait::WaitCondition;
use crate::context::{self, Pid};
use crate::sched;

pub use files::{open_proc_file, open_sibling};

/// rflags.TF.
pub const TRAP_FLAG: u64 = 1 << 8;

/// One traced process: its session and the two wait queues.
pub struct Tracee {
    pub pid: Pid,
    /// The process that opened `trace`.
    pub tracer: Pid,
    pub session: Mutex<Session>,
    /// The tracer waits here for "reached or event".
    pub tracer_queue: WaitCondition,
    /// A held tracee waits here for the next operation.
    pub tracee_queue: WaitCondition,
    /// Opened with `O_EXCL`: closing the handle kills the tracee.
    pub kill_on_close: bool,
    /// Opened by a non-root caller: the tracee's next change of its uids or
    /// gids ends the session (as a close without `O_EXCL`).
    pub revocable: bool,
}

/// Live sessions by tracee pid.
static SESSIONS: Mutex<BTreeMap<Pid, Arc<Tracee>>> = Mutex::new(BTreeMap::new());
/// How many sessions exist: while 0, the syscall hooks cost one load.
static SESSION_COUNT: AtomicUsize = AtomicUsize::new(0);

pub fn session_of(pid: Pid) -> Option<Arc<Tracee>> {
    if SESSION_COUNT.load(Ordering::Relaxed) == 0 {
        return None;
    }
    SESSIONS.lock().get(&pid).cloned()
}

/// The session of the running context, if it is traced.
fn current_session() -> Option<Arc<Tracee>> {
    if SESSION_COUNT.load(Ordering::Relaxed) == 0 {
        return None;
    }
    session_of(context::current_pid())
}

pub(crate) fn register(tracee: Arc<Tracee>) {
    let mut sessions = SESSIONS.lock();
    if sessions.insert(tracee.pid, tracee).is_none() {
        SESSION_COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) fn unregister(pid: Pid) {
    if SESSIONS.lock().remove(&pid).is_some() {
        SESSION_COUNT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The session a held clone child `child` belongs to, if any.
pub(crate) fn session_holding_child(child: Pid) -> Option<Arc<Tracee>> {
    let sessions: alloc::vec::Vec<Arc<Tracee>> = SESSIONS.lock().values().cloned().collect();
    sessions
        .into_iter()
        .find(|t| t.session.lock().child_is_held(child))
}

impl Tracee {
    /// Wakes a blocked tracer and anyone watching its handle's readiness.
    pub fn wake_tracer(&self) {
        self.tracer_queue.notify_all();
        crate::scheme::readiness_changed();
    }

    /// Lets the held tracee run again.
    pub fn release_tracee(&self) {
        self.tracee_queue.notify_all();
        sched::set_held(self.pid, false);
    }

    /// Ends the session as closing its last handle does: detach (releasing
    /// a held tracee and held clone children), and with `O_EXCL` (when
    /// `honour_excl`) kill the tracee first so it dies at its stop. A second
    /// call does nothing.
    pub fn end_session(&self, honour_excl: bool) {
        if self.session.lock().is_detached() {
            return;
        }
        if honour_excl && self.kill_on_close {
            crate::context::signal::send(self.pid, SIGKILL);
        }
        let outcome = self.session.lock().detach();
        unregister(self.pid);
        if let Some(ctx) = context::get(self.pid) {
            ctx.lock().tracer = 0;
        }
        files::release_children(&outcome.release_children);
        self.release_tracee();
        self.wake_tracer();
    }
}

/// Process `pid` is exiting: every session it opened ends now, as its
/// last handle closing would (`O_EXCL` included), even if copies of the
/// handle live on in other descriptor tables (one shared with
/// `CLONE_FILES`, possibly the tracee's own, or a handle inherited across
/// `clone` or `fexec`). Operations on such a copy then fail with `EBADF`
/// (contract v1.2 section 2).
pub fn on_tracer_exit(pid: Pid) {
    let sessions: alloc::vec::Vec<Arc<Tracee>> = SESSIONS
        .lock()
        .values()
        .filter(|t| t.tracer == pid)
        .cloned()
        .collect();
    for tracee in sessions {
        tracee.end_session(true);
    }
}

/// Process `pid` changed its uids or gids: a session a non-root caller
/// opened on it ends as a close without `O_EXCL` does (the tracee runs on
/// untraced); that caller's other handles fail `EPERM` from now on (they
/// compare the target's credential epoch at each operation).
pub fn on_creds_changed(pid: Pid) {
    if let Some(tracee) = session_of(pid).filter(|t| t.revocable) {
        tracee.end_session(false);
    }
}

fn sigkill_pending(pid: Pid) -> bool {
    context::get(pid).is_some_and(|c| c.lock().signals.pending & bit(SIGKILL) != 0)
}

/// Runs the current context through a stop point: asks the session, and
/// if it holds, waits until the tracer resumes it (or `SIGKILL`). Returns
/// the resume's `ignore` (PTRACE_SYSEMU) flag.
fn stop_here(decide: impl Fn(&mut Session) -> StopDecision) -> bool {
    let outcome = wait_at_stop(decide);
    // No reference to the session may stay on the stack of a context that
    // exits here: it would never be dropped.
    match outcome {
        Some(ignore) => ignore,
        // SIGKILL wins at once: nothing the stop was about happens.
        None => crate::process::exit_current(SIGKILL),
    }
}

/// The body of `stop_here`: `Some(ignore)` once resumed, `None` when
/// `SIGKILL` ended the stop.
fn wait_at_stop(decide: impl Fn(&mut Session) -> StopDecision) -> Option<bool> {
    let pid = context::current_pid();
    let tracee = session_of(pid)?;
    loop {
        let mut session = tracee.session.lock();
        let (generation, retry) = match decide(&mut session) {
            StopDecision::Continue { wake_tracer } => {
                drop(session);
                if wake_tracer {
                    tracee.wake_tracer();
                }
                return Some(false);
            }
            StopDecision::Hold { generation } => (generation, false),
            StopDecision::WaitThenRetry { generation } => (generation, true),
            StopDecision::WaitForRoom => {
                drop(session);
                if !wait_for_room(&tracee) {
                    return None;
                }
                continue;
            }
        };
        if let Some(ctx) = context::get(pid) {
            ctx.lock().held = true;
        }
        drop(session);
        tracee.wake_tracer();
        let resume = loop {
            // SIGKILL first: a tracer that kills and then resumes must not
            // let the held call run.
            if sigkill_pending(pid) {
                break None;
            }
            let session = tracee.session.lock();
            if let Some(resume) = session.resumed(generation) {
                break Some(resume);
            }
            tracee.tracee_queue.wait(session);
        };
        if let Some(ctx) = context::get(pid) {
            ctx.lock().held = false;
        }
        match resume {
            Some(_) if retry => continue,
            Some(resume) => return Some(resume.ignore),
            None => return None,
        }
    }
}

/// The current context (the tracee) would queue an event while its tracer
/// has `MAX_UNREAD_EVENTS` unread: it waits until the tracer reads or the
/// session ends. Returns false if `SIGKILL` ended the wait (nothing is
/// queued then). Other signals wait too: they are delivered afterwards.
fn wait_for_room(tracee: &Tracee) -> bool {
    loop {
        if sigkill_pending(tracee.pid) {
            return false;
        }
        let session = tracee.session.lock();
        if !session.must_wait_for_room() {
            return true;
        }
        tracee.tracee_queue.wait(session);
    }
}

fn info(frame: &TrapFrame) -> StopInfo {
    StopInfo {
        addr: frame.rip,
        ..StopInfo::default()
    }
}

/// Syscall entry stop. Returns true if the tracer skipped the call
/// (`PTRACE_SYSEMU`): `rax` is then the result, and there is no exit stop.
pub fn syscall_entry_stop(frame: &mut TrapFrame) -> bool {
    if current_session().is_none() {
        return false;
    }
    let stop = StopInfo {
        nr: frame.rax,
        args: [
            frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
        ],
        ..info(frame)
    };
    stop_here(|s| s.stop_point(StopKind::PreSyscall, stop))
}

/// Syscall exit stop for `call`, with the result in `rax`.
pub fn syscall_exit_stop(frame: &mut TrapFrame, call: InterruptedSyscall) {
    if current_session().is_none() {
        return;
    }
    let stop = StopInfo {
        nr: call.nr as u64,
        args: call.args.map(|a| a as u64),
        ret: frame.rax,
        ..info(frame)
    };
    stop_here(|s| s.stop_point(StopKind::PostSyscall, stop));
}

pub enum SignalVerdict {
    Deliver,
    Discard,
}

/// A signal (not `SIGKILL`) is about to be delivered: a signal stop or a
/// signal event.
pub fn signal_stop(frame: &mut TrapFrame, sig: usize, handler: usize) -> SignalVerdict {
    if current_session().is_none() {
        return SignalVerdict::Deliver;
    }
    let stop = StopInfo {
        signal: sig as u64,
        handler: handler as u64,
        ..info(frame)
    };
    if stop_here(|s| s.stop_point(StopKind::Signal, stop)) {
        SignalVerdict::Discard
    } else {
        SignalVerdict::Deliver
    }
}

/// `int3` in user mode (`rip` just past it). A traced process is held with
/// `rip` on the `int3` byte and gets no `SIGTRAP`; returns false when
/// untraced.
pub fn breakpoint_trap(frame: &mut TrapFrame) -> bool {
    let active = current_session().is_some_and(|tracee| {
        let session = tracee.session.lock();
        !session.tracee_exited() && !session.is_detached()
    });
    // Only the one-byte `int3` (0xCC) is a breakpoint; `int 3` (CD 03)
    // gets SIGTRAP like any other trap.
    if !active || user_byte(frame.rip.wrapping_sub(1)) != Some(0xCC) {
        return false;
    }
    frame.rip = frame.rip.wrapping_sub(1);
    let stop = info(frame);
    stop_here(|s| s.breakpoint_trap(stop));
    true
}

/// One byte of the current process's memory.
fn user_byte(addr: u64) -> Option<u8> {
    let space = context::current().lock().space.clone()?;
    let mut byte = [0u8; 1];
    let n = space.lock().read(addr, &mut byte);
    (n == 1).then_some(byte[0])
}

/// A debug exception from user mode. A single-step trap the kernel asked
/// for becomes a single-step stop; returns false for anything else (the
/// caller sends `SIGTRAP`).
pub fn debug_trap(frame: &mut TrapFrame) -> bool {
    let pid = context::current_pid();
    let kernel_tf = context::current().lock().kernel_tf;
    if !kernel_tf || session_of(pid).is_none() {
        return false;
    }
    step_stop(frame);
    true
}

fn step_stop(frame: &mut TrapFrame) {
    let stop = info(frame);
    stop_here(|s| s.stop_point(StopKind::SingleStep, stop));
}

/// First thing on every entry from user mode: the trap flag the kernel set
/// for single-stepping is taken out of the saved user rflags, so nothing
/// the kernel saves (signal frames) or shows (`regs/int`) carries it; the
/// return path sets it again while the tracer still steps. A `syscall`
/// executed under the kernel's step is noted: the step ends when it returns.
pub fn on_user_entry(frame: &mut TrapFrame) {
    if frame.rflags & TRAP_FLAG == 0 {
        return;
    }
    let ctx = context::current();
    let mut c = ctx.lock();
    if c.kernel_tf {
        frame.rflags &= !TRAP_FLAG;
        if frame.vector == SYSCALL_VECTOR {
            frame.r11 &= !TRAP_FLAG;
            c.stepped_syscall = true;
        }
    }
}

/// Last thing before any return to user mode: a single-step stop after a
/// stepped `syscall` (also one that was `fexec`: the stop is at the new
/// program's entry) or at a signal handler's first instruction, then the
/// trap flag as the session wants it.
pub fn before_user_return(frame: &mut TrapFrame) {
    let (entered_handler, stepped_syscall, kernel_tf) = {
        let ctx = context::current();
        let mut c = ctx.lock();
        (
            core::mem::take(&mut c.handler_entered),
            core::mem::take(&mut c.stepped_syscall),
            c.kernel_tf,
        )
    };
    let stepping = current_session().is_some_and(|t| t.session.lock().single_stepping());
    if stepping && (stepped_syscall || entered_handler) {
        // The `syscall` instruction (or the signal delivery) was the step.
        // No reference is held here: the stop may end in `SIGKILL`.
        step_stop(frame);
    }
    let stepping =
        stepping && current_session().is_some_and(|t| t.session.lock().single_stepping());
    if stepping == kernel_tf {
        if stepping {
            frame.rflags |= TRAP_FLAG;
        }
        return;
    }
    if stepping {
        frame.rflags |= TRAP_FLAG;
    } else {
        frame.rflags &= !TRAP_FLAG;
    }
    context::current().lock().kernel_tf = stepping;
}

/// Whether a register write asked for `iretq` on the next return (and
/// clears the request).
pub fn take_force_iret() -> bool {
    let ctx = context::current();
    let mut c = ctx.lock();
    core::mem::take(&mut c.force_iret)
}

/// `clone` by `parent` created `child`: if the parent is traced, the child
/// is held for the tracer (returns true: do not start it).
pub fn on_clone(parent: Pid, child: Pid, flags: usize) -> bool {
    let Some(tracee) = session_of(parent) else {
        return false;
    };
    let held = loop {
        let decision = tracee.session.lock().clone_created(child, flags);
        match decision {
            CloneDecision::Held => break true,
            CloneDecision::Untraced => break false,
            // Killed while waiting: the child starts untraced, the parent
            // dies on its way out.
            CloneDecision::WaitForRoom if !wait_for_room(&tracee) => break false,
            CloneDecision::WaitForRoom => {}
        }
    };
    if held {
        if let Some(ctx) = context::get(child) {
            ctx.lock().held = true;
        }
        sched::start_context(child);
    }
    tracee.wake_tracer();
    held
}

/// The current context is exiting with `status`: the exit event.
pub fn on_exit(pid: Pid, status: usize) {
    if let Some(tracee) = session_of(pid) {
        tracee.session.lock().exited(status);
        tracee.wake_tracer();
    }
}

/// After exit: a held clone child that died is no longer held.
pub fn after_exit(pid: Pid) {
    if let Some(owner) = session_holding_child(pid) {
        owner.session.lock().claim_child(pid);
    }
}

/// `SIGKILL` reached a held tracee: nothing to record, the kill path
/// releases it and the tracee's wait loop sees the signal.
pub fn on_sigkill(pid: Pid) {
    if let Some(tracee) = session_of(pid) {
        tracee.tracee_queue.notify_all();
    }
}
