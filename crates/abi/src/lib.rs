//! The tracing ABI (contract v1) shared by the kernel and user programs.
//!
//! `redox_syscall` 0.2.16 is the base ABI. This crate adds what that crate
//! lacks, or what must also exist when building for the host (where
//! `redox_syscall` does not define the register structs):
//!
//! - the one-byte operations written to `proc:<pid>/trace` and the stop and
//!   event cause values ([`ops`]);
//! - the records read from `proc:<pid>/trace` and `proc:<pid>/stop`
//!   ([`PtraceEvent`], [`StopInfo`]);
//! - the register file layouts of `proc:<pid>/regs/*` ([`IntRegisters`],
//!   [`FloatRegisters`], [`EnvRegisters`]), byte-for-byte those of
//!   `redox_syscall` 0.2.16 on x86_64 (checked at compile time on bare metal);
//! - the user address space bound ([`USER_END`]).
//!
//! Every struct converts to and from its exact little-endian byte image with
//! safe code (`to_bytes` / `from_bytes`), so no caller needs `unsafe` to move
//! one across the system-call boundary.

#![no_std]
#![forbid(unsafe_code)]

pub mod addr;
mod bytes;
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
mod compat;
pub mod event;
pub mod ops;
pub mod regs;

pub use addr::{is_canonical_user, USER_END};
pub use event::{PtraceEvent, StopInfo};
pub use ops::*;
pub use regs::{EnvRegisters, FloatRegisters, IntRegisters};
