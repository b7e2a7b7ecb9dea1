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

/// The same suites on the other machine, with more memory.
#[test]
fn suites_on_q35_with_1g() {
    for program in [
        "test-ptrace-attach",
        "test-ptrace-stops",
        "test-ptrace-step",
        "test-ptrace-regs",
    ] {
        let out = Boot::new(&format!("{program}-q35"), &format!("init=/bin/{program}"))
            .machine("q35")
            .memory("1G")
            .run();
        out.expect_success().expect_absent(" ... FAILED");
    }
}

/// A whole syscall suite (forks, threads, signals, fexec) traced by
/// `strace -f` still passes: tracing does not change what a program sees.
#[test]
fn suites_pass_under_strace_follow() {
    for program in ["test-proc", "test-signal"] {
        let out = Boot::new(
            &format!("strace-f-{program}"),
            &format!("init=/bin/strace -f /bin/{program}"),
        )
        .run();
        out.expect_success()
            .expect_absent(" ... FAILED")
            .expect_line("+++ exited with 0 +++");
        if !out.serial.lines().any(|l| l.ends_with(" passed, 0 failed")) {
            out.expect_line("N passed, 0 failed");
        }
    }
}
