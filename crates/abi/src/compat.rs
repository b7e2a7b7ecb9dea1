//! Bare-metal only: proves at compile time that this crate's register and
//! event layouts are `redox_syscall` 0.2.16's, and converts between the two.

use core::mem::{offset_of, size_of};

use crate::{EnvRegisters, FloatRegisters, IntRegisters, PtraceEvent};

/// Asserts that a field sits at the same offset in ours and in theirs.
macro_rules! same_offsets {
    ($ours:ty, $theirs:ty, [$($field:ident),* $(,)?]) => {
        $(const _: () = assert!(offset_of!($ours, $field) == offset_of!($theirs, $field));)*
    };
}

const _: () = assert!(size_of::<IntRegisters>() == size_of::<syscall::IntRegisters>());
const _: () = assert!(size_of::<FloatRegisters>() == size_of::<syscall::FloatRegisters>());
const _: () = assert!(size_of::<EnvRegisters>() == size_of::<syscall::EnvRegisters>());
const _: () = assert!(size_of::<PtraceEvent>() == size_of::<syscall::PtraceEvent>());

same_offsets!(
    IntRegisters,
    syscall::IntRegisters,
    [
        r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, rip, cs, rflags,
        rsp, ss, fs,
    ]
);
same_offsets!(
    FloatRegisters,
    syscall::FloatRegisters,
    [fcw, fsw, ftw, _reserved, fop, fip, fdp, mxcsr, mxcsr_mask, st_space, xmm_space,]
);
same_offsets!(EnvRegisters, syscall::EnvRegisters, [fsbase, gsbase]);
same_offsets!(PtraceEvent, syscall::PtraceEvent, [cause, a, b, c, d, e, f]);

/// Converts field by field between two structs with the same field names.
macro_rules! convert {
    ($from:ty => $to:ty, [$($field:ident),* $(,)?]) => {
        impl From<$from> for $to {
            fn from(value: $from) -> Self {
                Self { $($field: value.$field),* }
            }
        }
    };
}

convert!(IntRegisters => syscall::IntRegisters, [
    r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, rip, cs, rflags,
    rsp, ss, fs,
]);
convert!(syscall::IntRegisters => IntRegisters, [
    r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, rip, cs, rflags,
    rsp, ss, fs,
]);
convert!(FloatRegisters => syscall::FloatRegisters, [
    fcw, fsw, ftw, _reserved, fop, fip, fdp, mxcsr, mxcsr_mask, st_space, xmm_space,
]);
convert!(syscall::FloatRegisters => FloatRegisters, [
    fcw, fsw, ftw, _reserved, fop, fip, fdp, mxcsr, mxcsr_mask, st_space, xmm_space,
]);
convert!(EnvRegisters => syscall::EnvRegisters, [fsbase, gsbase]);
convert!(syscall::EnvRegisters => EnvRegisters, [fsbase, gsbase]);

impl From<syscall::PtraceEvent> for PtraceEvent {
    fn from(event: syscall::PtraceEvent) -> Self {
        PtraceEvent {
            cause: event.cause.bits(),
            a: event.a,
            b: event.b,
            c: event.c,
            d: event.d,
            e: event.e,
            f: event.f,
        }
    }
}

impl From<PtraceEvent> for syscall::PtraceEvent {
    /// Cause bits `PtraceFlags` does not know are dropped.
    fn from(event: PtraceEvent) -> Self {
        syscall::PtraceEvent {
            cause: syscall::PtraceFlags::from_bits_truncate(event.cause),
            a: event.a,
            b: event.b,
            c: event.c,
            d: event.d,
            e: event.e,
            f: event.f,
        }
    }
}
