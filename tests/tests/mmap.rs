//! Memory mappings (`fmap`, `funmap`, `mprotect`, `proc:<pid>/maps`): the
//! guest suite `test-mmap`, run as pid 1.

use qemu_tests::Boot;

#[test]
fn mappings_suite() {
    let out = Boot::new("test-mmap", "init=/bin/test-mmap").run();
    out.expect_success().expect_absent(" ... FAILED");
    let passed_none = out.serial.lines().any(|l| l.starts_with("0 passed"));
    let summary = out.serial.lines().any(|l| l.contains(" passed, 0 failed"));
    if passed_none || !summary {
        out.expect_line("a summary line with tests passed and none failed");
    }
}
