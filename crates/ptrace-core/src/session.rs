//! The tracing session state machine (contract sections 2 to 4a): one
//! [`Session`] per traced process, from attach to detach.
//!
//! # Model
//!
//! - The **breakpoint** is what the last operation asked for
//!   ([`Breakpoint`]); it is **reached** when the tracee is held at a stop it
//!   matches. The attach stop counts as reached (so `PTRACE_WAIT` right after
//!   attaching returns 1 at once).
//! - The tracee is **held** ([`Hold`]) at the attach stop, at a reached
//!   breakpoint, or at an `int3` event stop. Any resume bumps the
//!   **generation**, which the held tracee watches.
//! - **Events** (clone, signal delivered, `int3`, exit) queue until the
//!   tracer reads them. Unread events take precedence over "reached" when a
//!   write reports back: it returns 0, and the next `PTRACE_WAIT` 1.
//! - **The cap** (contract v1.2 section 6): at most [`MAX_UNREAD_EVENTS`]
//!   events are queued. A tracee point that would queue one more (any kind
//!   but the exit event) records nothing and answers
//!   [`StopDecision::WaitForRoom`] / [`CloneDecision::WaitForRoom`]: the
//!   tracee waits until the tracer reads, detaches or `SIGKILL` comes, then
//!   tries again. The exit event is always queued: there is one per tracee,
//!   so the queue holds at most `MAX_UNREAD_EVENTS + 1` records.
//! - **Clone children** the tracee creates are held for the tracer. A child
//!   is released by the first valid write after its event was read, by
//!   detach, or claimed when the tracer opens the child's `trace`.
//!
//! # How the kernel drives it
//!
//! The kernel keeps the session in a spin mutex with two wait queues:
//! *tracer queue* (a blocking write waits there) and *tracee queue* (a held
//! tracee waits there). Every method runs under the mutex and says what to do
//! next; the kernel does it after unlocking:
//!
//! - tracee at a stop point: [`Session::stop_point`] or
//!   [`Session::breakpoint_trap`]; wake the tracer queue on
//!   [`StopDecision::Hold`] and on `Continue { wake_tracer: true }`; after a
//!   `Hold`, sleep on the tracee queue until [`Session::resumed`] says so (or
//!   a `SIGKILL` is pending); after `WaitThenRetry`, the same, then call
//!   again;
//! - tracee about to return to user mode: if [`Session::is_held`] (an
//!   attach stop), sleep until resumed; set the trap flag if
//!   [`Session::single_stepping`];
//! - tracee events: [`Session::clone_created`], [`Session::exited`]; wake
//!   the tracer queue after each; on a `WaitForRoom` answer (from these or
//!   from the stop points), sleep on the tracee queue while
//!   [`Session::must_wait_for_room`] (the tracer's read wakes it), then ask
//!   again;
//! - tracer write: [`Session::write_op`]; act on the [`WriteOutcome`], then
//!   on [`WriteReply::MustWait`] sleep on the tracer queue, calling
//!   [`Session::poll`] after each wake (a signal ends the wait with `EINTR`
//!   and changes nothing here); [`WriteReply::WouldBlock`] is `EAGAIN`;
//! - tracer read: [`Session::read_events`] (never blocks, wakes nobody);
//! - tracer opens a held clone child's `trace`: [`Session::claim_child`];
//! - tracer close: [`Session::detach`]; act on the [`DetachOutcome`].

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use abi::{
    PtraceEvent, StopInfo, PTRACE_EVENT_CLONE, PTRACE_STOP_BREAKPOINT, PTRACE_STOP_EXIT,
    PTRACE_STOP_SIGNAL,
};

use crate::errno::{Errno, EBADF, EINVAL, ESRCH};
use crate::op::{parse_op, Breakpoint, Op, StopKind};
use crate::path::Pid;

/// Most unread events a session queues (the exit event aside): past this a
/// tracee waits until its tracer reads, so a tracer that never reads cannot
/// make the kernel run out of memory.
pub const MAX_UNREAD_EVENTS: usize = 1024;

/// Why the tracee is held.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// The attach stop (`StopInfo::cause` 0); counts as a reached breakpoint.
    Attach,
    /// A stop the breakpoint matched.
    Reached(StopKind),
    /// An `int3` event stop: any write resumes it, `PTRACE_WAIT` included.
    Int3,
}

/// What the tracee does after [`Session::stop_point`] or
/// [`Session::breakpoint_trap`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StopDecision {
    /// Not held: go on. `wake_tracer` when an event was queued.
    Continue { wake_tracer: bool },
    /// Held: wake the tracer queue, then wait on the tracee queue until
    /// `resumed(generation)` is `Some`.
    Hold { generation: u64 },
    /// The tracee was already held (typically at an attach stop taken while
    /// it was inside the kernel): nothing was recorded. Wait until
    /// `resumed(generation)` is `Some`, then call again for the same point,
    /// so that it is checked against the breakpoint the tracer set meanwhile.
    WaitThenRetry { generation: u64 },
    /// The point would queue an event and [`MAX_UNREAD_EVENTS`] are unread:
    /// nothing was recorded. Wait while [`Session::must_wait_for_room`],
    /// then call again for the same point.
    WaitForRoom,
}

/// What [`Session::clone_created`] decided.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CloneDecision {
    /// The clone event was queued and the child is held for the tracer.
    Held,
    /// Detached or exited: the child runs on, untraced.
    Untraced,
    /// [`MAX_UNREAD_EVENTS`] are unread: nothing was recorded. Wait while
    /// [`Session::must_wait_for_room`], then call again.
    WaitForRoom,
}

/// How a held tracee goes on, from [`Session::resumed`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    /// `PTRACE_SYSEMU` applied to the stop resumed from: at a syscall-entry
    /// stop, skip the syscall (the tracer's `rax` is its result, and there is
    /// no exit stop); at a signal stop, discard the signal. Always `false`
    /// at other stops and after detach.
    pub ignore: bool,
}

/// What the tracer's `write` returns, after the kernel has acted on the rest
/// of the [`WriteOutcome`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WriteReply {
    /// Return this value now.
    Ready(usize),
    /// Blocking handle: sleep on the tracer queue and ask [`Session::poll`]
    /// after each wake.
    MustWait,
    /// Non-blocking `PTRACE_WAIT` with nothing ready: return `EAGAIN`. (Not a
    /// refusal: children were released and an `int3` hold resumed.)
    WouldBlock,
}

/// What the kernel does after an accepted write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Clone children to release (they run on, untraced).
    pub release_children: Vec<Pid>,
    /// The held tracee was resumed: wake the tracee queue.
    pub wake_tracee: bool,
    pub reply: WriteReply,
}

/// What the kernel does after [`Session::detach`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachOutcome {
    /// The tracee was held: wake the tracee queue (it resumes as if
    /// untraced).
    pub resume_tracee: bool,
    /// Clone children to release (they run on, untraced).
    pub release_children: Vec<Pid>,
}

/// Readiness of the tracer's handle, for the `event:` scheme.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// `EVENT_READ`: events are unread.
    pub read: bool,
    /// `EVENT_WRITE`: the breakpoint is reached.
    pub write: bool,
}

/// A clone child held for the tracer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct HeldChild {
    pid: Pid,
    /// The tracer has read the child's clone event.
    reported: bool,
}

/// One tracing session: the state between a tracer's `trace` handle and its
/// tracee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    breakpoint: Breakpoint,
    reached: bool,
    hold: Option<Hold>,
    /// The current stop; all zero when not held.
    stop: StopInfo,
    events: VecDeque<PtraceEvent>,
    children: Vec<HeldChild>,
    tracee_exited: bool,
    detached: bool,
    generation: u64,
    resume_ignore: bool,
}

impl Session {
    /// Opening `trace` attached: the tracee is held at the attach stop.
    /// `info_at_attach` describes where it is (`addr` = its `rip`); its
    /// `cause` is recorded as 0 whatever is passed. The kernel keeps the
    /// tracee held (waiting for `resumed(generation())`) before `open`
    /// returns.
    pub fn attach(info_at_attach: StopInfo) -> Session {
        Session {
            breakpoint: Breakpoint::Cont,
            reached: true,
            hold: Some(Hold::Attach),
            stop: StopInfo {
                cause: 0,
                ..info_at_attach
            },
            events: VecDeque::new(),
            children: Vec::new(),
            tracee_exited: false,
            detached: false,
            generation: 0,
            resume_ignore: false,
        }
    }

    // ----- Queries ---------------------------------------------------------

    /// Why the tracee is held, if it is (register writes need a hold;
    /// `status` says `held`).
    pub fn hold(&self) -> Option<Hold> {
        self.hold
    }

    /// Whether the tracee is held at a stop.
    pub fn is_held(&self) -> bool {
        self.hold.is_some()
    }

    /// What `proc:<pid>/stop` reads: the current stop, or all zero when not
    /// held.
    pub fn stop_info(&self) -> StopInfo {
        self.stop
    }

    /// The breakpoint the last operation set.
    pub fn breakpoint(&self) -> Breakpoint {
        self.breakpoint
    }

    /// Whether the breakpoint is reached (the tracee is held at it).
    pub fn is_reached(&self) -> bool {
        self.reached
    }

    /// Whether the tracee should run with the trap flag set: the kernel sets
    /// TF when returning a tracee to user mode while this is true (and hides
    /// it from `regs/int`).
    pub fn single_stepping(&self) -> bool {
        self.is_active() && self.breakpoint == Breakpoint::SingleStep && !self.reached
    }

    /// How many events are unread.
    pub fn unread_events(&self) -> usize {
        self.events.len()
    }

    /// Whether a tracee point that queues an event must wait: the session
    /// is live and [`MAX_UNREAD_EVENTS`] are unread. Turns false when the
    /// tracer reads, detaches, or the tracee exits.
    pub fn must_wait_for_room(&self) -> bool {
        self.is_active() && self.events.len() >= MAX_UNREAD_EVENTS
    }

    /// Whether the tracee has exited ([`Session::exited`] was called).
    pub fn tracee_exited(&self) -> bool {
        self.tracee_exited
    }

    /// Whether [`Session::detach`] was called.
    pub fn is_detached(&self) -> bool {
        self.detached
    }

    /// The resume generation: a tracee held now is resumed once
    /// [`Session::resumed`] with this value is `Some`.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    // ----- Tracee side -----------------------------------------------------

    /// The tracee reached a point where it may stop: a syscall entry or exit,
    /// a completed single step, or a signal (anything but `SIGKILL`, which
    /// the kernel never reports) about to be delivered. `info` describes the
    /// point; its `cause` is set from `kind`.
    ///
    /// - the breakpoint matches: the tracee is held there (reached), no event
    ///   is queued;
    /// - a signal the breakpoint does not match: a `PTRACE_STOP_SIGNAL` event
    ///   (`a` = signal, `b` = handler) is queued and the signal is delivered,
    ///   or, with the queue full, [`StopDecision::WaitForRoom`];
    /// - otherwise nothing happens.
    ///
    /// Does nothing once detached or exited. While the tracee is already
    /// held, returns [`StopDecision::WaitThenRetry`] and changes nothing.
    /// This is how the attach handshake works: a tracee attached while
    /// stopped inside `kill` reaches that call's exit point held at the
    /// attach stop, waits, and on retry stops there if the tracer wrote
    /// `PTRACE_SYSCALL`.
    pub fn stop_point(&mut self, kind: StopKind, info: StopInfo) -> StopDecision {
        if !self.is_active() {
            return StopDecision::Continue { wake_tracer: false };
        }
        if self.hold.is_some() {
            return self.wait_then_retry();
        }
        if self.breakpoint.matches(kind) {
            self.reached = true;
            return self.hold_at(Hold::Reached(kind), kind.cause(), info);
        }
        if kind == StopKind::Signal {
            if self.must_wait_for_room() {
                return StopDecision::WaitForRoom;
            }
            self.queue(PtraceEvent::new(
                PTRACE_STOP_SIGNAL,
                info.signal as usize,
                info.handler as usize,
            ));
            return StopDecision::Continue { wake_tracer: true };
        }
        StopDecision::Continue { wake_tracer: false }
    }

    /// The tracee executed `int3` (`info.addr` = the address of the `int3`
    /// byte, where the kernel has put `rip` back): a `PTRACE_STOP_BREAKPOINT`
    /// event is queued and the tracee is held until the next write. Once
    /// detached or exited this returns `Continue` and the kernel delivers
    /// `SIGTRAP` as for an untraced process. While already held:
    /// [`StopDecision::WaitThenRetry`], nothing changed. With the queue full:
    /// [`StopDecision::WaitForRoom`], nothing changed.
    pub fn breakpoint_trap(&mut self, info: StopInfo) -> StopDecision {
        if !self.is_active() {
            return StopDecision::Continue { wake_tracer: false };
        }
        if self.hold.is_some() {
            return self.wait_then_retry();
        }
        if self.must_wait_for_room() {
            return StopDecision::WaitForRoom;
        }
        self.queue(PtraceEvent::new(
            PTRACE_STOP_BREAKPOINT,
            info.addr as usize,
            0,
        ));
        self.hold_at(Hold::Int3, PTRACE_STOP_BREAKPOINT, info)
    }

    /// What a held tracee checks each time it wakes: `Some` once it has been
    /// resumed since `since_generation` (the one [`StopDecision::Hold`] gave,
    /// or [`Session::generation`] at attach), or once the session is
    /// detached.
    pub fn resumed(&self, since_generation: u64) -> Option<Resume> {
        if self.detached || self.generation != since_generation {
            Some(Resume {
                ignore: self.resume_ignore,
            })
        } else {
            None
        }
    }

    /// The tracee created process or thread `child` with clone `flags`: a
    /// `PTRACE_EVENT_CLONE` event is queued and the child is held for the
    /// tracer: [`CloneDecision::Held`] (the kernel then keeps it from
    /// running until [`Session::child_is_held`] turns false);
    /// [`CloneDecision::Untraced`] once detached or exited;
    /// [`CloneDecision::WaitForRoom`] (nothing recorded) while the queue is
    /// full.
    pub fn clone_created(&mut self, child: Pid, flags: usize) -> CloneDecision {
        if !self.is_active() {
            return CloneDecision::Untraced;
        }
        if self.must_wait_for_room() {
            return CloneDecision::WaitForRoom;
        }
        self.queue(PtraceEvent::new(PTRACE_EVENT_CLONE, child, flags));
        if !self.child_is_held(child) {
            self.children.push(HeldChild {
                pid: child,
                reported: false,
            });
        }
        CloneDecision::Held
    }

    /// Whether clone child `child` is still held for the tracer.
    pub fn child_is_held(&self, child: Pid) -> bool {
        self.children.iter().any(|held| held.pid == child)
    }

    /// The tracee exited, for any reason, with `wait_status` (as `waitpid`
    /// reports it): a `PTRACE_STOP_EXIT` event is queued; the hold and the
    /// breakpoint are cleared. Clone children stay held until the tracer
    /// claims them, writes successfully or closes. Only the first call
    /// counts. The exit event is queued even when [`MAX_UNREAD_EVENTS`] are
    /// unread: there is only one.
    pub fn exited(&mut self, wait_status: usize) {
        if !self.is_active() {
            return;
        }
        self.queue(PtraceEvent::new(PTRACE_STOP_EXIT, wait_status, 0));
        self.tracee_exited = true;
        self.hold = None;
        self.stop = StopInfo::default();
        self.breakpoint = Breakpoint::Cont;
        self.reached = false;
        self.resume_ignore = false;
    }

    // ----- Tracer side -----------------------------------------------------

    /// The tracer wrote `bytes` to `trace` (`nonblocking`: the handle has
    /// `O_NONBLOCK`). On `Err` nothing changed:
    ///
    /// - `EINVAL`: not exactly one valid operation byte;
    /// - `ESRCH`: the tracee has exited and every event has been read;
    /// - `EBADF`: the session is detached.
    ///
    /// Otherwise, in order: clone children whose event was read and that the
    /// tracer did not claim are released; unless the op is `PTRACE_WAIT`,
    /// the breakpoint is set (unreached) and a held tracee resumed
    /// (`PTRACE_SYSEMU` applying to the stop resumed from; after exit there
    /// is nothing to set); `PTRACE_WAIT` resumes only an `int3` hold. Then
    /// the reply:
    ///
    /// - blocking: `Ready(0)` if events are unread, else `Ready(1)` if the
    ///   breakpoint is reached, else `MustWait`;
    /// - non-blocking op other than `PTRACE_WAIT`: `Ready(1)` ("accepted");
    /// - non-blocking `PTRACE_WAIT`: as blocking, `WouldBlock` for `MustWait`.
    pub fn write_op(&mut self, bytes: &[u8], nonblocking: bool) -> Result<WriteOutcome, Errno> {
        let request = parse_op(bytes)?;
        if self.detached {
            return Err(EBADF);
        }
        if self.tracee_exited && self.events.is_empty() {
            return Err(ESRCH);
        }

        let release_children = self.release_reported_children();
        let wake_tracee = match request.op.breakpoint() {
            Some(_) if self.tracee_exited => false,
            Some(breakpoint) => {
                self.breakpoint = breakpoint;
                self.reached = false;
                self.resume_held(request.sysemu)
            }
            None if self.hold == Some(Hold::Int3) => self.resume_held(false),
            None => false,
        };

        let reply = match (nonblocking, request.op, self.ready_value()) {
            (true, op, _) if op != Op::Wait => WriteReply::Ready(1),
            (_, _, Some(value)) => WriteReply::Ready(value),
            (true, _, None) => WriteReply::WouldBlock,
            (false, _, None) => WriteReply::MustWait,
        };
        Ok(WriteOutcome {
            release_children,
            wake_tracee,
            reply,
        })
    }

    /// A blocking write woke up on the tracer queue: `Some(Ok(0))` if events
    /// are unread, `Some(Ok(1))` if the breakpoint is reached,
    /// `Some(Err(ESRCH))` if the tracee has exited and every event has been
    /// read (by another thread), `Some(Err(EBADF))` once detached; `None`:
    /// keep waiting.
    pub fn poll(&self) -> Option<Result<usize, Errno>> {
        if self.detached {
            return Some(Err(EBADF));
        }
        match self.ready_value() {
            Some(value) => Some(Ok(value)),
            None if self.tracee_exited => Some(Err(ESRCH)),
            None => None,
        }
    }

    /// The handle's readiness for the `event:` scheme. The kernel reports a
    /// handle that is already ready when it is registered, and re-checks
    /// after every call that wakes the tracer queue.
    pub fn readiness(&self) -> Readiness {
        Readiness {
            read: !self.detached && !self.events.is_empty(),
            write: !self.detached && self.reached,
        }
    }

    /// The tracer reads `trace` with a `buf_len`-byte buffer: removes and
    /// returns as many whole events as fit and are queued (none when the
    /// queue is empty; a read never blocks). `EINVAL`, with nothing removed,
    /// if `buf_len` is under 56 bytes. Clone events read mark their children
    /// as reported (released by the next write).
    ///
    /// The kernel should make sure the user buffer is writable before
    /// calling this, since the returned events are gone from the queue.
    pub fn read_events(&mut self, buf_len: usize) -> Result<Vec<PtraceEvent>, Errno> {
        if buf_len < PtraceEvent::SIZE {
            return Err(EINVAL);
        }
        let count = (buf_len / PtraceEvent::SIZE).min(self.events.len());
        let read: Vec<PtraceEvent> = self.events.drain(..count).collect();
        for event in read.iter().filter(|e| e.cause == PTRACE_EVENT_CLONE) {
            for child in self.children.iter_mut().filter(|c| c.pid == event.a) {
                child.reported = true;
            }
        }
        Ok(read)
    }

    /// The tracer opened `proc:<child>/trace` on a clone child held for it:
    /// the child is no longer held by this session (the kernel attaches it
    /// to a new session, stopped). Returns whether `child` was held here.
    /// The kernel also calls this when a held child dies.
    pub fn claim_child(&mut self, child: Pid) -> bool {
        let before = self.children.len();
        self.children.retain(|held| held.pid != child);
        self.children.len() != before
    }

    /// The tracer's handle closed (or the tracer died): the breakpoint is
    /// cleared, a held tracee resumes as if untraced (no `ignore`), every
    /// held clone child is released, unread events are dropped. For an
    /// `O_EXCL` handle the kernel posts `SIGKILL` to the tracee before waking
    /// it. A second call does nothing.
    pub fn detach(&mut self) -> DetachOutcome {
        if self.detached {
            return DetachOutcome {
                resume_tracee: false,
                release_children: Vec::new(),
            };
        }
        let release_children = self.children.drain(..).map(|held| held.pid).collect();
        self.breakpoint = Breakpoint::Cont;
        self.reached = false;
        let resume_tracee = self.resume_held(false);
        self.events.clear();
        self.detached = true;
        DetachOutcome {
            resume_tracee,
            release_children,
        }
    }

    // ----- Internals -------------------------------------------------------

    /// Neither detached nor exited: stops and events still count.
    fn is_active(&self) -> bool {
        !self.detached && !self.tracee_exited
    }

    fn queue(&mut self, event: PtraceEvent) {
        self.events.push_back(event);
    }

    /// Holds the tracee at a new stop.
    fn hold_at(&mut self, hold: Hold, cause: u64, info: StopInfo) -> StopDecision {
        self.hold = Some(hold);
        self.stop = StopInfo { cause, ..info };
        StopDecision::Hold {
            generation: self.generation,
        }
    }

    /// The tracee is already held: it waits for that hold to end first.
    fn wait_then_retry(&self) -> StopDecision {
        StopDecision::WaitThenRetry {
            generation: self.generation,
        }
    }

    /// Resumes a held tracee; returns whether there was one to wake.
    fn resume_held(&mut self, sysemu: bool) -> bool {
        let Some(hold) = self.hold.take() else {
            return false;
        };
        self.resume_ignore = sysemu
            && matches!(
                hold,
                Hold::Reached(StopKind::PreSyscall) | Hold::Reached(StopKind::Signal)
            );
        self.stop = StopInfo::default();
        self.generation = self.generation.wrapping_add(1);
        true
    }

    /// Removes and returns the clone children whose event has been read.
    fn release_reported_children(&mut self) -> Vec<Pid> {
        let released = self
            .children
            .iter()
            .filter(|held| held.reported)
            .map(|held| held.pid)
            .collect();
        self.children.retain(|held| !held.reported);
        released
    }

    /// What a write reports if it can now: 0 for unread events (first), 1
    /// for a reached breakpoint.
    fn ready_value(&self) -> Option<usize> {
        if !self.events.is_empty() {
            Some(0)
        } else if self.reached {
            Some(1)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests;
