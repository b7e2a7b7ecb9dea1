//! Processes and user mode: each in-guest test program runs as pid 1 and
//! must report every check passed; pid 1's exit status becomes the run's.

use qemu_tests::{status, Boot};

/// Runs `/bin/PROGRAM` as pid 1 and expects `N passed, 0 failed`.
fn run_suite(program: &str, machine: &str) {
    let out = Boot::new(
        &format!("{program}-{machine}"),
        &format!("init=/bin/{program}"),
    )
    .machine(machine)
    .run();
    out.expect_success();
    if out.serial.lines().any(|l| l.contains(" ... FAILED")) {
        out.expect_absent(" ... FAILED");
    }
    let summary = out
        .serial
        .lines()
        .find(|l| l.ends_with(" failed") && l.contains(" passed, "))
        .unwrap_or("");
    if !summary.ends_with(" 0 failed") || summary.starts_with("0 passed") {
        out.expect_line("at least one test passed and none failed");
    }
}

#[test]
fn process_calls() {
    run_suite("test-proc", "microvm");
}

#[test]
fn signals() {
    run_suite("test-signal", "microvm");
}

#[test]
fn files_pipes_events() {
    run_suite("test-fs", "microvm");
}

#[test]
fn time_calls() {
    run_suite("test-time", "microvm");
}

#[test]
fn fpu_and_sse_state_per_context() {
    run_suite("test-fpu", "microvm");
}

/// Hostile input: self-watching event queues, bad handlers, fork until
/// refused, huge blocked reads, a tracer that never reads, x87 faults.
#[test]
fn kernel_survives_hostile_input() {
    run_suite("test-robustness", "microvm");
}

#[test]
fn process_calls_on_q35() {
    run_suite("test-proc", "q35");
}

/// A program added as a crate under user/ (nothing else changed) is in
/// /bin and runs as pid 1 with its arguments; its exit status (here the
/// argument count, 2) fails the run as a non-zero status must.
#[test]
fn new_program_runs_as_init_with_arguments() {
    let out = Boot::new("hello", "init=/bin/hello one two").run();
    out.expect_status(status::FAILURE)
        .expect_contains("hello from /bin/hello (pid 1)")
        .expect_line("arg 1: one")
        .expect_line("arg 2: two")
        .expect_line("init exited with status 2");
}

#[test]
fn missing_init_program_fails_cleanly() {
    Boot::new("missing-init", "init=/bin/no-such-program")
        .run()
        .expect_status(status::FAILURE)
        .expect_contains("cannot start init \"/bin/no-such-program\"");
}

/// The shell runs a command given with -c, through init; the command's
/// status (1, its argument count) travels back to pid 1's.
#[test]
fn shell_runs_a_command() {
    Boot::new("shell-c", "init=/bin/init -c hello from-shell")
        .run()
        .expect_status(status::FAILURE)
        .expect_contains("hello from /bin/hello (pid 3)")
        .expect_line("arg 1: from-shell")
        .expect_line("[exit 1]")
        .expect_line("init: /bin/sh exited 1");
}

#[test]
fn shell_reports_success_as_zero() {
    Boot::new("shell-ok", "init=/bin/init -c hello")
        .run()
        .expect_success()
        .expect_line("init: /bin/sh exited 0");
}
