//! The futex suite (`user/test-futex`) run as pid 1, on `microvm` with
//! 128 MiB and on `q35` with 512 MiB.

use qemu_tests::Boot;

fn run_suite(boot: Boot) {
    let out = boot.run();
    out.expect_success().expect_absent(" ... FAILED");
    let passed_none = out.serial.lines().any(|l| l.starts_with("0 passed"));
    let summary = out.serial.lines().any(|l| l.contains(" passed, 0 failed"));
    if passed_none || !summary {
        out.expect_line("a summary line with tests passed and none failed");
    }
}

#[test]
fn futex_ops_errors_locks_stress_tracing_and_kill() {
    run_suite(Boot::new("test-futex", "init=/bin/test-futex"));
}

#[test]
fn futex_suite_on_q35() {
    run_suite(
        Boot::new("test-futex-q35", "init=/bin/test-futex")
            .machine("q35")
            .memory("512M"),
    );
}
