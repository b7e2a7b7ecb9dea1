//! The records a tracer reads: [`PtraceEvent`] from `proc:<pid>/trace` and
//! [`StopInfo`] from `proc:<pid>/stop`.

use crate::bytes::{read_exact, ByteWriter};

/// One event record read from `proc:<pid>/trace` (56 bytes), laid out like
/// `redox_syscall`'s `PtraceEvent` (whose `cause` is a `PtraceFlags` over the
/// same `u64`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct PtraceEvent {
    /// `PTRACE_EVENT_CLONE`, `PTRACE_STOP_SIGNAL`, `PTRACE_STOP_BREAKPOINT`
    /// or `PTRACE_STOP_EXIT`.
    pub cause: u64,
    pub a: usize,
    pub b: usize,
    pub c: usize,
    pub d: usize,
    pub e: usize,
    pub f: usize,
}

impl PtraceEvent {
    /// Size of one record in bytes.
    pub const SIZE: usize = 56;

    /// An event with `cause`, `a` and `b` set and the other fields zero.
    pub const fn new(cause: u64, a: usize, b: usize) -> Self {
        PtraceEvent {
            cause,
            a,
            b,
            c: 0,
            d: 0,
            e: 0,
            f: 0,
        }
    }

    /// The record's byte image, as `read` on `trace` delivers it.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut image = [0; Self::SIZE];
        let mut out = ByteWriter::new(&mut image);
        out.u64(self.cause);
        for field in [self.a, self.b, self.c, self.d, self.e, self.f] {
            out.usize(field);
        }
        image
    }

    /// Parses one record; `None` unless `bytes` is exactly [`Self::SIZE`] long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        read_exact(bytes, Self::SIZE, |r| {
            Some(PtraceEvent {
                cause: r.u64()?,
                a: r.usize()?,
                b: r.usize()?,
                c: r.usize()?,
                d: r.usize()?,
                e: r.usize()?,
                f: r.usize()?,
            })
        })
    }
}

/// What the stop a tracee is held at is (96 bytes), read from
/// `proc:<pid>/stop`. Fields that do not apply to the stop are zero.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct StopInfo {
    /// `PTRACE_STOP_PRE_SYSCALL`, `_POST_SYSCALL`, `_SINGLESTEP`, `_SIGNAL`
    /// or `_BREAKPOINT`; `0` at the attach stop and when not held at a stop.
    pub cause: u64,
    /// Syscall stops: the syscall number.
    pub nr: u64,
    /// Syscall stops: the arguments.
    pub args: [u64; 6],
    /// Exit stops: the raw result (errors as `-errno`).
    pub ret: u64,
    /// Signal stops: the signal.
    pub signal: u64,
    /// Signal stops: `SIG_DFL` (0), `SIG_IGN` (1) or the handler's address.
    pub handler: u64,
    /// Every stop: the user `rip`.
    pub addr: u64,
}

impl StopInfo {
    /// Size of the record in bytes.
    pub const SIZE: usize = 96;

    /// The record's byte image, as `read` on `stop` delivers it.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut image = [0; Self::SIZE];
        let mut out = ByteWriter::new(&mut image);
        out.u64(self.cause);
        out.u64(self.nr);
        for arg in self.args {
            out.u64(arg);
        }
        out.u64(self.ret);
        out.u64(self.signal);
        out.u64(self.handler);
        out.u64(self.addr);
        image
    }

    /// Parses the record; `None` unless `bytes` is exactly [`Self::SIZE`] long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        read_exact(bytes, Self::SIZE, |r| {
            Some(StopInfo {
                cause: r.u64()?,
                nr: r.u64()?,
                args: [r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?],
                ret: r.u64()?,
                signal: r.u64()?,
                handler: r.u64()?,
                addr: r.u64()?,
            })
        })
    }
}

const _: () = assert!(core::mem::size_of::<PtraceEvent>() == PtraceEvent::SIZE);
const _: () = assert!(core::mem::size_of::<StopInfo>() == StopInfo::SIZE);
const _: () = assert!(core::mem::offset_of!(StopInfo, ret) == 64);
const _: () = assert!(core::mem::offset_of!(StopInfo, addr) == 88);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::*;

    #[test]
    fn event_image_is_cause_then_six_words() {
        let event = PtraceEvent {
            cause: PTRACE_EVENT_CLONE,
            a: 7,
            b: 0x100,
            c: 3,
            d: 4,
            e: 5,
            f: usize::MAX,
        };
        let image = event.to_bytes();
        assert_eq!(&image[0..8], &0x100u64.to_le_bytes());
        assert_eq!(&image[8..16], &7u64.to_le_bytes());
        assert_eq!(&image[48..56], &u64::MAX.to_le_bytes());
        assert_eq!(PtraceEvent::from_bytes(&image), Some(event));
    }

    #[test]
    fn event_from_bytes_needs_exactly_one_record() {
        let image = PtraceEvent::new(PTRACE_STOP_EXIT, 1, 2).to_bytes();
        assert_eq!(PtraceEvent::from_bytes(&image[..55]), None);
        let mut longer = [0u8; 57];
        longer[..56].copy_from_slice(&image);
        assert_eq!(PtraceEvent::from_bytes(&longer), None);
        assert_eq!(PtraceEvent::from_bytes(&[]), None);
    }

    #[test]
    fn new_event_zeroes_the_rest() {
        let event = PtraceEvent::new(PTRACE_STOP_SIGNAL, 10, 1);
        assert_eq!((event.c, event.d, event.e, event.f), (0, 0, 0, 0));
    }

    #[test]
    fn stop_info_image_follows_the_contract_layout() {
        let info = StopInfo {
            cause: PTRACE_STOP_POST_SYSCALL,
            nr: 37,
            args: [1, 2, 3, 4, 5, 6],
            ret: (-3i64) as u64,
            signal: 0,
            handler: 0,
            addr: 0x40_1000,
        };
        let image = info.to_bytes();
        assert_eq!(&image[0..8], &2u64.to_le_bytes());
        assert_eq!(&image[8..16], &37u64.to_le_bytes());
        assert_eq!(&image[16..24], &1u64.to_le_bytes());
        assert_eq!(&image[56..64], &6u64.to_le_bytes());
        assert_eq!(&image[64..72], &(-3i64).to_le_bytes());
        assert_eq!(&image[88..96], &0x40_1000u64.to_le_bytes());
        assert_eq!(StopInfo::from_bytes(&image), Some(info));
        assert_eq!(StopInfo::from_bytes(&image[..95]), None);
    }

    #[test]
    fn cause_values_match_redox_ptrace_flags() {
        assert_eq!(PTRACE_STOP_PRE_SYSCALL, 0x1);
        assert_eq!(PTRACE_STOP_POST_SYSCALL, 0x2);
        assert_eq!(PTRACE_STOP_SINGLESTEP, 0x4);
        assert_eq!(PTRACE_STOP_SIGNAL, 0x8);
        assert_eq!(PTRACE_STOP_BREAKPOINT, 0x10);
        assert_eq!(PTRACE_STOP_EXIT, 0x20);
        assert_eq!(PTRACE_EVENT_CLONE, 0x100);
    }
}
