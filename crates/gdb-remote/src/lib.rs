//! The GDB remote serial protocol, with no I/O: packet framing
//! ([`packet`]), requests ([`request`]), replies ([`reply`]), signal
//! numbering ([`signal`]), hex ([`hex`]) and the amd64 register set with
//! its target description ([`amd64`]).
//!
//! A stub feeds received bytes to a [`packet::Decoder`], parses each packet
//! with [`request::Request::parse`], and frames its answers with
//! [`packet::frame`]. Nothing here panics on malformed input.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod amd64;
pub mod hex;
pub mod packet;
pub mod reply;
pub mod request;
pub mod signal;

pub use packet::{frame, Decoder, Input, Invalid};
pub use request::{Malformed, Request};
