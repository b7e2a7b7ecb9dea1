//! Conformance tests for attaching and detaching: who may open `proc:`
//! files and the errors at open (contract section 1), the attach stop and
//! detach/death (section 2), operation validation and blocking/non-blocking
//! handles (section 3), and robustness (section 6).
//!
//! Every check runs in its own forked child with a deadline, so a check
//! that changes ids or handlers, or that the kernel wedges, cannot disturb
//! the others. `test-ptrace-attach NAME...` runs only the named checks.
#![no_std]
#![no_main]

extern crate alloc;

mod life;
mod open;
mod ops;
mod stress;

use rt::Tests;
use testkit::Entry;

rt::entry!(main);

const TESTS: &[Entry] = &[
    // Attaching (sections 1 and 2).
    ("attach_stops_tracee", open::attach_stops_tracee, 20_000),
    ("attach_stop_info", open::attach_stop_info, 10_000),
    ("wait_after_attach", open::wait_after_attach, 10_000),
    ("second_tracer_ebusy", open::second_tracer_ebusy, 10_000),
    ("eperm_other_user", open::eperm_other_user, 10_000),
    (
        "eperm_same_user_non_ancestor",
        open::eperm_same_user_non_ancestor,
        10_000,
    ),
    ("eperm_gid_zero", open::eperm_gid_zero, 10_000),
    ("eperm_trace_self", open::eperm_trace_self, 10_000),
    (
        "ancestor_may_open_files",
        open::ancestor_may_open_files,
        10_000,
    ),
    (
        "orphaned_tracee_stays_traceable",
        open::orphaned_tracee_stays_traceable,
        10_000,
    ),
    ("esrch_missing_pid", open::esrch_missing_pid, 10_000),
    ("esrch_exited_unreaped", open::esrch_exited_unreaped, 10_000),
    ("enoent_unknown_file", open::enoent_unknown_file, 10_000),
    ("einval_malformed_path", open::einval_malformed_path, 10_000),
    (
        "einval_trace_access_mode",
        open::einval_trace_access_mode,
        10_000,
    ),
    ("open_error_precedence", open::open_error_precedence, 10_000),
    (
        "dup_rechecks_credentials",
        open::dup_rechecks_credentials,
        10_000,
    ),
    // Operations (section 3).
    (
        "invalid_ops_change_nothing",
        ops::invalid_ops_change_nothing,
        10_000,
    ),
    ("dup_sibling_and_fpath", ops::dup_sibling_and_fpath, 10_000),
    (
        "blocking_write_reaches_breakpoint",
        ops::blocking_write_reaches_breakpoint,
        10_000,
    ),
    (
        "blocking_write_returns_0_on_events",
        ops::blocking_write_returns_0_on_events,
        20_000,
    ),
    ("order_rule", ops::order_rule, 15_000),
    (
        "read_short_buffer_einval",
        ops::read_short_buffer_einval,
        10_000,
    ),
    ("read_whole_records", ops::read_whole_records, 10_000),
    (
        "signal_interrupts_blocking_write",
        ops::signal_interrupts_blocking_write,
        10_000,
    ),
    ("nonblocking_ops", ops::nonblocking_ops, 10_000),
    ("event_wakes_on_reach", ops::event_wakes_on_reach, 10_000),
    ("event_wakes_on_event", ops::event_wakes_on_event, 10_000),
    ("event_ready_at_once", ops::event_ready_at_once, 10_000),
    // Exit and detach (section 2).
    ("exit_event_and_reap", life::exit_event_and_reap, 10_000),
    ("close_detaches", life::close_detaches, 10_000),
    ("excl_close_kills", life::excl_close_kills, 10_000),
    ("tracer_death_releases", life::tracer_death_releases, 10_000),
    (
        "close_releases_clone_child",
        life::close_releases_clone_child,
        10_000,
    ),
    (
        "write_releases_clone_child",
        life::write_releases_clone_child,
        10_000,
    ),
    ("sigkill_held_tracee", life::sigkill_held_tracee, 10_000),
    (
        "sigcont_does_not_resume",
        life::sigcont_does_not_resume,
        20_000,
    ),
    (
        "sigcont_job_stopped_held",
        life::sigcont_job_stopped_held,
        10_000,
    ),
    (
        "waitpid_ignores_ptrace_stop",
        life::waitpid_ignores_ptrace_stop,
        10_000,
    ),
    // Robustness (section 6).
    (
        "attach_detach_cycles_no_leak",
        stress::attach_detach_cycles_no_leak,
        60_000,
    ),
    ("fuzz_no_panic", stress::fuzz_no_panic, 60_000),
];

fn main(args: &[&str]) -> i32 {
    let mut t = Tests::new();
    testkit::run_table(&mut t, TESTS, &args[1.min(args.len())..]);
    t.finish()
}
