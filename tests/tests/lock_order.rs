//! The lock-order checker (`src/sync.rs`) is active in the kernel the tests
//! boot: the self-test `lock-order` takes two locks against the order, and
//! the kernel must panic naming both. If the checker were removed the
//! self-test would return and report a failure instead.

use qemu_tests::{status, Boot};

#[test]
fn taking_locks_out_of_order_panics_naming_both() {
    Boot::new("lock-order", "test=lock-order")
        .run()
        .expect_status(status::PANIC)
        .expect_contains(
            "KERNEL PANIC: lock order violated: taking `self-test outer lock` (level 15) \
             while holding `self-test inner lock` (level 16), at src/sync.rs:",
        )
        .expect_absent("test lock-order ... FAILED");
}
