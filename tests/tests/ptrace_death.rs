//! Death at every stop and the security matrix cases (`test-ptrace-death`,
//! run as pid 1): every check passes and the kernel powers off cleanly.

use qemu_tests::{Boot, Outcome};

fn expect_all_passed(out: &Outcome) {
    out.expect_success().expect_absent(" ... FAILED");
    let passed_none = out.serial.lines().any(|l| l.starts_with("0 passed"));
    let summary = out.serial.lines().any(|l| l.contains(" passed, 0 failed"));
    if passed_none || !summary {
        out.expect_line("a summary line with tests passed and none failed");
    }
}

#[test]
fn death_at_every_stop_and_security_matrix() {
    let out = Boot::new("test-ptrace-death", "init=/bin/test-ptrace-death").run();
    expect_all_passed(&out);
}

/// The same on the other machine, with more memory.
#[test]
fn death_and_matrix_on_q35_with_1g() {
    let out = Boot::new("test-ptrace-death-q35", "init=/bin/test-ptrace-death")
        .machine("q35")
        .memory("1G")
        .run();
    expect_all_passed(&out);
}
