//! The ptrace conformance programs, each run as pid 1: every clause of the
//! contract has a group of checks in one of them.

use qemu_tests::Boot;

fn run_suite(program: &str) {
    let out = Boot::new(program, &format!("init=/bin/{program}")).run();
    out.expect_success().expect_absent(" ... FAILED");
    let passed_none = out.serial.lines().any(|l| l.starts_with("0 passed"));
    let summary = out.serial.lines().any(|l| l.contains(" passed, 0 failed"));
    if passed_none || !summary {
        out.expect_line("a summary line with tests passed and none failed");
    }
}

#[test]
fn handshake_smoke() {
    let out = Boot::new("test-ptrace-smoke", "init=/bin/test-ptrace-smoke").run();
    out.expect_success()
        .expect_line("stopped: true")
        .expect_line("event cause=0x8 a=18 b=0")
        .expect_contains("stop cause=2 nr=37 ret=0x0")
        .expect_line("exited status=0x300")
        .expect_line("reaped: exited 3");
}

#[test]
fn attach_permissions_ops_and_detach() {
    run_suite("test-ptrace-attach");
}

#[test]
fn syscall_signal_breakpoint_clone_and_exit_stops() {
    run_suite("test-ptrace-stops");
}

#[test]
fn single_stepping() {
    run_suite("test-ptrace-step");
}

#[test]
fn registers_and_memory() {
    run_suite("test-ptrace-regs");
}
