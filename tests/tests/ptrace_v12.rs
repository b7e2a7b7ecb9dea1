//! Contract v1.2, sections 1, 2 and 6: the permission rule, session
//! ownership and the event cap (`user/tests/test-ptrace-v12`, run as pid 1).

use qemu_tests::Boot;

#[test]
fn ptrace_v12_permission_ownership_and_event_cap() {
    let program = "test-ptrace-v12";
    let out = Boot::new(program, &format!("init=/bin/{program}")).run();
    out.expect_success().expect_absent(" ... FAILED");
    let passed_none = out.serial.lines().any(|l| l.starts_with("0 passed"));
    let summary = out.serial.lines().any(|l| l.contains(" passed, 0 failed"));
    if passed_none || !summary {
        out.expect_line("a summary line with tests passed and none failed");
    }
}
