//! Resource limits: `/bin/test-limits` floods every documented limit (open
//! files, pipe bytes, `event:` registrations, contexts per user, nested
//! signal frames, `fexec` arguments) and fills the whole kernel heap, on
//! both machines: the kernel must refuse with the documented errno, stay
//! up, and get every byte and frame back.

use qemu_tests::Boot;

fn run_limits(machine: &str, memory: &str) {
    let out = Boot::new(&format!("test-limits-{machine}"), "init=/bin/test-limits")
        .machine(machine)
        .memory(memory)
        .run();
    out.expect_success().expect_absent(" ... FAILED");
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
fn limits_on_microvm_128m() {
    run_limits("microvm", "128M");
}

#[test]
fn limits_on_q35_512m() {
    run_limits("q35", "512M");
}
