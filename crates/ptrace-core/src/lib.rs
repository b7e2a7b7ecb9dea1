//! Pure logic of the kernel's ptrace subsystem (tracing contract v1.2).
//!
//! Nothing here touches a CPU, a scheduler or a lock: the kernel keeps one
//! [`session::Session`] per traced process inside a spin mutex, next to two
//! wait queues (the tracer waits until its breakpoint is reached or an event
//! arrives; the tracee waits at a stop until the tracer resumes it), and
//! calls into this crate while holding the mutex. Every function returns what
//! the kernel must do next (wake whom, release which clone children, return
//! what or keep waiting) instead of doing it, so the whole model is tested on
//! the host.
//!
//! - [`path`]: parsing `proc:` paths and sibling names;
//! - [`perm`]: the checks made when a `proc:` file is opened;
//! - [`op`]: the one-byte operations and the stops they ask for;
//! - [`regs`]: register-write, memory-range and seek rules;
//! - [`session`]: the tracing session state machine;
//! - [`status`]: the text of `proc:<pid>/status`;
//! - [`errno`]: the error numbers used (those of `redox_syscall`).
//!
//! No function panics on any input.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod errno;
pub mod op;
pub mod path;
pub mod perm;
pub mod regs;
pub mod session;
pub mod status;

pub use errno::Errno;
pub use path::{Pid, ProcFile};
