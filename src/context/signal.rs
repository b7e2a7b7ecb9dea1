//! Signals: per-process actions, per-context mask and pending set, default
//! actions (terminate, ignore, stop, continue), delivery to user handlers on
//! the way back to user mode, and `sigreturn`. The registers a handler
//! interrupted are kept in the kernel (a stack of saved states), not on the
//! user stack, so a handler cannot forge them. The order of delivery (the
//! ptrace signal stop first) is the boundary's (`usermode`); this module
//! never ends the process itself: it returns `Err(Exit)` and the boundary,
//! the one place a context exits, does it.

use alloc::vec::Vec;

use syscall::flag::*;

use crate::arch::switch::FxArea;
use crate::arch::trap_frame::TrapFrame;
use crate::context::{self, Exit, Pid, State};
use crate::memory::paging::USER_END;
use crate::sched;

/// Signals are numbered 1..NSIG.
pub const NSIG: usize = 32;
/// Nested handlers deeper than this kill the process with `SIGSEGV` (a
/// signal storm): the saved states are kernel heap, about 700 bytes each.
pub const MAX_NESTED: usize = 64;

pub fn bit(sig: usize) -> u64 {
    1u64 << (sig - 1)
}

pub fn valid(sig: usize) -> bool {
    (1..NSIG).contains(&sig)
}

/// One signal's action, as `sigaction` set it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Action {
    /// `SIG_DFL`, `SIG_IGN` or the handler's address.
    pub handler: usize,
    pub mask: u64,
    pub flags: usize,
    /// Where the handler returns to (calls `sigreturn`).
    pub restorer: usize,
}

#[derive(Clone, Debug)]
pub struct SignalActions(pub [Action; NSIG]);

impl Default for SignalActions {
    fn default() -> Self {
        SignalActions([Action::default(); NSIG])
    }
}

/// A syscall a handler ran inside of: its exit is still to come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterruptedSyscall {
    pub nr: usize,
    pub args: [usize; 6],
}

/// What a handler interrupted, restored by `sigreturn`.
pub struct SavedSignal {
    pub frame: TrapFrame,
    pub fx: FxArea,
    pub mask: u64,
    pub syscall: Option<InterruptedSyscall>,
}

#[derive(Default)]
pub struct SignalState {
    pub mask: u64,
    pub pending: u64,
    pub saved: Vec<SavedSignal>,
}

/// What a signal does when its action is `SIG_DFL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: usize) -> DefaultAction {
    match sig {
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        SIGCONT => DefaultAction::Continue,
        _ => DefaultAction::Terminate,
    }
}

const STOP_SIGNALS: u64 =
    (1 << (SIGSTOP - 1)) | (1 << (SIGTSTP - 1)) | (1 << (SIGTTIN - 1)) | (1 << (SIGTTOU - 1));

/// Signals that can be neither caught, ignored nor blocked.
pub const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

/// Whether the current context has a signal that should interrupt a wait
/// (`EINTR`): an unblocked pending signal that will do something when
/// delivered. Signals whose action is to ignore (`SIG_IGN`, or a default of
/// ignore or continue) do not interrupt; they are delivered (and reported to
/// a tracer) when the call returns.
pub fn current_has_pending() -> bool {
    let ctx = context::current();
    let c = ctx.lock();
    let pending = c.signals.pending & !(c.signals.mask & !UNBLOCKABLE);
    if pending == 0 {
        return false;
    }
    let actions = c.actions.lock();
    (1..NSIG).any(|sig| {
        pending & bit(sig) != 0
            && match actions.0[sig].handler {
                SIG_IGN => false,
                SIG_DFL => matches!(
                    default_action(sig),
                    DefaultAction::Terminate | DefaultAction::Stop
                ),
                _ => true,
            }
    })
}

/// Makes `sig` pending on `pid` with the side effects sending has at once:
/// `SIGCONT` ends a job-control stop (and drops pending stop signals), a
/// stop signal drops a pending `SIGCONT`, `SIGKILL` ends any stop or hold.
/// Permission checks are the caller's.
pub fn send(pid: Pid, sig: usize) {
    let Some(ctx) = context::get(pid) else { return };
    let mut c = ctx.lock();
    if matches!(c.state, State::Exited(_)) {
        return;
    }
    c.signals.pending |= bit(sig);
    let mut release_hold = false;
    match sig {
        SIGCONT => {
            c.signals.pending &= !STOP_SIGNALS;
            if c.job_stopped.take().is_some() {
                c.unreported_stop = None;
            }
        }
        SIGKILL => {
            c.job_stopped = None;
            release_hold = c.ptrace.is_held();
        }
        s if bit(s) & STOP_SIGNALS != 0 => c.signals.pending &= !bit(SIGCONT),
        _ => {}
    }
    drop(c);
    if release_hold {
        crate::ptrace::on_sigkill(pid);
    }
    sched::wake(pid);
}

/// The signal a user-mode CPU exception becomes (page fault `SIGSEGV`,
/// `#UD` `SIGILL`, divide error `SIGFPE`, `int3` `SIGTRAP`, ...) and makes
/// pending: the boundary (`usermode`) asks ptrace first whether the trap was
/// a breakpoint or a single step of its own.
pub fn exception_signal(frame: &TrapFrame) {
    let sig = match frame.vector {
        0 | 16 | 19 => SIGFPE,
        1 | 3 => SIGTRAP,
        6 => SIGILL,
        17 => SIGBUS,
        _ => SIGSEGV,
    };
    crate::debug!(
        "pid {}: {} at rip {:#x} -> signal {}",
        context::current_pid(),
        crate::arch::idt::EXCEPTION_NAMES[frame.vector as usize % 32],
        frame.rip,
        sig
    );
    force(sig);
}

/// Delivers a signal caused by the context itself: a blocked or ignored
/// fault signal still kills (like a real kernel, to avoid a fault loop).
fn force(sig: usize) {
    let ctx = context::current();
    let mut c = ctx.lock();
    let blocked = c.signals.mask & bit(sig) != 0;
    let ignored = c.actions.lock().0[sig].handler == SIG_IGN;
    if blocked || ignored {
        c.signals.mask &= !bit(sig);
        c.actions.lock().0[sig].handler = SIG_DFL;
    }
    c.signals.pending |= bit(sig);
}

/// Takes the next pending, unblocked signal off the current context's
/// pending set, with its action as it stands now. The boundary
/// (`usermode::deliver_signals`) runs the ptrace signal stop on it, then
/// `act`.
pub fn take_deliverable() -> Option<(usize, Action)> {
    let ctx = context::current();
    let mut c = ctx.lock();
    let deliverable = c.signals.pending & !(c.signals.mask & !UNBLOCKABLE);
    if deliverable == 0 {
        return None;
    }
    let sig = deliverable.trailing_zeros() as usize + 1;
    c.signals.pending &= !bit(sig);
    let action = c.actions.lock().0[sig];
    Some((sig, action))
}

/// Carries out `sig`'s action (re-read: a thread sharing the actions may
/// have changed it during a signal stop). `in_syscall` is the call that
/// is returning, if any: a handler then runs inside that call, whose exit
/// comes after `sigreturn`. Returns `Ok(true)` if a handler was set up,
/// `Ok(false)` if the signal was ignored or stopped the process for job
/// control, and `Err(Exit)` when it ends the process (a default action of
/// terminate, a handler that cannot be entered): the caller unwinds to the
/// boundary, which exits.
pub fn act(
    frame: &mut TrapFrame,
    sig: usize,
    in_syscall: Option<InterruptedSyscall>,
) -> Result<bool, Exit> {
    let Some(action) = current_action(sig) else {
        return Ok(false);
    };
    match action.handler {
        SIG_IGN => Ok(false),
        SIG_DFL => match default_action(sig) {
            DefaultAction::Ignore | DefaultAction::Continue => Ok(false),
            DefaultAction::Terminate => Err(Exit(sig)),
            DefaultAction::Stop => {
                job_stop(sig);
                Ok(false)
            }
        },
        handler if setup_handler(frame, sig, handler, action, in_syscall) => Ok(true),
        // No usable stack, handlers nested too deep or no heap for the
        // saved state: the process cannot run its handler.
        _ => Err(Exit(SIGSEGV)),
    }
}

fn current_action(sig: usize) -> Option<Action> {
    let ctx = context::current();
    let c = ctx.lock();
    let a = c.actions.lock().0.get(sig).copied();
    a
}

/// Stops the current context for job control until `SIGCONT` or
/// `SIGKILL`; the parent's `waitpid(WUNTRACED)` sees the stop.
fn job_stop(sig: usize) {
    {
        let ctx = context::current();
        let mut c = ctx.lock();
        c.job_stopped = Some(sig);
        c.unreported_stop = Some(sig);
    }
    super::wait::CHILD_EVENTS.notify_all();
    loop {
        {
            let ctx = context::current();
            let mut c = ctx.lock();
            if c.job_stopped.is_none() || c.signals.pending & bit(SIGKILL) != 0 {
                c.job_stopped = None;
                return;
            }
            if c.state == State::Runnable {
                c.state = State::Blocked;
            }
        }
        sched::switch_away();
    }
}

/// Points the frame at the handler: `rdi` = signal, return address = the
/// restorer, below the interrupted stack (past its 128-byte red zone).
/// False when that is impossible (the process is then killed).
fn setup_handler(
    frame: &mut TrapFrame,
    sig: usize,
    handler: usize,
    action: Action,
    in_syscall: Option<InterruptedSyscall>,
) -> bool {
    let ctx = context::current();
    let mut c = ctx.lock();
    // Handlers left by longjmp never call sigreturn: their saved states
    // are the ones for code the stack has since unwound past.
    while c
        .signals
        .saved
        .last()
        .is_some_and(|s| s.frame.rsp <= frame.rsp)
    {
        c.signals.saved.pop();
    }
    if c.signals.saved.len() >= MAX_NESTED || handler as u64 >= USER_END {
        return false;
    }
    // The saved state is kernel heap: no room above the reserve is like no
    // room on the stack (the process dies of SIGSEGV; nothing leaks).
    let growth = if c.signals.saved.len() == c.signals.saved.capacity() {
        (c.signals.saved.capacity() * 2).max(4) * core::mem::size_of::<SavedSignal>()
    } else {
        0
    };
    if crate::memory::heap::admit(growth).is_err() || c.signals.saved.try_reserve(1).is_err() {
        return false;
    }
    let sp = (frame.rsp.wrapping_sub(128) & !15).wrapping_sub(8);
    let pushed = c
        .space
        .as_ref()
        .map(|s| {
            s.lock()
                .write(sp, &(action.restorer as u64).to_le_bytes(), false)
                == 8
        })
        .unwrap_or(false);
    if !pushed {
        return false;
    }
    let mut fx = FxArea::initial();
    fx.save();
    let saved = SavedSignal {
        frame: *frame,
        fx,
        mask: c.signals.mask,
        syscall: in_syscall,
    };
    c.signals.saved.push(saved);
    let mut new_mask = c.signals.mask | action.mask;
    if action.flags & SigActionFlags::SA_NODEFER.bits() == 0 {
        new_mask |= bit(sig);
    }
    c.signals.mask = new_mask & !UNBLOCKABLE;
    if action.flags & SigActionFlags::SA_RESETHAND.bits() != 0 {
        c.actions.lock().0[sig].handler = SIG_DFL;
    }
    c.ptrace.note_handler_entered();
    drop(c);
    frame.rip = handler as u64;
    frame.rsp = sp;
    frame.rdi = sig as u64;
    frame.rflags &= !(1 << 10); // DF clear, as the ABI expects on entry
    FxArea::initial().restore();
    true
}

/// `sigreturn`: restores what the last handler interrupted. Returns the
/// interrupted syscall, if the handler ran inside one.
pub fn sigreturn(
    frame: &mut TrapFrame,
) -> Result<Option<InterruptedSyscall>, syscall::error::Error> {
    let ctx = context::current();
    let mut c = ctx.lock();
    let Some(saved) = c.signals.saved.pop() else {
        return Err(syscall::error::Error::new(syscall::error::EINVAL));
    };
    c.signals.mask = saved.mask & !UNBLOCKABLE;
    drop(c);
    *frame = saved.frame;
    saved.fx.restore();
    Ok(saved.syscall)
}
