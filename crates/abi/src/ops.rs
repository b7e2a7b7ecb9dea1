//! The one-byte operations written to `proc:<pid>/trace` (contract section 3)
//! and the `cause` values of stops and events (contract section 4).

/// Resume; stop again at nothing (run until an event, exit included).
pub const PTRACE_CONT: u8 = 0x01;
/// Resume for one user instruction (a `syscall` instruction counts as one).
pub const PTRACE_SINGLESTEP: u8 = 0x02;
/// Resume until the next syscall entry or exit.
pub const PTRACE_SYSCALL: u8 = 0x03;
/// Set nothing: wait for the breakpoint already set. Resumes the tracee only
/// from an event (`int3`) stop.
pub const PTRACE_WAIT: u8 = 0x04;
/// Resume until the next signal about to be delivered (any but `SIGKILL`).
pub const PTRACE_SIGNAL: u8 = 0x05;
/// OR'd into `CONT`, `SINGLESTEP`, `SYSCALL` or `SIGNAL`: *ignore* the stop
/// being resumed from (skip the syscall at an entry stop, discard the signal
/// at a signal stop).
pub const PTRACE_SYSEMU: u8 = 0x10;

/// Stop cause: syscall entry (`StopInfo::cause`).
pub const PTRACE_STOP_PRE_SYSCALL: u64 = 0x0000_0000_0000_0001;
/// Stop cause: syscall exit.
pub const PTRACE_STOP_POST_SYSCALL: u64 = 0x0000_0000_0000_0002;
/// Stop cause: after one single-stepped instruction.
pub const PTRACE_STOP_SINGLESTEP: u64 = 0x0000_0000_0000_0004;
/// Stop cause / event: a signal about to be delivered (event: `a` = signal,
/// `b` = handler).
pub const PTRACE_STOP_SIGNAL: u64 = 0x0000_0000_0000_0008;
/// Stop cause / event: the tracee executed `int3` (event: `a` = address of
/// the `int3` byte).
pub const PTRACE_STOP_BREAKPOINT: u64 = 0x0000_0000_0000_0010;
/// Event: the tracee exited (`a` = wait status).
pub const PTRACE_STOP_EXIT: u64 = 0x0000_0000_0000_0020;
/// Event: the tracee created a process or thread (`a` = child pid, `b` =
/// clone flags).
pub const PTRACE_EVENT_CLONE: u64 = 0x0000_0000_0000_0100;
