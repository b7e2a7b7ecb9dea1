//! Boot foundation: the in-kernel self-tests on both machines and several
//! memory sizes, and deliberately broken boots that must be caught.

use qemu_tests::{status, Boot};

const SELF_TESTS: &[&str] = &["frames", "paging", "heap", "timer", "exception"];

#[test]
fn self_tests_pass_on_microvm() {
    Boot::new("selftest-microvm", "test=all")
        .run()
        .expect_success()
        .expect_tests_passed(SELF_TESTS)
        .expect_line("caught page fault at 0x1234, as expected");
}

#[test]
fn self_tests_pass_on_q35_with_1g() {
    Boot::new("selftest-q35-1g", "test=all")
        .machine("q35")
        .memory("1G")
        .run()
        .expect_success()
        .expect_tests_passed(SELF_TESTS);
}

#[test]
fn self_tests_pass_with_128m() {
    Boot::new("selftest-128m", "test=frames,paging,heap")
        .memory("128M")
        .run()
        .expect_success()
        .expect_tests_passed(&["frames", "paging", "heap"]);
}

#[test]
fn banner_shows_memory_and_timer_rate() {
    let out = Boot::new("banner", "test=heap").memory("512M").run();
    out.expect_success()
        .expect_contains("ptrace-kernel: 511 MiB RAM")
        .expect_contains("timer 100 Hz");
}

#[test]
fn kernel_page_fault_is_reported_and_fails_the_run() {
    Boot::new("kernel-pagefault", "test=kernel-pagefault")
        .run()
        .expect_status(status::KERNEL_FAULT)
        .expect_contains("KERNEL FAULT: page fault (vector 14)")
        .expect_contains("cr2 0x00000000deadb000")
        .expect_contains("rip 0xffffffff8");
}

#[test]
fn kernel_stack_overflow_hits_the_guard_page() {
    Boot::new("kernel-stack-overflow", "test=kernel-stack-overflow")
        .run()
        .expect_status(status::KERNEL_FAULT)
        .expect_contains("overflowing a kernel stack")
        .expect_contains("KERNEL FAULT: double fault (vector 8)");
}

#[test]
fn panic_is_reported_with_its_location() {
    Boot::new("panic", "test=panic")
        .run()
        .expect_status(status::PANIC)
        .expect_contains(
            "KERNEL PANIC: deliberate panic requested by test=panic at src/selftest.rs:",
        );
}

#[test]
fn hanging_kernel_is_killed_by_the_timeout() {
    Boot::new("hang", "test=hang")
        .timeout(8)
        .run()
        .expect_status(status::TIMEOUT);
}

#[test]
fn failing_self_test_fails_the_run() {
    Boot::new("unknown-test", "test=no-such-test")
        .run()
        .expect_status(status::FAILURE)
        .expect_line("test no-such-test ... FAILED: no such test")
        .expect_line("0 passed, 1 failed");
}

#[test]
fn unknown_options_warn_but_boot() {
    Boot::new("unknown-option", "frobnicate=7 log=loud test=heap")
        .run()
        .expect_success()
        .expect_contains("cmdline: ignoring unknown option \"frobnicate=7\"")
        .expect_contains("cmdline: unknown log level \"loud\"")
        .expect_tests_passed(&["heap"]);
}
