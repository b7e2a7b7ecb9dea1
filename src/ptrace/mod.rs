//! The in-kernel ptrace subsystem, the backend of `proc:`
//! (`scheme/proc/`): trace sessions (`TraceSession`), the stops the
//! boundary (`usermode`) runs, and each context's `PtraceState`
//! (`state.rs`). The state machine itself (what a stop means, which op
//! matches which stop, the event queue, held clone children) is
//! `ptrace_core::session::Session`; this module stores one per traced
//! process with its two wait queues, and carries out what the session
//! decides: holding and resuming the tracee, waking the tracer, the trap
//! flag for single-stepping. A stop never ends the context: `SIGKILL` at a
//! stop returns `Err(Exit(SIGKILL))` to the boundary.
//!
//! A held tracee is frozen through its `PtraceState`'s `held` (the
//! scheduler never runs it; only `set_held` changes it) and, at stops it
//! reaches itself, also waits on the session's tracee queue. Calls only
//! `context` and `sched`. Locks (checked, `crate::sync`): `SESSIONS`, then
//! a session's mutex, then contexts; a session lock is never taken while a
//! context lock is held.

mod state;

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::sync::{class, Mutex};
use abi::StopInfo;
use ptrace_core::op::StopKind;
use ptrace_core::session::{CloneDecision, Session, StopDecision, WriteReply};
use syscall::flag::SIGKILL;

use crate::arch::trap_frame::{TrapFrame, SYSCALL_VECTOR};
use crate::context::signal::{bit, InterruptedSyscall};
use crate::context::wait::WaitCondition;
use crate::context::{self, Exit, Pid};
use crate::sched;

pub use state::{set_held, PtraceState};

/// rflags.TF.
pub const TRAP_FLAG: u64 = 1 << 8;

/// One trace session: the traced process, its tracer, the session's
/// state machine and the two wait queues.
pub struct TraceSession {
    pid: Pid,
    /// The process that opened `trace`.
    tracer: Pid,
    session: Mutex<Session, { class::SESSION }>,
    /// The tracer waits here for "reached or event".
    tracer_queue: WaitCondition,
    /// A held tracee waits here for the next operation.
    tracee_queue: WaitCondition,
    /// Opened with `O_EXCL`: closing the handle kills the tracee.
    kill_on_close: bool,
    /// Opened by a non-root caller: the tracee's next change of its uids or
    /// gids ends the session (as a close without `O_EXCL`).
    revocable: bool,
}

/// Live sessions by tracee pid.
static SESSIONS: Mutex<BTreeMap<Pid, Arc<TraceSession>>, { class::SESSIONS }> =
    Mutex::new(BTreeMap::new());
/// How many sessions exist: while 0, the syscall hooks cost one load.
static SESSION_COUNT: AtomicUsize = AtomicUsize::new(0);

pub fn session_of(pid: Pid) -> Option<Arc<TraceSession>> {
    if SESSION_COUNT.load(Ordering::Relaxed) == 0 {
        return None;
    }
    SESSIONS.lock().get(&pid).cloned()
}

/// The session of the running context, if it is traced.
fn current_session() -> Option<Arc<TraceSession>> {
    if SESSION_COUNT.load(Ordering::Relaxed) == 0 {
        return None;
    }
    session_of(context::current_pid())
}

fn register(tracee: Arc<TraceSession>) {
    let mut sessions = SESSIONS.lock();
    if sessions.insert(tracee.pid, tracee).is_none() {
        SESSION_COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

fn unregister(pid: Pid) {
    if SESSIONS.lock().remove(&pid).is_some() {
        SESSION_COUNT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The session a held clone child `child` belongs to, if any.
fn session_holding_child(child: Pid) -> Option<Arc<TraceSession>> {
    let sessions: alloc::vec::Vec<Arc<TraceSession>> = SESSIONS.lock().values().cloned().collect();
    sessions
        .into_iter()
        .find(|t| t.session.lock().child_is_held(child))
}

impl TraceSession {
    /// The traced process.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The session has ended (detached, or its tracer exited).
    pub fn is_detached(&self) -> bool {
        self.session.lock().is_detached()
    }

    /// The tracer reads events into `buf` (whole events); errno on error.
    pub fn read_events(&self, buf: &mut [u8]) -> Result<usize, i32> {
        let events = self.session.lock().read_events(buf.len())?;
        let mut n = 0;
        for event in events {
            let Some(slot) = buf.get_mut(n..n + abi::PtraceEvent::SIZE) else {
                break;
            };
            slot.copy_from_slice(&event.to_bytes());
            n += abi::PtraceEvent::SIZE;
        }
        if n > 0 {
            // A tracee throttled on a full event queue may go on.
            self.tracee_queue.notify_all();
        }
        Ok(n)
    }

    /// The tracer writes one operation: carries out what the session
    /// decides (releasing children, resuming the tracee) and, for an
    /// operation that completes later, waits for it (`EINTR` on a signal).
    pub fn operate(&self, buf: &[u8], nonblock: bool) -> Result<usize, i32> {
        use syscall::error::{EAGAIN, EINTR};
        let outcome = self.session.lock().write_op(buf, nonblock)?;
        release_children(&outcome.release_children);
        if outcome.wake_tracee {
            self.release_tracee();
        }
        match outcome.reply {
            WriteReply::Ready(value) => Ok(value),
            WriteReply::WouldBlock => Err(EAGAIN),
            WriteReply::MustWait => loop {
                let session = self.session.lock();
                if let Some(result) = session.poll() {
                    return result;
                }
                if crate::context::signal::current_has_pending() {
                    return Err(EINTR);
                }
                self.tracer_queue.wait(session);
            },
        }
    }

    /// (readable, writable) for `event:` queues and polling.
    pub fn readiness(&self) -> (bool, bool) {
        let r = self.session.lock().readiness();
        (r.read, r.write)
    }

    /// Wakes a blocked tracer and anyone watching its handle's readiness.
    pub fn wake_tracer(&self) {
        self.tracer_queue.notify_all();
        crate::context::wait::readiness_changed();
    }

    /// Lets the held tracee run again.
    pub fn release_tracee(&self) {
        self.tracee_queue.notify_all();
        set_held(self.pid, false);
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
            ctx.lock().ptrace.set_tracer(0);
        }
        release_children(&outcome.release_children);
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
    let sessions: alloc::vec::Vec<Arc<TraceSession>> = SESSIONS
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

/// How a stop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// Not held, or resumed by the tracer.
    Resumed,
    /// Resumed with `ignore` (PTRACE_SYSEMU, or a signal to discard).
    ResumedIgnore,
    /// `SIGKILL` ended the stop: nothing the stop was about happens.
    Killed,
}

impl StopOutcome {
    /// `Ok(ignore)` once resumed; `Err(Exit(SIGKILL))` when killed (the
    /// caller unwinds to the boundary, which exits).
    fn into_flow(self) -> Result<bool, Exit> {
        match self {
            StopOutcome::Resumed => Ok(false),
            StopOutcome::ResumedIgnore => Ok(true),
            StopOutcome::Killed => Err(Exit(SIGKILL)),
        }
    }
}

/// Runs the current context through a stop point: asks the session, and
/// if it holds, waits until the tracer resumes it (or `SIGKILL`).
fn stop_here(
    tracee: &TraceSession,
    decide: impl Fn(&mut Session) -> StopDecision,
) -> Result<bool, Exit> {
    wait_at_stop(tracee, decide).into_flow()
}

/// The body of `stop_here`.
fn wait_at_stop(
    tracee: &TraceSession,
    decide: impl Fn(&mut Session) -> StopDecision,
) -> StopOutcome {
    let pid = tracee.pid;
    loop {
        let mut session = tracee.session.lock();
        let (generation, retry) = match decide(&mut session) {
            StopDecision::Continue { wake_tracer } => {
                drop(session);
                if wake_tracer {
                    tracee.wake_tracer();
                }
                return StopOutcome::Resumed;
            }
            StopDecision::Hold { generation } => (generation, false),
            StopDecision::WaitThenRetry { generation } => (generation, true),
            StopDecision::WaitForRoom => {
                drop(session);
                if !wait_for_room(tracee) {
                    return StopOutcome::Killed;
                }
                continue;
            }
        };
        set_held(pid, true);
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
        set_held(pid, false);
        match resume {
            Some(_) if retry => continue,
            Some(resume) if resume.ignore => return StopOutcome::ResumedIgnore,
            Some(_) => return StopOutcome::Resumed,
            None => return StopOutcome::Killed,
        }
    }
}

/// The current context (the tracee) would queue an event while its tracer
/// has `MAX_UNREAD_EVENTS` unread: it waits until the tracer reads or the
/// session ends. Returns false if `SIGKILL` ended the wait (nothing is
/// queued then). Other signals wait too: they are delivered afterwards.
fn wait_for_room(tracee: &TraceSession) -> bool {
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

/// Syscall entry stop. Returns `Ok(true)` if the tracer skipped the call
/// (`PTRACE_SYSEMU`): `rax` is then the result, and there is no exit stop.
pub fn syscall_entry_stop(frame: &mut TrapFrame) -> Result<bool, Exit> {
    let Some(tracee) = current_session() else {
        return Ok(false);
    };
    let stop = StopInfo {
        nr: frame.rax,
        args: [
            frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
        ],
        ..info(frame)
    };
    stop_here(&tracee, |s| s.stop_point(StopKind::PreSyscall, stop))
}

/// Syscall exit stop for `call`, with the result in `rax`.
pub fn syscall_exit_stop(frame: &mut TrapFrame, call: InterruptedSyscall) -> Result<(), Exit> {
    let Some(tracee) = current_session() else {
        return Ok(());
    };
    let stop = StopInfo {
        nr: call.nr as u64,
        args: call.args.map(|a| a as u64),
        ret: frame.rax,
        ..info(frame)
    };
    stop_here(&tracee, |s| s.stop_point(StopKind::PostSyscall, stop)).map(drop)
}

pub enum SignalVerdict {
    Deliver,
    Discard,
}

/// A signal (not `SIGKILL`) is about to be delivered: a signal stop or a
/// signal event.
pub fn signal_stop(
    frame: &mut TrapFrame,
    sig: usize,
    handler: usize,
) -> Result<SignalVerdict, Exit> {
    let Some(tracee) = current_session() else {
        return Ok(SignalVerdict::Deliver);
    };
    let stop = StopInfo {
        signal: sig as u64,
        handler: handler as u64,
        ..info(frame)
    };
    Ok(
        if stop_here(&tracee, |s| s.stop_point(StopKind::Signal, stop))? {
            SignalVerdict::Discard
        } else {
            SignalVerdict::Deliver
        },
    )
}

/// `int3` in user mode (`rip` just past it). A traced process is held with
/// `rip` on the `int3` byte and gets no `SIGTRAP`; returns `Ok(false)` when
/// untraced.
pub fn breakpoint_trap(frame: &mut TrapFrame) -> Result<bool, Exit> {
    let Some(tracee) = current_session().filter(|tracee| {
        let session = tracee.session.lock();
        !session.tracee_exited() && !session.is_detached()
    }) else {
        return Ok(false);
    };
    // Only the one-byte `int3` (0xCC) is a breakpoint; `int 3` (CD 03)
    // gets SIGTRAP like any other trap.
    if user_byte(frame.rip.wrapping_sub(1)) != Some(0xCC) {
        return Ok(false);
    }
    frame.rip = frame.rip.wrapping_sub(1);
    let stop = info(frame);
    stop_here(&tracee, |s| s.breakpoint_trap(stop))?;
    Ok(true)
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
pub fn debug_trap(frame: &mut TrapFrame) -> Result<bool, Exit> {
    let kernel_tf = context::current().lock().ptrace.kernel_tf();
    let Some(tracee) = current_session().filter(|_| kernel_tf) else {
        return Ok(false);
    };
    step_stop(&tracee, frame)?;
    Ok(true)
}

fn step_stop(tracee: &TraceSession, frame: &mut TrapFrame) -> Result<(), Exit> {
    let stop = info(frame);
    stop_here(tracee, |s| s.stop_point(StopKind::SingleStep, stop)).map(drop)
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
    if c.ptrace.kernel_tf() {
        frame.rflags &= !TRAP_FLAG;
        if frame.vector == SYSCALL_VECTOR {
            frame.r11 &= !TRAP_FLAG;
            c.ptrace.note_stepped_syscall();
        }
    }
}

/// Last thing before any return to user mode: a single-step stop after a
/// stepped `syscall` (also one that was `fexec`: the stop is at the new
/// program's entry) or at a signal handler's first instruction, then the
/// trap flag as the session wants it. Returns whether a tracer wrote the
/// registers since the last return (then only `iretq` may be used).
pub fn before_user_return(frame: &mut TrapFrame) -> Result<bool, Exit> {
    let ctx = context::current();
    let (entered_handler, stepped_syscall, kernel_tf) = {
        let mut c = ctx.lock();
        let (entered_handler, stepped_syscall) = c.ptrace.take_step_notes();
        (entered_handler, stepped_syscall, c.ptrace.kernel_tf())
    };
    let session = current_session();
    let single_stepping = || {
        session
            .as_ref()
            .is_some_and(|t| t.session.lock().single_stepping())
    };
    let mut stepping = single_stepping();
    if let Some(tracee) = session.as_ref().filter(|_| stepping) {
        if stepped_syscall || entered_handler {
            // The `syscall` instruction (or the signal delivery) was the
            // step.
            step_stop(tracee, frame)?;
            stepping = single_stepping();
        }
    }
    if stepping {
        frame.rflags |= TRAP_FLAG;
    } else if kernel_tf {
        frame.rflags &= !TRAP_FLAG;
    }
    let mut c = ctx.lock();
    if stepping != kernel_tf {
        c.ptrace.set_kernel_tf(stepping);
    }
    Ok(c.ptrace.take_force_iret())
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
        set_held(child, true);
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

/// `SIGKILL` reached a held tracee: it is released, and its wait loop
/// sees the signal (nothing to record in the session).
pub fn on_sigkill(pid: Pid) {
    if let Some(tracee) = session_of(pid) {
        tracee.tracee_queue.notify_all();
    }
    set_held(pid, false);
}

/// Lets clone children run on, untraced.
pub fn release_children(children: &[Pid]) {
    for &child in children {
        if let Some(ctx) = context::get(child) {
            ctx.lock().ptrace.set_tracer(0);
        }
        set_held(child, false);
    }
}

/// Whether `pid` has a live trace session.
pub fn is_traced(pid: Pid) -> bool {
    session_of(pid).is_some_and(|t| !t.session.lock().is_detached())
}

/// Whether `pid` is held by ptrace (register writes need that).
pub fn is_held_at_stop(pid: Pid) -> bool {
    session_of(pid).is_some_and(|t| t.session.lock().is_held())
}

/// The `StopInfo` of `pid`'s current stop (zeroes when untraced).
pub fn stop_info(pid: Pid) -> StopInfo {
    session_of(pid)
        .map(|t| t.session.lock().stop_info())
        .unwrap_or_default()
}

/// Why `attach` refused.
pub enum AttachError {
    /// A clone child held for another tracer (`EBUSY`).
    HeldForAnother,
    /// The target is running (never on one CPU: the caller is).
    Running,
}

/// Attaches `tracer` to `target` (pid `pid`): the tracee is frozen where
/// it is (the attach stop). A clone child held for this tracer is claimed.
/// `revocable`: the tracee's next change of ids ends the session.
pub fn attach(
    pid: Pid,
    target: &context::ContextRef,
    tracer: Pid,
    kill_on_close: bool,
    revocable: bool,
) -> Result<Arc<TraceSession>, AttachError> {
    if let Some(owner) = session_holding_child(pid) {
        // A clone child held for a tracer is that tracer's to claim.
        if owner.tracer != tracer {
            return Err(AttachError::HeldForAnother);
        }
        owner.session.lock().claim_child(pid);
    }
    let rip = {
        let mut c = target.lock();
        let rip = c.user_frame().map_err(|_| AttachError::Running)?.rip;
        c.ptrace.set_tracer(tracer);
        rip
    };
    set_held(pid, true);
    let tracee = Arc::new(TraceSession {
        pid,
        tracer,
        session: Mutex::new(Session::attach(StopInfo {
            addr: rip,
            ..StopInfo::default()
        })),
        tracer_queue: WaitCondition::new(),
        tracee_queue: WaitCondition::new(),
        kill_on_close,
        revocable,
    });
    register(tracee.clone());
    Ok(tracee)
}
