//! Tests for time syscalls: clock_gettime, nanosleep, sched_yield, and their EFAULT handling.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;

use rt::test::{expect_eq, expect_errno, Ctx};
use rt::{ensure, Tests};
use syscall::data::TimeSpec;
use syscall::error::EFAULT;
use syscall::flag::CLOCK_MONOTONIC;
use syscall::number::{SYS_CLOCK_GETTIME, SYS_NANOSLEEP};

rt::entry!(main);

const KERNEL_ADDR: usize = 0xffff_8000_0000_0000;

fn main(_args: &[&str]) -> i32 {
    let mut t = Tests::new();
    testkit::run(&mut t, "clock_gettime_monotonic_valid", clock_valid);
    testkit::run(&mut t, "clock_monotonic_never_goes_back", clock_monotonic);
    testkit::run(&mut t, "nanosleep_20ms_advances_clock", sleep_20ms);
    testkit::run(&mut t, "nanosleep_zero_returns", sleep_zero);
    testkit::run(&mut t, "sched_yield_returns_0", yield_zero);
    testkit::run(&mut t, "nanosleep_bad_pointer_efault", sleep_bad_pointer);
    testkit::run(
        &mut t,
        "clock_gettime_bad_pointer_efault",
        clock_bad_pointer,
    );
    t.finish()
}

fn now() -> Result<TimeSpec, String> {
    let mut ts = TimeSpec::default();
    syscall::clock_gettime(CLOCK_MONOTONIC, &mut ts).ctx("clock_gettime")?;
    Ok(ts)
}

fn nanos(ts: &TimeSpec) -> i128 {
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

fn clock_valid() -> Result<(), String> {
    let ts = now()?;
    ensure!(
        ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec),
        "bad timespec {{ tv_sec: {}, tv_nsec: {} }}",
        ts.tv_sec,
        ts.tv_nsec
    );
    Ok(())
}

fn clock_monotonic() -> Result<(), String> {
    let mut prev = nanos(&now()?);
    let first = prev;
    for i in 0..2000 {
        let cur = nanos(&now()?);
        ensure!(
            cur >= prev,
            "reading {} went back from {} ns to {} ns",
            i,
            prev,
            cur
        );
        prev = cur;
        if i % 100 == 0 {
            let _ = syscall::sched_yield();
        }
    }
    // 2000 syscalls and 20 yields cannot take no time at all unless the clock
    // is stuck; allow a coarse clock by sleeping once more if needed.
    if prev == first {
        rt::process::sleep_ms(30).ctx("nanosleep")?;
        let later = nanos(&now()?);
        ensure!(
            later > first,
            "clock stuck at {} ns across a 30 ms sleep",
            first
        );
    }
    Ok(())
}

fn sleep_20ms() -> Result<(), String> {
    let req = TimeSpec {
        tv_sec: 0,
        tv_nsec: 20_000_000,
    };
    let mut rem = TimeSpec::default();
    let before = now()?;
    let r = syscall::nanosleep(&req, &mut rem);
    let after = now()?;
    expect_eq("nanosleep return", r.ctx("nanosleep")?, 0)?;
    let elapsed = nanos(&after) - nanos(&before);
    ensure!(
        elapsed >= 20_000_000,
        "clock advanced {} ns across a 20 ms sleep",
        elapsed
    );
    ensure!(elapsed < 2_000_000_000, "a 20 ms sleep took {} ns", elapsed);
    Ok(())
}

fn sleep_zero() -> Result<(), String> {
    let req = TimeSpec::default();
    let mut rem = TimeSpec::default();
    let before = now()?;
    expect_eq(
        "nanosleep(0) return",
        syscall::nanosleep(&req, &mut rem).ctx("nanosleep")?,
        0,
    )?;
    let elapsed = nanos(&now()?) - nanos(&before);
    ensure!(elapsed < 1_000_000_000, "nanosleep(0) took {} ns", elapsed);
    Ok(())
}

fn yield_zero() -> Result<(), String> {
    for i in 0..10 {
        let r = syscall::sched_yield().ctx("sched_yield")?;
        ensure!(r == 0, "sched_yield call {} returned {}", i, r);
    }
    Ok(())
}

fn sleep_bad_pointer() -> Result<(), String> {
    let mut rem = TimeSpec::default();
    let rem_ptr = &mut rem as *mut TimeSpec as usize;
    // SAFETY: the kernel must reject the bad request pointer without touching
    // memory; `rem_ptr` points at a live TimeSpec.
    let bad_req = unsafe { syscall::syscall2(SYS_NANOSLEEP, 0x1, rem_ptr) };
    // SAFETY: as above, with a kernel-half request pointer.
    let kernel_req = unsafe { syscall::syscall2(SYS_NANOSLEEP, KERNEL_ADDR, rem_ptr) };
    expect_errno("nanosleep(req = 0x1)", bad_req, EFAULT)?;
    expect_errno("nanosleep(req = kernel address)", kernel_req, EFAULT)
}

fn clock_bad_pointer() -> Result<(), String> {
    // SAFETY: the kernel must reject the bad output pointer without writing.
    let low = unsafe { syscall::syscall2(SYS_CLOCK_GETTIME, CLOCK_MONOTONIC, 0x1) };
    // SAFETY: as above, with a kernel-half pointer.
    let kernel = unsafe { syscall::syscall2(SYS_CLOCK_GETTIME, CLOCK_MONOTONIC, KERNEL_ADDR) };
    expect_errno("clock_gettime(ts = 0x1)", low, EFAULT)?;
    expect_errno("clock_gettime(ts = kernel address)", kernel, EFAULT)
}
