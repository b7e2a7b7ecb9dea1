//! The test kit every user-space suite builds on (on top of `rt::test`'s
//! tally and `Ctx`): one place for the fixtures the suites used to carry
//! each in its own copy.
//!
//! - [`timeout`]: the one timeout policy. Every check runs in its own forked
//!   child under a deadline ([`timed`], [`run`], [`run_for`]); the kit's
//!   own waits and polls give up after [`WAIT_MS`].
//! - [`fixture`]: children that are always killed and reaped ([`Kid`]),
//!   pipe gates ([`Gate`]).
//! - [`gated`]: spawn-and-attach: a child that waits on a gate until the
//!   tracer has attached ([`start`], [`Tracee`]).
//! - [`stops`]: a child that stops itself and the contract's attach
//!   handshake; stop, event and syscall-trace checks.
//! - [`status`]: `proc:<pid>/status` lines and their fields.
//! - [`wait`]: wait-status checks (exited, killed, stopped).
//! - [`trace`]: `trace` handle operations, `stop` and `regs/int` records,
//!   open checks, ids and signal dispositions.
//! - [`raw`]: raw system calls.
//! - [`memory`]: `sys:memory` baselines and leak checks.
#![no_std]

extern crate alloc;

pub mod fixture;
pub mod gated;
pub mod memory;
pub mod raw;
pub mod status;
pub mod stops;
pub mod timeout;
pub mod trace;
pub mod wait;

pub use fixture::*;
pub use gated::*;
pub use memory::*;
pub use raw::*;
pub use status::*;
pub use stops::*;
pub use timeout::*;
pub use trace::*;
pub use wait::*;

/// What every check returns: `Ok` or the reason it failed.
pub type Check = Result<(), alloc::string::String>;
