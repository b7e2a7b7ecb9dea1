//! Hardening tests for the tracing interface: death at every stop (the
//! tracer killed, with and without `O_EXCL`, or `SIGKILL` to the held
//! process, for each stop kind), and the security matrix cases that no
//! other program covers (`matrix_case_N_...`; `docs/security.md` maps
//! every case to its test).
//!
//! Must run as pid 1 (`init=/bin/test-ptrace-death`): the death cases reap
//! the tracees their killed tracers leave behind. The matrix checks run each
//! in its own forked child with a deadline. `test-ptrace-death NAME...`
//! runs only the named checks.
#![no_std]
#![no_main]

extern crate alloc;

mod death;
mod matrix;

use rt::Tests;

rt::entry!(main);

fn main(args: &[&str]) -> i32 {
    if args.len() == 3 && args[1] == "--exec-loop" {
        return matrix::exec_loop(args[2]);
    }
    let only = &args[1.min(args.len())..];
    let wanted = |name: &str| only.is_empty() || only.contains(&name);
    let mut t = Tests::new();
    // Warm-up: the first case once more without the leak check, so that
    // lazily grown kernel tables (our descriptor table, the scheduler's)
    // reach their steady size before the first baseline.
    t.check(
        "death_warm_up_without_leak_check",
        death::run_case(death::Stop::Attach, death::Death::Tracer, false),
    );
    for &(name, stop, how) in death::CASES {
        if wanted(name) {
            t.check(name, death::run_case(stop, how, true));
            testkit::reap_orphans();
        }
    }
    testkit::run_table(&mut t, matrix::TESTS, only);
    t.finish()
}
