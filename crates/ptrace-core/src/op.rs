//! The one-byte operations written to `proc:<pid>/trace`, the stops a traced
//! process can be held at, and which stops each operation's breakpoint
//! matches (contract section 3).

use abi::{
    PTRACE_CONT, PTRACE_SIGNAL, PTRACE_SINGLESTEP, PTRACE_STOP_POST_SYSCALL,
    PTRACE_STOP_PRE_SYSCALL, PTRACE_STOP_SIGNAL, PTRACE_STOP_SINGLESTEP, PTRACE_SYSCALL,
    PTRACE_SYSEMU, PTRACE_WAIT,
};

use crate::errno::{Errno, EINVAL};

/// An operation, without the `PTRACE_SYSEMU` flag.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Cont,
    SingleStep,
    Syscall,
    Wait,
    Signal,
}

impl Op {
    /// The breakpoint the operation sets, or `None` for `PTRACE_WAIT`, which
    /// keeps the one already set.
    pub const fn breakpoint(self) -> Option<Breakpoint> {
        match self {
            Op::Cont => Some(Breakpoint::Cont),
            Op::SingleStep => Some(Breakpoint::SingleStep),
            Op::Syscall => Some(Breakpoint::Syscall),
            Op::Signal => Some(Breakpoint::Signal),
            Op::Wait => None,
        }
    }
}

/// A valid operation byte, decoded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OpRequest {
    pub op: Op,
    /// `PTRACE_SYSEMU` was OR'd in: ignore the stop being resumed from.
    pub sysemu: bool,
}

/// Decodes what a tracer wrote to `trace`: exactly one byte, one of
/// `CONT SINGLESTEP SYSCALL WAIT SIGNAL`, with `SYSEMU` OR'd into any but
/// `WAIT`. Anything else is `EINVAL`.
pub fn parse_op(bytes: &[u8]) -> Result<OpRequest, Errno> {
    let &[byte] = bytes else {
        return Err(EINVAL);
    };
    let sysemu = byte & PTRACE_SYSEMU != 0;
    let op = match byte & !PTRACE_SYSEMU {
        PTRACE_CONT => Op::Cont,
        PTRACE_SINGLESTEP => Op::SingleStep,
        PTRACE_SYSCALL => Op::Syscall,
        PTRACE_WAIT if !sysemu => Op::Wait,
        PTRACE_SIGNAL => Op::Signal,
        _ => return Err(EINVAL),
    };
    Ok(OpRequest { op, sysemu })
}

/// A point where a traced process may be held for its tracer (other than
/// the attach stop and `int3`, which are not breakpoints an op can ask for).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// Syscall entry: the call has not run yet.
    PreSyscall,
    /// Syscall exit: the result is in `rax`.
    PostSyscall,
    /// One single-stepped instruction has completed.
    SingleStep,
    /// A signal (not `SIGKILL`) is about to be delivered.
    Signal,
}

impl StopKind {
    /// The `StopInfo::cause` of this kind of stop.
    pub const fn cause(self) -> u64 {
        match self {
            StopKind::PreSyscall => PTRACE_STOP_PRE_SYSCALL,
            StopKind::PostSyscall => PTRACE_STOP_POST_SYSCALL,
            StopKind::SingleStep => PTRACE_STOP_SINGLESTEP,
            StopKind::Signal => PTRACE_STOP_SIGNAL,
        }
    }
}

/// Where the last operation asked the tracee to stop again.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Breakpoint {
    /// `PTRACE_CONT` (and the state after attaching, detaching or exiting):
    /// no stop matches.
    Cont,
    /// `PTRACE_SINGLESTEP`: the next single-step stop.
    SingleStep,
    /// `PTRACE_SYSCALL`: the next syscall entry or exit.
    Syscall,
    /// `PTRACE_SIGNAL`: the next signal about to be delivered.
    Signal,
}

impl Breakpoint {
    /// Whether a stop of `kind` is this breakpoint.
    pub const fn matches(self, kind: StopKind) -> bool {
        matches!(
            (self, kind),
            (Breakpoint::SingleStep, StopKind::SingleStep)
                | (
                    Breakpoint::Syscall,
                    StopKind::PreSyscall | StopKind::PostSyscall
                )
                | (Breakpoint::Signal, StopKind::Signal)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_KINDS: [StopKind; 4] = [
        StopKind::PreSyscall,
        StopKind::PostSyscall,
        StopKind::SingleStep,
        StopKind::Signal,
    ];

    #[test]
    fn plain_ops_decode() {
        let cases = [
            (0x01, Op::Cont),
            (0x02, Op::SingleStep),
            (0x03, Op::Syscall),
            (0x04, Op::Wait),
            (0x05, Op::Signal),
        ];
        for (byte, op) in cases {
            assert_eq!(parse_op(&[byte]), Ok(OpRequest { op, sysemu: false }));
        }
    }

    #[test]
    fn sysemu_combines_with_resuming_ops_only() {
        let cases = [
            (0x11, Op::Cont),
            (0x12, Op::SingleStep),
            (0x13, Op::Syscall),
            (0x15, Op::Signal),
        ];
        for (byte, op) in cases {
            assert_eq!(parse_op(&[byte]), Ok(OpRequest { op, sysemu: true }));
        }
        assert_eq!(parse_op(&[0x10]), Err(EINVAL));
        assert_eq!(parse_op(&[0x14]), Err(EINVAL));
    }

    #[test]
    fn exactly_nine_bytes_are_valid() {
        let valid = (0..=u8::MAX).filter(|b| parse_op(&[*b]).is_ok()).count();
        assert_eq!(valid, 9);
        for byte in [0x00, 0x06, 0x07, 0x08, 0x20, 0x21, 0x31, 0x81, 0xFF] {
            assert_eq!(parse_op(&[byte]), Err(EINVAL), "{byte:#x}");
        }
    }

    #[test]
    fn length_must_be_one() {
        assert_eq!(parse_op(&[]), Err(EINVAL));
        assert_eq!(parse_op(&[0x01, 0x01]), Err(EINVAL));
        assert_eq!(parse_op(&[0x03; 8]), Err(EINVAL));
    }

    #[test]
    fn breakpoints_match_their_stops_only() {
        for kind in ALL_KINDS {
            assert!(!Breakpoint::Cont.matches(kind));
            assert_eq!(
                Breakpoint::SingleStep.matches(kind),
                kind == StopKind::SingleStep
            );
            assert_eq!(
                Breakpoint::Syscall.matches(kind),
                matches!(kind, StopKind::PreSyscall | StopKind::PostSyscall)
            );
            assert_eq!(Breakpoint::Signal.matches(kind), kind == StopKind::Signal);
        }
    }

    #[test]
    fn ops_set_their_breakpoints() {
        assert_eq!(Op::Cont.breakpoint(), Some(Breakpoint::Cont));
        assert_eq!(Op::SingleStep.breakpoint(), Some(Breakpoint::SingleStep));
        assert_eq!(Op::Syscall.breakpoint(), Some(Breakpoint::Syscall));
        assert_eq!(Op::Signal.breakpoint(), Some(Breakpoint::Signal));
        assert_eq!(Op::Wait.breakpoint(), None);
    }

    #[test]
    fn kinds_have_their_causes() {
        let causes: [u64; 4] = ALL_KINDS.map(StopKind::cause);
        assert_eq!(causes, [0x1, 0x2, 0x4, 0x8]);
    }
}
