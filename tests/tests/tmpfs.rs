//! The writable `/tmp` file system, the working directory and the umask:
//! `/bin/test-tmpfs` runs every call with its success and error cases,
//! the permission checks for a uid-1000 process, the size limits, and
//! checks that the kernel's memory is back at its baseline once
//! everything is deleted.

use qemu_tests::Boot;

fn run_tmpfs(machine: &str, memory: &str) {
    let out = Boot::new(&format!("test-tmpfs-{machine}"), "init=/bin/test-tmpfs")
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

/// The byte limit is an eighth of the heap: 2 MiB here.
#[test]
fn tmpfs_on_microvm_128m() {
    run_tmpfs("microvm", "128M");
}

/// 4 MiB here.
#[test]
fn tmpfs_on_q35_512m() {
    run_tmpfs("q35", "512M");
}
