//! Unit tests of the session state machine, one behaviour of the contract
//! per test.

use super::*;
use crate::errno::{EBADF, EINVAL, ESRCH};
use abi::{
    PTRACE_CONT, PTRACE_SIGNAL, PTRACE_SINGLESTEP, PTRACE_STOP_POST_SYSCALL,
    PTRACE_STOP_PRE_SYSCALL, PTRACE_STOP_SINGLESTEP, PTRACE_SYSCALL, PTRACE_SYSEMU, PTRACE_WAIT,
};
use alloc::vec;

const RIP: u64 = 0x40_1000;
const SIGUSR1: u64 = 10;
const HANDLER: u64 = 0x40_2000;
const CHILD: Pid = 20;
const CLONE_VM: usize = 0x100;

const ALL_KINDS: [StopKind; 4] = [
    StopKind::PreSyscall,
    StopKind::PostSyscall,
    StopKind::SingleStep,
    StopKind::Signal,
];

fn at(addr: u64) -> StopInfo {
    StopInfo {
        addr,
        ..StopInfo::default()
    }
}

fn syscall_info(nr: u64) -> StopInfo {
    StopInfo {
        nr,
        args: [1, 2, 3, 4, 5, 6],
        ..at(RIP)
    }
}

fn signal_info() -> StopInfo {
    StopInfo {
        signal: SIGUSR1,
        handler: HANDLER,
        ..at(RIP)
    }
}

fn info_for(kind: StopKind) -> StopInfo {
    match kind {
        StopKind::Signal => signal_info(),
        _ => syscall_info(39),
    }
}

fn attached() -> Session {
    Session::attach(at(RIP))
}

/// A blocking write that must be accepted.
fn write(session: &mut Session, op: u8) -> WriteOutcome {
    session.write_op(&[op], false).expect("write accepted")
}

/// A non-blocking write that must be accepted.
fn write_nonblocking(session: &mut Session, op: u8) -> WriteOutcome {
    session.write_op(&[op], true).expect("write accepted")
}

/// The tracee reaches a stop point that must hold it; returns the
/// generation to wait on.
fn hold_at(session: &mut Session, kind: StopKind) -> u64 {
    match session.stop_point(kind, info_for(kind)) {
        StopDecision::Hold { generation } => generation,
        other => panic!("expected a hold at {kind:?}, got {other:?}"),
    }
}

/// The tracee executes `int3`; it must be held.
fn trap(session: &mut Session, addr: u64) -> u64 {
    match session.breakpoint_trap(at(addr)) {
        StopDecision::Hold { generation } => generation,
        other => panic!("expected an int3 hold, got {other:?}"),
    }
}

/// A session whose tracee runs after `op` was written at the attach stop.
fn running_after(op: u8) -> Session {
    let mut session = attached();
    assert!(write(&mut session, op).wake_tracee);
    session
}

/// A session whose tracee is held at a `kind` stop reached with `op`.
fn held_at(op: u8, kind: StopKind) -> (Session, u64) {
    let mut session = running_after(op);
    let generation = hold_at(&mut session, kind);
    (session, generation)
}

fn read_all(session: &mut Session) -> Vec<PtraceEvent> {
    session.read_events(4096).expect("read accepted")
}

const CONTINUE_QUIETLY: StopDecision = StopDecision::Continue { wake_tracer: false };

// ----- Attach ----------------------------------------------------------------

#[test]
fn attach_holds_the_tracee_at_a_cause_zero_stop() {
    let session = Session::attach(StopInfo {
        cause: PTRACE_STOP_PRE_SYSCALL,
        ..at(RIP)
    });
    assert_eq!(session.hold(), Some(Hold::Attach));
    assert_eq!(session.stop_info(), at(RIP));
    assert!(session.is_reached());
    assert_eq!(session.breakpoint(), Breakpoint::Cont);
    assert_eq!(session.resumed(session.generation()), None);
    assert_eq!(session.unread_events(), 0);
    assert!(!session.single_stepping());
}

#[test]
fn wait_right_after_attach_returns_one_without_resuming() {
    let mut session = attached();
    for _ in 0..2 {
        let outcome = write(&mut session, PTRACE_WAIT);
        assert_eq!(outcome.reply, WriteReply::Ready(1));
        assert!(!outcome.wake_tracee);
        assert_eq!(session.hold(), Some(Hold::Attach));
        assert_eq!(session.resumed(0), None);
    }
}

#[test]
fn every_resuming_op_resumes_from_the_attach_stop() {
    let cases = [
        (PTRACE_CONT, Breakpoint::Cont),
        (PTRACE_SINGLESTEP, Breakpoint::SingleStep),
        (PTRACE_SYSCALL, Breakpoint::Syscall),
        (PTRACE_SIGNAL, Breakpoint::Signal),
    ];
    for (op, breakpoint) in cases {
        let mut session = attached();
        let outcome = write(&mut session, op);
        assert!(outcome.wake_tracee);
        assert_eq!(outcome.reply, WriteReply::MustWait);
        assert!(outcome.release_children.is_empty());
        assert_eq!(session.resumed(0), Some(Resume { ignore: false }));
        assert!(!session.is_held());
        assert!(!session.is_reached());
        assert_eq!(session.stop_info(), StopInfo::default());
        assert_eq!(session.breakpoint(), breakpoint);
    }
}

// ----- Which stops each op matches ------------------------------------------

#[test]
fn syscall_op_stops_at_entry_and_exit_only() {
    let mut session = running_after(PTRACE_SYSCALL);
    assert_eq!(
        session.stop_point(StopKind::SingleStep, at(RIP)),
        CONTINUE_QUIETLY
    );
    let generation = hold_at(&mut session, StopKind::PreSyscall);
    assert_eq!(generation, session.generation());
    assert_eq!(session.hold(), Some(Hold::Reached(StopKind::PreSyscall)));
    assert_eq!(session.poll(), Some(Ok(1)));
    assert_eq!(
        session.unread_events(),
        0,
        "a reached breakpoint queues no event"
    );
    let stop = session.stop_info();
    assert_eq!(
        (stop.cause, stop.nr, stop.args[5]),
        (PTRACE_STOP_PRE_SYSCALL, 39, 6)
    );

    write(&mut session, PTRACE_SYSCALL);
    assert!(session.resumed(generation).is_some());
    let exit = StopInfo {
        ret: 0,
        ..syscall_info(39)
    };
    assert!(matches!(
        session.stop_point(StopKind::PostSyscall, exit),
        StopDecision::Hold { .. }
    ));
    assert_eq!(session.stop_info().cause, PTRACE_STOP_POST_SYSCALL);
}

#[test]
fn singlestep_op_stops_at_single_steps_only() {
    let mut session = running_after(PTRACE_SINGLESTEP);
    assert!(session.single_stepping());
    for kind in [StopKind::PreSyscall, StopKind::PostSyscall] {
        assert_eq!(session.stop_point(kind, info_for(kind)), CONTINUE_QUIETLY);
    }
    assert_eq!(
        session.stop_point(StopKind::Signal, signal_info()),
        StopDecision::Continue { wake_tracer: true }
    );
    hold_at(&mut session, StopKind::SingleStep);
    assert_eq!(session.stop_info().cause, PTRACE_STOP_SINGLESTEP);
    assert!(!session.single_stepping(), "no trap flag while held");
}

#[test]
fn signal_op_stops_at_signals_without_an_event() {
    let mut session = running_after(PTRACE_SIGNAL);
    for kind in [
        StopKind::PreSyscall,
        StopKind::PostSyscall,
        StopKind::SingleStep,
    ] {
        assert_eq!(session.stop_point(kind, info_for(kind)), CONTINUE_QUIETLY);
    }
    hold_at(&mut session, StopKind::Signal);
    let stop = session.stop_info();
    assert_eq!(
        (stop.cause, stop.signal, stop.handler),
        (0x8, SIGUSR1, HANDLER)
    );
    assert_eq!(session.unread_events(), 0);
    assert_eq!(session.poll(), Some(Ok(1)));
}

#[test]
fn cont_op_stops_nowhere_and_reports_signals_as_events() {
    let mut session = running_after(PTRACE_CONT);
    for kind in [
        StopKind::PreSyscall,
        StopKind::PostSyscall,
        StopKind::SingleStep,
    ] {
        assert_eq!(session.stop_point(kind, info_for(kind)), CONTINUE_QUIETLY);
    }
    assert_eq!(
        session.stop_point(StopKind::Signal, signal_info()),
        StopDecision::Continue { wake_tracer: true }
    );
    assert_eq!(
        read_all(&mut session),
        [PtraceEvent::new(
            abi::PTRACE_STOP_SIGNAL,
            SIGUSR1 as usize,
            HANDLER as usize
        )]
    );
    assert!(!session.is_held());
}

#[test]
fn only_singlestep_breakpoint_sets_the_trap_flag() {
    for op in [PTRACE_CONT, PTRACE_SYSCALL, PTRACE_SIGNAL] {
        assert!(!running_after(op).single_stepping());
    }
    let mut session = running_after(PTRACE_SINGLESTEP);
    write(&mut session, PTRACE_CONT);
    assert!(!session.single_stepping());
}

#[test]
fn a_stop_point_while_already_held_changes_nothing() {
    let (mut session, generation) = held_at(PTRACE_SYSCALL, StopKind::PreSyscall);
    let before = session.clone();
    assert_eq!(
        session.stop_point(StopKind::PostSyscall, syscall_info(1)),
        StopDecision::WaitThenRetry { generation }
    );
    assert_eq!(
        session.breakpoint_trap(at(RIP)),
        StopDecision::WaitThenRetry { generation }
    );
    assert_eq!(session, before);
}

// ----- PTRACE_SYSEMU ---------------------------------------------------------

#[test]
fn sysemu_at_a_syscall_entry_stop_skips_the_call() {
    let (mut session, generation) = held_at(PTRACE_SYSCALL, StopKind::PreSyscall);
    let outcome = write(&mut session, PTRACE_SYSCALL | PTRACE_SYSEMU);
    assert!(outcome.wake_tracee);
    assert_eq!(session.resumed(generation), Some(Resume { ignore: true }));
    assert_eq!(session.breakpoint(), Breakpoint::Syscall);
}

#[test]
fn sysemu_at_a_signal_stop_discards_the_signal() {
    let (mut session, generation) = held_at(PTRACE_SIGNAL, StopKind::Signal);
    write(&mut session, PTRACE_CONT | PTRACE_SYSEMU);
    assert_eq!(session.resumed(generation), Some(Resume { ignore: true }));
    assert_eq!(session.breakpoint(), Breakpoint::Cont);
}

#[test]
fn sysemu_at_other_stops_ignores_nothing() {
    let cases = [
        (PTRACE_SYSCALL, StopKind::PostSyscall),
        (PTRACE_SINGLESTEP, StopKind::SingleStep),
    ];
    for (op, kind) in cases {
        let (mut session, generation) = held_at(op, kind);
        write(&mut session, PTRACE_SINGLESTEP | PTRACE_SYSEMU);
        assert_eq!(session.resumed(generation), Some(Resume { ignore: false }));
    }

    let mut at_attach = attached();
    write(&mut at_attach, PTRACE_SYSCALL | PTRACE_SYSEMU);
    assert_eq!(at_attach.resumed(0), Some(Resume { ignore: false }));

    let mut at_int3 = running_after(PTRACE_CONT);
    let generation = trap(&mut at_int3, RIP);
    write(&mut at_int3, PTRACE_CONT | PTRACE_SYSEMU);
    assert_eq!(at_int3.resumed(generation), Some(Resume { ignore: false }));
}

#[test]
fn ignore_applies_to_one_resume_only() {
    let (mut session, _) = held_at(PTRACE_SYSCALL, StopKind::PreSyscall);
    write(&mut session, PTRACE_SYSCALL | PTRACE_SYSEMU);
    let generation = hold_at(&mut session, StopKind::PreSyscall);
    write(&mut session, PTRACE_SYSCALL);
    assert_eq!(session.resumed(generation), Some(Resume { ignore: false }));
}

#[test]
fn sysemu_while_running_resumes_nothing() {
    let mut session = running_after(PTRACE_CONT);
    let generation = session.generation();
    let outcome = write(&mut session, PTRACE_SYSCALL | PTRACE_SYSEMU);
    assert!(!outcome.wake_tracee);
    assert_eq!(session.generation(), generation);
    assert_eq!(session.breakpoint(), Breakpoint::Syscall);
}

// ----- Blocking writes, events and PTRACE_WAIT -------------------------------

#[test]
fn events_arriving_while_the_tracer_waits_end_the_wait_with_zero() {
    let mut session = running_after(PTRACE_SYSCALL);
    assert_eq!(session.poll(), None);
    assert_eq!(
        session.stop_point(StopKind::Signal, signal_info()),
        StopDecision::Continue { wake_tracer: true }
    );
    assert!(
        !session.is_held(),
        "the signal is delivered, the tracee runs on"
    );
    assert_eq!(session.poll(), Some(Ok(0)));
    assert_eq!(read_all(&mut session).len(), 1);
    assert_eq!(session.poll(), None);

    let outcome = write(&mut session, PTRACE_WAIT);
    assert_eq!(outcome.reply, WriteReply::MustWait);
    assert!(!outcome.wake_tracee);
    assert_eq!(
        session.breakpoint(),
        Breakpoint::Syscall,
        "WAIT sets nothing"
    );
    hold_at(&mut session, StopKind::PreSyscall);
    assert_eq!(session.poll(), Some(Ok(1)));
}

#[test]
fn wait_returns_one_again_while_the_breakpoint_is_reached() {
    let (mut session, generation) = held_at(PTRACE_SYSCALL, StopKind::PreSyscall);
    for _ in 0..3 {
        let outcome = write(&mut session, PTRACE_WAIT);
        assert_eq!(outcome.reply, WriteReply::Ready(1));
        assert!(!outcome.wake_tracee);
        assert_eq!(session.resumed(generation), None);
    }
}

#[test]
fn wait_with_the_tracee_running_and_nothing_pending_blocks() {
    let mut session = running_after(PTRACE_CONT);
    assert_eq!(write(&mut session, PTRACE_WAIT).reply, WriteReply::MustWait);
}

#[test]
fn int3_queues_an_event_and_holds_until_any_write() {
    let mut session = running_after(PTRACE_CONT);
    let generation = trap(&mut session, 0x40_1234);
    assert_eq!(session.hold(), Some(Hold::Int3));
    assert!(!session.is_reached());
    let stop = session.stop_info();
    assert_eq!((stop.cause, stop.addr), (PTRACE_STOP_BREAKPOINT, 0x40_1234));
    assert_eq!(session.poll(), Some(Ok(0)));
    assert_eq!(
        read_all(&mut session),
        [PtraceEvent::new(PTRACE_STOP_BREAKPOINT, 0x40_1234, 0)]
    );

    let outcome = write(&mut session, PTRACE_WAIT);
    assert!(outcome.wake_tracee, "WAIT resumes from an int3 stop");
    assert_eq!(outcome.reply, WriteReply::MustWait);
    assert_eq!(session.resumed(generation), Some(Resume { ignore: false }));
    assert_eq!(session.stop_info(), StopInfo::default());
}

#[test]
fn wait_from_int3_goes_on_toward_the_breakpoint_already_set() {
    let mut session = running_after(PTRACE_SYSCALL);
    trap(&mut session, RIP);
    read_all(&mut session);
    write(&mut session, PTRACE_WAIT);
    assert_eq!(session.breakpoint(), Breakpoint::Syscall);
    hold_at(&mut session, StopKind::PostSyscall);
    assert_eq!(session.poll(), Some(Ok(1)));
}

#[test]
fn a_resuming_op_at_int3_sets_its_own_breakpoint() {
    let mut session = running_after(PTRACE_CONT);
    let generation = trap(&mut session, RIP);
    read_all(&mut session);
    let outcome = write(&mut session, PTRACE_SINGLESTEP);
    assert!(outcome.wake_tracee);
    assert!(session.resumed(generation).is_some());
    assert!(session.single_stepping());
}

#[test]
fn wait_does_not_resume_from_a_reached_stop_or_the_attach_stop() {
    let (mut session, generation) = held_at(PTRACE_SINGLESTEP, StopKind::SingleStep);
    assert!(!write(&mut session, PTRACE_WAIT).wake_tracee);
    assert_eq!(session.resumed(generation), None);
    let mut fresh = attached();
    assert!(!write(&mut fresh, PTRACE_WAIT).wake_tracee);
}

#[test]
fn unread_events_take_precedence_over_reached() {
    let mut session = running_after(PTRACE_SYSCALL);
    session.stop_point(StopKind::Signal, signal_info());
    hold_at(&mut session, StopKind::PreSyscall);
    assert_eq!(session.poll(), Some(Ok(0)));
    assert_eq!(write(&mut session, PTRACE_WAIT).reply, WriteReply::Ready(0));
    assert_eq!(
        write(&mut session, PTRACE_WAIT).reply,
        WriteReply::Ready(0),
        "still unread"
    );
    read_all(&mut session);
    assert_eq!(write(&mut session, PTRACE_WAIT).reply, WriteReply::Ready(1));
}

#[test]
fn a_resuming_op_with_events_unread_returns_zero_at_once() {
    let mut session = running_after(PTRACE_SYSCALL);
    session.stop_point(StopKind::Signal, signal_info());
    let generation = hold_at(&mut session, StopKind::PreSyscall);
    let outcome = write(&mut session, PTRACE_SYSCALL);
    assert!(
        outcome.wake_tracee,
        "the op resumes even with events unread"
    );
    assert_eq!(outcome.reply, WriteReply::Ready(0));
    assert!(session.resumed(generation).is_some());
}

// ----- Non-blocking handle ---------------------------------------------------

#[test]
fn nonblocking_ops_are_accepted_with_one() {
    for op in [
        PTRACE_CONT,
        PTRACE_SINGLESTEP,
        PTRACE_SYSCALL,
        PTRACE_SIGNAL,
    ] {
        let mut session = attached();
        let outcome = write_nonblocking(&mut session, op);
        assert_eq!(outcome.reply, WriteReply::Ready(1));
        assert!(outcome.wake_tracee);
        assert!(!session.is_reached());
    }
    let mut with_events = running_after(PTRACE_CONT);
    session_signal(&mut with_events);
    assert_eq!(
        write_nonblocking(&mut with_events, PTRACE_SYSCALL).reply,
        WriteReply::Ready(1)
    );
}

fn session_signal(session: &mut Session) {
    session.stop_point(StopKind::Signal, signal_info());
}

#[test]
fn nonblocking_wait_reports_reached_events_or_would_block() {
    let mut session = running_after(PTRACE_SYSCALL);
    assert_eq!(
        write_nonblocking(&mut session, PTRACE_WAIT).reply,
        WriteReply::WouldBlock
    );
    session_signal(&mut session);
    assert_eq!(
        write_nonblocking(&mut session, PTRACE_WAIT).reply,
        WriteReply::Ready(0)
    );
    hold_at(&mut session, StopKind::PreSyscall);
    assert_eq!(
        write_nonblocking(&mut session, PTRACE_WAIT).reply,
        WriteReply::Ready(0),
        "events first, even when reached"
    );
    read_all(&mut session);
    assert_eq!(
        write_nonblocking(&mut session, PTRACE_WAIT).reply,
        WriteReply::Ready(1)
    );
    assert_eq!(
        write_nonblocking(&mut attached(), PTRACE_WAIT).reply,
        WriteReply::Ready(1)
    );
}

#[test]
fn nonblocking_wait_at_int3_resumes_then_would_block() {
    let mut session = running_after(PTRACE_CONT);
    let generation = trap(&mut session, RIP);
    read_all(&mut session);
    let outcome = write_nonblocking(&mut session, PTRACE_WAIT);
    assert!(outcome.wake_tracee);
    assert_eq!(outcome.reply, WriteReply::WouldBlock);
    assert!(session.resumed(generation).is_some());
}

#[test]
fn readiness_follows_events_and_reached() {
    let mut session = attached();
    assert_eq!(
        session.readiness(),
        Readiness {
            read: false,
            write: true
        }
    );
    write(&mut session, PTRACE_SYSCALL);
    assert_eq!(session.readiness(), Readiness::default());
    session_signal(&mut session);
    assert_eq!(
        session.readiness(),
        Readiness {
            read: true,
            write: false
        }
    );
    hold_at(&mut session, StopKind::PreSyscall);
    assert_eq!(
        session.readiness(),
        Readiness {
            read: true,
            write: true
        }
    );
    read_all(&mut session);
    assert_eq!(
        session.readiness(),
        Readiness {
            read: false,
            write: true
        }
    );
    write(&mut session, PTRACE_CONT);
    session.exited(0);
    assert_eq!(
        session.readiness(),
        Readiness {
            read: true,
            write: false
        }
    );
    session.detach();
    assert_eq!(session.readiness(), Readiness::default());
}

// ----- Reading events --------------------------------------------------------

#[test]
fn read_returns_whole_records_in_order() {
    let mut session = running_after(PTRACE_CONT);
    for child in [21, 22, 23] {
        session.clone_created(child, 0);
    }
    assert_eq!(session.read_events(55), Err(EINVAL));
    assert_eq!(session.unread_events(), 3, "a short buffer removes nothing");
    let first = session.read_events(111).unwrap();
    assert_eq!(first, [PtraceEvent::new(PTRACE_EVENT_CLONE, 21, 0)]);
    let rest = session.read_events(56 * 10).unwrap();
    assert_eq!(
        rest.iter().map(|e| e.a).collect::<Vec<_>>(),
        [22, 23],
        "FIFO"
    );
    assert_eq!(session.read_events(56), Ok(vec![]));
    assert_eq!(session.read_events(0), Err(EINVAL));
}

// ----- Exit ------------------------------------------------------------------

#[test]
fn exit_while_the_tracer_waits_then_esrch_once_events_are_read() {
    let mut session = running_after(PTRACE_SYSCALL);
    assert_eq!(session.poll(), None);
    session.exited(0x0900);
    assert!(session.tracee_exited());
    assert_eq!(session.poll(), Some(Ok(0)));
    assert_eq!(session.breakpoint(), Breakpoint::Cont);

    let outcome = write(&mut session, PTRACE_SYSCALL);
    assert_eq!(outcome.reply, WriteReply::Ready(0), "events still unread");
    assert!(!outcome.wake_tracee);
    assert_eq!(
        session.breakpoint(),
        Breakpoint::Cont,
        "nothing to set on a dead tracee"
    );

    assert_eq!(
        read_all(&mut session),
        [PtraceEvent::new(PTRACE_STOP_EXIT, 0x0900, 0)]
    );
    assert_eq!(session.poll(), Some(Err(ESRCH)));
    let before = session.clone();
    for op in [PTRACE_WAIT, PTRACE_CONT, PTRACE_SYSCALL | PTRACE_SYSEMU] {
        assert_eq!(session.write_op(&[op], false), Err(ESRCH));
        assert_eq!(session.write_op(&[op], true), Err(ESRCH));
    }
    assert_eq!(session, before);
}

#[test]
fn exit_while_held_clears_the_hold() {
    let (mut session, _) = held_at(PTRACE_SYSCALL, StopKind::PreSyscall);
    session.exited(9);
    assert!(!session.is_held());
    assert!(!session.is_reached());
    assert_eq!(session.stop_info(), StopInfo::default());
    assert_eq!(session.poll(), Some(Ok(0)));
}

#[test]
fn nothing_is_reported_after_exit_and_exit_counts_once() {
    let mut session = running_after(PTRACE_SYSCALL);
    session.exited(0);
    session.exited(1);
    for kind in ALL_KINDS {
        assert_eq!(session.stop_point(kind, info_for(kind)), CONTINUE_QUIETLY);
    }
    assert_eq!(session.breakpoint_trap(at(RIP)), CONTINUE_QUIETLY);
    assert_eq!(session.clone_created(CHILD, 0), CloneDecision::Untraced);
    assert_eq!(
        read_all(&mut session),
        [PtraceEvent::new(PTRACE_STOP_EXIT, 0, 0)]
    );
}

// ----- Clone children --------------------------------------------------------

#[test]
fn clone_queues_an_event_and_holds_the_child() {
    let mut session = running_after(PTRACE_CONT);
    assert_eq!(session.clone_created(CHILD, CLONE_VM), CloneDecision::Held);
    assert!(session.child_is_held(CHILD));
    assert!(!session.child_is_held(CHILD + 1));
    assert!(!session.is_held(), "the tracee runs on");
    assert_eq!(session.poll(), Some(Ok(0)));
    assert_eq!(
        read_all(&mut session),
        [PtraceEvent::new(PTRACE_EVENT_CLONE, CHILD, CLONE_VM)]
    );
}

#[test]
fn children_are_released_by_the_next_write_once_reported() {
    let mut session = running_after(PTRACE_CONT);
    session.clone_created(CHILD, 0);
    let unread = write(&mut session, PTRACE_WAIT);
    assert!(unread.release_children.is_empty(), "event not read yet");
    assert!(session.child_is_held(CHILD));

    read_all(&mut session);
    assert!(
        session.child_is_held(CHILD),
        "reading alone releases nothing"
    );
    let outcome = write(&mut session, PTRACE_WAIT);
    assert_eq!(outcome.release_children, [CHILD]);
    assert!(!session.child_is_held(CHILD));
    assert!(write(&mut session, PTRACE_WAIT).release_children.is_empty());
}

#[test]
fn only_children_whose_event_was_read_are_released() {
    let mut session = running_after(PTRACE_CONT);
    session.clone_created(21, 0);
    session.clone_created(22, 0);
    session.read_events(56).unwrap();
    assert_eq!(write(&mut session, PTRACE_CONT).release_children, [21]);
    assert!(session.child_is_held(22));
    read_all(&mut session);
    assert_eq!(write(&mut session, PTRACE_CONT).release_children, [22]);
}

#[test]
fn a_claimed_child_is_not_released() {
    let mut session = running_after(PTRACE_CONT);
    session.clone_created(CHILD, 0);
    read_all(&mut session);
    assert!(session.claim_child(CHILD));
    assert!(!session.child_is_held(CHILD));
    assert!(!session.claim_child(CHILD));
    assert!(write(&mut session, PTRACE_WAIT).release_children.is_empty());
}

#[test]
fn a_child_may_be_claimed_before_its_event_is_read() {
    let mut session = running_after(PTRACE_CONT);
    session.clone_created(CHILD, 0);
    assert!(session.claim_child(CHILD));
    assert_eq!(read_all(&mut session).len(), 1);
    assert!(write(&mut session, PTRACE_WAIT).release_children.is_empty());
}

#[test]
fn children_stay_held_after_the_tracee_exits_until_close() {
    let mut session = running_after(PTRACE_CONT);
    session.clone_created(CHILD, 0);
    session.exited(0);
    read_all(&mut session);
    assert_eq!(session.write_op(&[PTRACE_WAIT], false), Err(ESRCH));
    assert!(
        session.child_is_held(CHILD),
        "a refused write releases nothing"
    );
    assert_eq!(session.detach().release_children, [CHILD]);
}

#[test]
fn a_write_after_exit_with_events_unread_releases_reported_children() {
    let mut session = running_after(PTRACE_CONT);
    session.clone_created(CHILD, 0);
    session.exited(0);
    session.read_events(56).unwrap();
    let outcome = write(&mut session, PTRACE_WAIT);
    assert_eq!(outcome.release_children, [CHILD]);
    assert_eq!(outcome.reply, WriteReply::Ready(0));
}

// ----- Detach ----------------------------------------------------------------

#[test]
fn detach_while_held_resumes_as_if_untraced() {
    let holds: [(u8, Option<StopKind>); 4] = [
        (PTRACE_SYSCALL, Some(StopKind::PreSyscall)),
        (PTRACE_SIGNAL, Some(StopKind::Signal)),
        (PTRACE_SINGLESTEP, Some(StopKind::SingleStep)),
        (PTRACE_CONT, None),
    ];
    for (op, kind) in holds {
        let mut session = running_after(op);
        let generation = match kind {
            Some(kind) => hold_at(&mut session, kind),
            None => trap(&mut session, RIP),
        };
        let outcome = session.detach();
        assert!(outcome.resume_tracee);
        assert_eq!(session.resumed(generation), Some(Resume { ignore: false }));
        assert_eq!(session.breakpoint(), Breakpoint::Cont);
        assert!(!session.is_held());
        assert!(!session.single_stepping());
        assert_eq!(session.unread_events(), 0);
    }
    let mut at_attach = attached();
    assert!(at_attach.detach().resume_tracee);
    assert_eq!(at_attach.resumed(0), Some(Resume { ignore: false }));
}

#[test]
fn detach_while_running_wakes_nobody_and_stops_tracing() {
    let mut session = running_after(PTRACE_SINGLESTEP);
    let outcome = session.detach();
    assert!(!outcome.resume_tracee);
    assert!(session.is_detached());
    assert!(session.resumed(session.generation()).is_some());
    for kind in ALL_KINDS {
        assert_eq!(session.stop_point(kind, info_for(kind)), CONTINUE_QUIETLY);
    }
    assert_eq!(session.breakpoint_trap(at(RIP)), CONTINUE_QUIETLY);
    assert_eq!(session.clone_created(CHILD, 0), CloneDecision::Untraced);
    session.exited(0);
    assert_eq!(session.unread_events(), 0);
}

#[test]
fn detach_releases_every_held_child() {
    let mut session = running_after(PTRACE_CONT);
    session.clone_created(21, 0);
    session.clone_created(22, 0);
    session.read_events(56).unwrap();
    let outcome = session.detach();
    assert_eq!(outcome.release_children, [21, 22]);
    assert!(!session.child_is_held(21));
    assert_eq!(
        session.detach(),
        DetachOutcome {
            resume_tracee: false,
            release_children: vec![],
        }
    );
}

#[test]
fn a_detached_session_refuses_writes_and_waits() {
    let mut session = attached();
    session.detach();
    assert_eq!(session.write_op(&[PTRACE_CONT], false), Err(EBADF));
    assert_eq!(session.write_op(&[0x00], false), Err(EINVAL));
    assert_eq!(session.poll(), Some(Err(EBADF)));
}

// ----- Refused writes change nothing -----------------------------------------

/// Sessions in every interesting state.
fn sample_sessions() -> Vec<Session> {
    let mut sessions = vec![attached(), running_after(PTRACE_CONT)];
    sessions.push(held_at(PTRACE_SYSCALL, StopKind::PreSyscall).0);
    sessions.push(held_at(PTRACE_SIGNAL, StopKind::Signal).0);

    let mut at_int3 = running_after(PTRACE_SYSCALL);
    at_int3.clone_created(CHILD, 0);
    at_int3.read_events(56).unwrap();
    trap(&mut at_int3, RIP);
    sessions.push(at_int3);

    let mut exited_with_events = running_after(PTRACE_CONT);
    exited_with_events.clone_created(CHILD, 0);
    exited_with_events.exited(0);
    sessions.push(exited_with_events);
    sessions
}

#[test]
fn bad_lengths_and_bytes_are_einval_and_change_nothing() {
    let mut bad_inputs: Vec<Vec<u8>> = vec![
        vec![],
        vec![PTRACE_CONT, PTRACE_CONT],
        vec![PTRACE_WAIT; 56],
    ];
    bad_inputs.extend(
        (0..=u8::MAX)
            .filter(|byte| parse_op(&[*byte]).is_err())
            .map(|byte| vec![byte]),
    );
    assert!(bad_inputs.contains(&vec![PTRACE_SYSEMU]));
    assert!(bad_inputs.contains(&vec![PTRACE_WAIT | PTRACE_SYSEMU]));
    for mut session in sample_sessions() {
        let before = session.clone();
        for input in &bad_inputs {
            for nonblocking in [false, true] {
                assert_eq!(
                    session.write_op(input, nonblocking),
                    Err(EINVAL),
                    "{input:?}"
                );
                assert_eq!(session, before, "{input:?}");
            }
        }
    }
}

// ----- Whole tracer loops ----------------------------------------------------

#[test]
fn the_contract_tracer_loop_sees_every_syscall_stop_and_event() {
    // The tracee: a syscall, a signal delivered mid-way, a clone, exit.
    let mut session = attached();
    let mut stops = Vec::new();
    let mut events = Vec::new();
    let mut released = Vec::new();

    let mut reply = write(&mut session, PTRACE_SYSCALL).reply;
    let script: [&dyn Fn(&mut Session); 6] = [
        &|s| {
            hold_at(s, StopKind::PreSyscall);
        },
        &|s| {
            session_signal(s);
            hold_at(s, StopKind::PostSyscall);
        },
        &|s| {
            hold_at(s, StopKind::PreSyscall);
        },
        &|s| {
            s.clone_created(CHILD, 0);
            hold_at(s, StopKind::PostSyscall);
        },
        &|s| {
            hold_at(s, StopKind::PreSyscall);
        },
        &|s| s.exited(0),
    ];
    for step in script {
        assert_eq!(reply, WriteReply::MustWait);
        step(&mut session);
        let mut reached = session.poll().expect("woken").expect("no error");
        while reached == 0 {
            events.extend(read_all(&mut session).iter().map(|e| e.cause));
            match session.write_op(&[PTRACE_WAIT], false) {
                Ok(outcome) => {
                    released.extend(outcome.release_children);
                    match outcome.reply {
                        WriteReply::Ready(value) => reached = value,
                        WriteReply::MustWait => break,
                        WriteReply::WouldBlock => unreachable!(),
                    }
                }
                Err(errno) => {
                    assert_eq!(errno, ESRCH);
                    break;
                }
            }
        }
        if session.tracee_exited() {
            break;
        }
        if reached == 1 {
            stops.push(session.stop_info().cause);
            let outcome = write(&mut session, PTRACE_SYSCALL);
            released.extend(outcome.release_children);
            reply = outcome.reply;
        } else {
            reply = WriteReply::MustWait;
        }
    }
    assert_eq!(stops, [0x1, 0x2, 0x1, 0x2, 0x1]);
    assert_eq!(events, [0x8, 0x100, 0x20]);
    assert_eq!(session.write_op(&[PTRACE_WAIT], false), Err(ESRCH));
    assert_eq!(
        released,
        [CHILD],
        "released by the WAIT after its event was read"
    );
    assert!(session.detach().release_children.is_empty());
}

#[test]
fn attach_then_syscall_gets_the_exit_stop_first() {
    // The handshake: the tracee was attached while stopped inside `kill`.
    // It reaches that call's exit point still held at the attach stop, waits,
    // and after PTRACE_SYSCALL the retried exit point is its first stop.
    let mut session = attached();
    let exit_of_kill = StopInfo {
        ret: 0,
        ..syscall_info(37)
    };
    let generation = match session.stop_point(StopKind::PostSyscall, exit_of_kill) {
        StopDecision::WaitThenRetry { generation } => generation,
        other => panic!("expected to wait out the attach stop, got {other:?}"),
    };
    assert_eq!(session.hold(), Some(Hold::Attach), "nothing recorded");
    assert_eq!(session.resumed(generation), None);

    assert_eq!(
        write(&mut session, PTRACE_SYSCALL).reply,
        WriteReply::MustWait
    );
    assert!(session.resumed(generation).is_some());
    assert!(matches!(
        session.stop_point(StopKind::PostSyscall, exit_of_kill),
        StopDecision::Hold { .. }
    ));
    assert_eq!(session.poll(), Some(Ok(1)));
    let stop = session.stop_info();
    assert_eq!((stop.cause, stop.nr), (PTRACE_STOP_POST_SYSCALL, 37));
}

#[test]
fn an_int3_reached_while_held_at_attach_is_retried() {
    let mut session = attached();
    assert_eq!(
        session.breakpoint_trap(at(RIP)),
        StopDecision::WaitThenRetry { generation: 0 }
    );
    assert_eq!(session.unread_events(), 0);
    write(&mut session, PTRACE_CONT);
    assert!(matches!(
        session.breakpoint_trap(at(RIP)),
        StopDecision::Hold { generation: 1 }
    ));
    assert_eq!(session.unread_events(), 1);
}

// ----- The event cap (v1.2 section 6) ------------------------------------------

/// A running session with `MAX_UNREAD_EVENTS` unread signal events.
fn full_session() -> Session {
    let mut session = running_after(PTRACE_CONT);
    for _ in 0..MAX_UNREAD_EVENTS {
        assert_eq!(
            session.stop_point(StopKind::Signal, signal_info()),
            StopDecision::Continue { wake_tracer: true }
        );
    }
    assert!(session.must_wait_for_room());
    session
}

#[test]
fn a_signal_event_waits_for_room_and_records_nothing() {
    let mut session = full_session();
    let before = session.clone();
    assert_eq!(
        session.stop_point(StopKind::Signal, signal_info()),
        StopDecision::WaitForRoom
    );
    assert_eq!(session, before, "nothing recorded");
    assert_eq!(session.unread_events(), MAX_UNREAD_EVENTS);
}

#[test]
fn an_int3_waits_for_room_and_is_not_held() {
    let mut session = full_session();
    let before = session.clone();
    assert_eq!(session.breakpoint_trap(at(RIP)), StopDecision::WaitForRoom);
    assert_eq!(session, before);
    assert!(!session.is_held());
}

#[test]
fn a_clone_waits_for_room_and_holds_no_child() {
    let mut session = full_session();
    assert_eq!(session.clone_created(CHILD, 0), CloneDecision::WaitForRoom);
    assert!(!session.child_is_held(CHILD));
    assert_eq!(session.unread_events(), MAX_UNREAD_EVENTS);
}

#[test]
fn a_reached_breakpoint_needs_no_room() {
    // A stop that queues no event holds even with the queue full.
    let mut session = full_session();
    write(&mut session, PTRACE_SYSCALL);
    assert!(matches!(
        session.stop_point(StopKind::PreSyscall, syscall_info(39)),
        StopDecision::Hold { .. }
    ));
    assert_eq!(session.unread_events(), MAX_UNREAD_EVENTS);
}

#[test]
fn an_int3_flood_with_writes_and_no_reads_stays_under_the_cap() {
    // The tracee loops on int3; the tracer writes PTRACE_CONT 20,000 times
    // without reading.
    let mut session = running_after(PTRACE_CONT);
    let mut waited = 0;
    for _ in 0..20_000 {
        match session.breakpoint_trap(at(RIP)) {
            StopDecision::Hold { .. } => {}
            StopDecision::WaitForRoom => waited += 1,
            other => panic!("unexpected {other:?}"),
        }
        assert!(session.unread_events() <= MAX_UNREAD_EVENTS);
        let outcome = write(&mut session, PTRACE_CONT);
        assert_eq!(outcome.reply, WriteReply::Ready(0));
    }
    assert_eq!(session.unread_events(), MAX_UNREAD_EVENTS);
    assert_eq!(waited, 20_000 - MAX_UNREAD_EVENTS);
}

#[test]
fn reading_makes_room() {
    let mut session = full_session();
    let events = session.read_events(PtraceEvent::SIZE).unwrap();
    assert_eq!(events.len(), 1);
    assert!(!session.must_wait_for_room());
    assert_eq!(
        session.stop_point(StopKind::Signal, signal_info()),
        StopDecision::Continue { wake_tracer: true }
    );
    assert!(session.must_wait_for_room());
}

#[test]
fn detach_and_exit_end_the_wait_for_room() {
    let mut session = full_session();
    session.detach();
    assert!(!session.must_wait_for_room());
    let mut session = full_session();
    session.exited(9);
    assert!(!session.must_wait_for_room());
}

#[test]
fn the_exit_event_is_queued_past_the_cap() {
    let mut session = full_session();
    session.exited(9);
    assert_eq!(session.unread_events(), MAX_UNREAD_EVENTS + 1);
    let events = session
        .read_events(PtraceEvent::SIZE * (MAX_UNREAD_EVENTS + 1))
        .unwrap();
    assert_eq!(events.len(), MAX_UNREAD_EVENTS + 1);
    assert_eq!(
        events.last(),
        Some(&PtraceEvent::new(PTRACE_STOP_EXIT, 9, 0))
    );
}
