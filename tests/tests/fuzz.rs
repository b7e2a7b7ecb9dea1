//! The in-guest fuzzer (`user/fuzz`, see `docs/fuzzing.md`) with a fixed
//! seed and a bounded number of operations: the kernel neither panics,
//! faults nor hangs (QEMU's timeout), `sys:memory` is back to its baseline
//! once every session has ended and every child is reaped, and a fresh
//! trace session works afterwards.

use qemu_tests::Boot;

/// The seed and operation count `make test` runs. Measured under TCG: 100,000
/// operations took 5 to 13 s of guest time on a lightly loaded machine;
/// these 50,000 took 22 to 31 s with a load average of 7 on 2 cores.
const SEED: u64 = 20261202;
const OPS: u64 = 50_000;

#[test]
fn fuzz_fixed_seed_survives_and_leaks_nothing() {
    let out = Boot::new("fuzz", &format!("init=/bin/fuzz --seed {SEED} --ops {OPS}")).run();
    out.expect_success()
        .expect_contains(&format!("fuzz: seed={SEED} ops={OPS}"))
        .expect_contains("fuzz: memory before: ")
        .expect_contains("fuzz: memory after: ")
        .expect_absent(" ... FAILED")
        .expect_tests_passed(&[
            "memory after the run equals the baseline",
            "every operation kind ran",
            "a fresh trace session works after the run",
        ])
        .expect_line("3 passed, 0 failed");
}
