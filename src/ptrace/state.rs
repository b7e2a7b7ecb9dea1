//! A context's ptrace state: one value in each `Context`, owned by this
//! module. Its fields are private; `held` (the freeze the scheduler obeys)
//! changes only through `set_held`, the one function here that writes it.

use crate::context::{self, Pid};

/// What ptrace keeps per context.
#[derive(Debug, Default)]
pub struct PtraceState {
    /// Frozen by ptrace (attach stop, a ptrace stop, a held clone child):
    /// never scheduled.
    held: bool,
    /// Pid of the tracer, 0 if untraced.
    tracer: Pid,
    /// The kernel set TF in the user rflags to single-step (hidden from
    /// `regs/int`).
    kernel_tf: bool,
    /// A signal handler was entered during this kernel entry (a
    /// single-stepped tracee stops at its first instruction).
    handler_entered: bool,
    /// This kernel entry is a `syscall` instruction executed under the
    /// kernel's single-step: the step ends when the call returns.
    stepped_syscall: bool,
    /// A tracer wrote the registers: return with `iretq`, never `sysretq`.
    force_iret: bool,
}

impl PtraceState {
    /// Frozen by ptrace: the scheduler must not run it.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// The tracer's pid, 0 if untraced.
    pub fn tracer(&self) -> Pid {
        self.tracer
    }

    pub(super) fn set_tracer(&mut self, tracer: Pid) {
        self.tracer = tracer;
    }

    /// The kernel's single-step trap flag is set in the user rflags.
    pub fn kernel_tf(&self) -> bool {
        self.kernel_tf
    }

    pub(super) fn set_kernel_tf(&mut self, on: bool) {
        self.kernel_tf = on;
    }

    /// Signal delivery entered a handler in this kernel entry.
    pub fn note_handler_entered(&mut self) {
        self.handler_entered = true;
    }

    pub(super) fn note_stepped_syscall(&mut self) {
        self.stepped_syscall = true;
    }

    /// Takes (and clears) the notes of this entry: (a handler was entered,
    /// a stepped `syscall` is returning).
    pub(super) fn take_step_notes(&mut self) -> (bool, bool) {
        (
            core::mem::take(&mut self.handler_entered),
            core::mem::take(&mut self.stepped_syscall),
        )
    }

    /// A tracer wrote the user registers: the next return uses `iretq`.
    pub fn request_iret(&mut self) {
        self.force_iret = true;
    }

    pub(super) fn take_force_iret(&mut self) -> bool {
        core::mem::take(&mut self.force_iret)
    }
}

/// Sets or clears the ptrace freeze of `pid`: the one place `held`
/// changes. A released context that can run goes on the run queue (unless
/// it is the one running).
pub fn set_held(pid: Pid, held: bool) {
    let Some(ctx) = context::get(pid) else { return };
    let mut c = ctx.lock();
    c.ptrace.held = held;
    let runnable = c.state == context::State::Runnable && !held;
    drop(c);
    if runnable && pid != context::current_pid() {
        crate::sched::start_context(pid);
    }
}
