//! Conformance tests for the tracing contract v1.2, sections 1, 2 and 6:
//! the stricter permission rule (real and effective ids, the "changed ids
//! since the last fexec" mark), session ownership (a session ends when its
//! opener exits, copies of its handle then fail `EBADF`; a tracee never
//! drives its own session), and the cap on unread events of every kind.
//! Checks named `matrix_case_N_...` cover case N of the security matrix.
//!
//! Every check runs in its own forked child with a deadline (`testkit`'s
//! timeout policy). `test-ptrace-v12 NAME...` runs only the named
//! checks. Two helper modes serve checks that need a program to `fexec`:
//! `--park READY_FD GATE_FD` (writes one byte to `READY_FD`, then waits
//! for end of file on `GATE_FD` and exits 0) and `--exit CODE`.
#![no_std]
#![no_main]

extern crate alloc;

mod cap;
mod owner;
mod perm;

use rt::Tests;
use testkit::Entry;

rt::entry!(main);

/// This program, for checks that `fexec` it in a helper mode.
pub const SELF: &str = "/bin/test-ptrace-v12";

const TESTS: &[Entry] = &[
    // Section 1: who may open.
    ("perm_real_uid_differs", perm::perm_real_uid_differs, 10_000),
    ("perm_real_gid_differs", perm::perm_real_gid_differs, 10_000),
    (
        "matrix_case_3_s2b_changed_ids_without_fexec",
        perm::matrix_case_3_s2b_changed_ids_without_fexec,
        10_000,
    ),
    (
        "perm_fexec_clears_mark",
        perm::perm_fexec_clears_mark,
        10_000,
    ),
    (
        "perm_clone_child_of_marked_process",
        perm::perm_clone_child_of_marked_process,
        10_000,
    ),
    (
        "matrix_case_26_gid_zero_grants_nothing",
        perm::matrix_case_26_gid_zero_grants_nothing,
        10_000,
    ),
    (
        "matrix_case_15_cred_drop_race_never_old_creds",
        perm::matrix_case_15_cred_drop_race_never_old_creds,
        30_000,
    ),
    (
        "matrix_case_25_tracer_drop_keeps_only_opened_handles",
        perm::matrix_case_25_tracer_drop_keeps_only_opened_handles,
        10_000,
    ),
    (
        "matrix_case_13_tracee_cannot_create_a_session",
        perm::matrix_case_13_tracee_cannot_create_a_session,
        10_000,
    ),
    // Section 2: session ownership.
    (
        "clone_files_tracer_fexec_then_exit",
        owner::clone_files_tracer_fexec_then_exit,
        20_000,
    ),
    (
        "clone_files_tracee_fexec_then_tracer_exit",
        owner::clone_files_tracee_fexec_then_tracer_exit,
        20_000,
    ),
    (
        "inherited_copy_after_opener_exit_ebadf",
        owner::inherited_copy_after_opener_exit_ebadf,
        20_000,
    ),
    (
        "tracee_writes_own_session_eperm",
        owner::tracee_writes_own_session_eperm,
        20_000,
    ),
    // Section 6: the event cap.
    (
        "int3_flood_stays_under_cap",
        cap::int3_flood_stays_under_cap,
        120_000,
    ),
    (
        "signal_flood_waits_at_cap",
        cap::signal_flood_waits_at_cap,
        120_000,
    ),
];

/// `--park READY_FD GATE_FD` and `--exit CODE`; `None` for a test run.
fn helper_mode(args: &[&str]) -> Option<i32> {
    let number = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok());
    match args.get(1).copied() {
        Some("--park") => {
            let (Some(ready), Some(gate)) = (number(2), number(3)) else {
                return Some(2);
            };
            Some(
                testkit::Park {
                    ready_wr: ready,
                    gate_rd: gate,
                }
                .park(),
            )
        }
        Some("--exit") => Some(number(2).unwrap_or(2) as i32),
        _ => None,
    }
}

fn main(args: &[&str]) -> i32 {
    if let Some(code) = helper_mode(args) {
        return code;
    }
    let mut t = Tests::new();
    testkit::run_table(&mut t, TESTS, &args[1.min(args.len())..]);
    t.finish()
}
