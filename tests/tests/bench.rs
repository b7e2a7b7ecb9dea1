//! `make bench`: runs the in-guest micro-benchmarks and prints their lines.
//! Ignored by default: numbers are measured, never asserted, so a slow
//! machine cannot fail a test.

use qemu_tests::Boot;

#[test]
#[ignore = "benchmarks run with `make bench`"]
fn guest_benchmarks() {
    let out = Boot::new("bench", "init=/bin/bench").timeout(600).run();
    out.expect_success();
    println!("\nguest benchmarks (guest time, CLOCK_MONOTONIC, under TCG):");
    for line in out.serial.lines().filter(|l| l.starts_with("bench ")) {
        println!("{line}");
    }
}
