//! The security matrix cases that no other test program covers, each
//! named `matrix_case_N_...` after its number in `docs/security.md`.

use crate::harness::Check;

/// A named check and its deadline in milliseconds (the deadline catches
/// hangs only).
pub type Entry = (&'static str, fn() -> Check, u64);

pub const TESTS: &[Entry] = &[];
