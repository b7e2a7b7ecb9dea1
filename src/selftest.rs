//! In-kernel self-tests, chosen with `test=NAME,...` on the command line.
//! Each prints `test NAME ... ok` or `test NAME ... FAILED: why`, then a
//! `N passed, N failed` line. Some names deliberately break the boot
//! (`kernel-pagefault`, `panic`, `hang`) so the host harness can check that
//! failures are caught.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::probe;
use crate::memory::paging::{AddressSpace, UserAccess};
use crate::memory::{frame, heap, PAGE_SIZE};

type TestResult = Result<(), String>;

/// The faulting address of the last probe that faulted.
static LAST_PROBE_FAULT: AtomicU64 = AtomicU64::new(0);

pub fn note_probe_fault(cr2: u64) {
    LAST_PROBE_FAULT.store(cr2, Ordering::Relaxed);
}

/// A self-test: its name on the command line and its body.
type SelfTest = (&'static str, fn() -> TestResult);

const TESTS: &[SelfTest] = &[
    ("frames", frames),
    ("paging", paging),
    ("heap", heap_test),
    ("timer", timer),
    ("exception", exception),
    ("entry-traps", crate::arch::trap::selftest),
    ("kernel-pagefault", kernel_pagefault),
    ("panic", deliberate_panic),
    ("kernel-stack-overflow", kernel_stack_overflow),
    ("hang", hang),
    ("lock-order", crate::sync::selftest_break_order),
];

/// The tests `test=all` runs: every test that is meant to pass.
const ALL: &[&str] = &["frames", "paging", "heap", "timer", "exception"];

/// Runs the named tests; true when all passed.
pub fn run(names: &[String]) -> bool {
    let mut selected: Vec<&str> = Vec::new();
    for name in names {
        if name == "all" {
            selected.extend_from_slice(ALL);
        } else {
            selected.push(name);
        }
    }
    let (mut passed, mut failed) = (0, 0);
    for name in selected {
        let Some(&(_, test)) = TESTS.iter().find(|(n, _)| *n == name) else {
            crate::kprintln!("test {name} ... FAILED: no such test");
            failed += 1;
            continue;
        };
        match test() {
            Ok(()) => {
                crate::kprintln!("test {name} ... ok");
                passed += 1;
            }
            Err(why) => {
                crate::kprintln!("test {name} ... FAILED: {why}");
                failed += 1;
            }
        }
    }
    crate::kprintln!("{passed} passed, {failed} failed");
    failed == 0
}

fn ensure(cond: bool, why: impl FnOnce() -> String) -> TestResult {
    if cond {
        Ok(())
    } else {
        Err(why())
    }
}

fn frames() -> TestResult {
    let before = frame::free_count();
    let mut taken = Vec::new();
    for i in 0..256u64 {
        let f = frame::alloc().ok_or("out of frames")?;
        ensure(f.addr() % PAGE_SIZE == 0, || {
            format!("unaligned frame {:#x}", f.addr())
        })?;
        // SAFETY: the frame is ours until freed below.
        unsafe { f.as_ptr().cast::<u64>().write(i) };
        taken.push(f);
    }
    ensure(frame::free_count() == before - 256, || {
        format!(
            "free count {} after taking 256 of {}",
            frame::free_count(),
            before
        )
    })?;
    for (i, f) in taken.iter().enumerate() {
        // SAFETY: as above.
        let v = unsafe { f.as_ptr().cast::<u64>().read() };
        ensure(v == i as u64, || {
            format!("frame {:#x} holds {v}, wrote {i}", f.addr())
        })?;
    }
    let mut addrs: Vec<u64> = taken.iter().map(|f| f.addr()).collect();
    addrs.sort_unstable();
    addrs.dedup();
    ensure(addrs.len() == 256, || "a frame was handed out twice".into())?;
    for f in taken {
        // SAFETY: nothing refers to the frame any more.
        unsafe { frame::free(f) };
    }
    ensure(frame::free_count() == before, || {
        format!(
            "free count {} after freeing, was {}",
            frame::free_count(),
            before
        )
    })?;
    let z = frame::alloc_zeroed().ok_or("out of frames")?;
    // SAFETY: the frame is ours.
    let all_zero = unsafe { core::slice::from_raw_parts(z.as_ptr(), 4096) }
        .iter()
        .all(|&b| b == 0);
    // SAFETY: done with it.
    unsafe { frame::free(z) };
    ensure(all_zero, || "alloc_zeroed gave a dirty frame".into())
}

/// Expects a probe of `addr` to fault at exactly `addr`.
fn expect_fault(what: &str, faulted: bool, addr: u64) -> TestResult {
    ensure(faulted, || format!("{what} at {addr:#x} did not fault"))?;
    let cr2 = LAST_PROBE_FAULT.load(Ordering::Relaxed);
    ensure(cr2 == addr, || {
        format!("{what} faulted at {cr2:#x}, expected {addr:#x}")
    })
}

fn paging() -> TestResult {
    const VA: u64 = 0x40_0000;
    let before = frame::free_count();
    {
        let mut space = AddressSpace::new().map_err(|e| format!("new: {e:?}"))?;
        space
            .map_zeroed(VA, UserAccess::WRITE)
            .map_err(|e| format!("map: {e:?}"))?;
        ensure(space.map_zeroed(VA, UserAccess::WRITE).is_err(), || {
            "mapping a page twice succeeded".into()
        })?;
        space.activate();
        // SAFETY: VA is mapped writable in the active address space.
        let wrote = unsafe { probe::write_u8(VA + 5, 0xA5) };
        ensure(wrote, || "write to a writable page faulted".into())?;
        ensure(probe::read_u8(VA + 5) == Some(0xA5), || {
            "read back differs".into()
        })?;

        space
            .protect(VA, UserAccess::empty())
            .map_err(|e| format!("protect: {e:?}"))?;
        // SAFETY: the page is read-only, so the write must fault.
        let wrote = unsafe { probe::write_u8(VA + 7, 1) };
        expect_fault("write to a read-only page", !wrote, VA + 7)?;
        ensure(probe::read_u8(VA + 5) == Some(0xA5), || {
            "read of a read-only page failed".into()
        })?;

        let copy = space.duplicate().map_err(|e| format!("duplicate: {e:?}"))?;
        let t = copy.translate(VA).ok_or("copy lost the page")?;
        ensure(t.access == UserAccess::empty(), || {
            "copy changed the access".into()
        })?;
        // SAFETY: the copy's frame is owned by `copy` and direct-mapped.
        let copied = unsafe { t.frame.as_ptr().add(5).read() };
        ensure(copied == 0xA5, || format!("copy holds {copied:#x}"))?;
        ensure(
            t.frame != space.translate(VA).ok_or("lost page")?.frame,
            || "copy shares the frame".into(),
        )?;
        drop(copy);

        space.unmap(VA).map_err(|e| format!("unmap: {e:?}"))?;
        expect_fault("read of an unmapped page", probe::read_u8(VA).is_none(), VA)?;
        ensure(space.translate(VA).is_none(), || {
            "translate after unmap".into()
        })?;
        ensure(space.unmap(VA).is_err(), || {
            "unmapping twice succeeded".into()
        })?;
        ensure(
            space.map_zeroed(1 << 47, UserAccess::WRITE).is_err(),
            || "mapped a kernel address as user".into(),
        )?;
        space
            .map_zeroed(0x7FFF_FFFF_F000, UserAccess::WRITE)
            .map_err(|e| format!("map at the top of user space: {e:?}"))?;
        crate::memory::paging::activate_kernel_tables();
    }
    ensure(frame::free_count() == before, || {
        format!(
            "{} frames leaked",
            before as i64 - frame::free_count() as i64
        )
    })
}

fn heap_test() -> TestResult {
    let before = heap::used_bytes();
    {
        let boxed = Box::new([7u64; 64]);
        let mut v: Vec<u32> = Vec::new();
        for i in 0..10_000 {
            v.push(i);
        }
        let big = alloc::vec![0xCDu8; 1 << 20];
        ensure(
            heap::used_bytes() >= before + 512 + 40_000 + (1 << 20),
            || format!("heap counter {} did not grow", heap::used_bytes()),
        )?;
        ensure(boxed.iter().all(|&x| x == 7), || "box corrupted".into())?;
        ensure(v.iter().enumerate().all(|(i, &x)| x == i as u32), || {
            "vec corrupted".into()
        })?;
        ensure(big.iter().all(|&b| b == 0xCD), || {
            "big allocation corrupted".into()
        })?;
    }
    ensure(heap::used_bytes() == before, || {
        format!(
            "heap counter {} after freeing, was {}",
            heap::used_bytes(),
            before
        )
    })
}

fn timer() -> TestResult {
    let start_ticks = crate::time::ticks();
    let start_ns = crate::time::monotonic_ns();
    x86_64::instructions::interrupts::enable();
    while crate::time::ticks() < start_ticks + 3 {
        x86_64::instructions::hlt();
    }
    x86_64::instructions::interrupts::disable();
    let ns = crate::time::monotonic_ns();
    ensure(ns > start_ns, || {
        format!("clock did not advance: {start_ns} -> {ns}")
    })
}

fn exception() -> TestResult {
    // Low memory is unmapped once the boot identity map is gone.
    const ADDR: u64 = 0x1234;
    expect_fault(
        "read of unmapped kernel-mode address",
        probe::read_u8(ADDR).is_none(),
        ADDR,
    )?;
    crate::kprintln!("caught page fault at {ADDR:#x}, as expected");
    Ok(())
}

/// A fault in kernel mode that nothing catches: must end the run with the
/// exception code and a report.
fn kernel_pagefault() -> TestResult {
    let p = 0xdead_b000 as *const u64;
    // SAFETY: not safe at all, on purpose: this read must fault.
    let v = unsafe { p.read_volatile() };
    Err(format!("read of an unmapped address returned {v:#x}"))
}

/// Recursion without end on a kernel stack: the guard page below it must
/// turn the overflow into a reported double fault, not heap corruption.
fn kernel_stack_overflow() -> TestResult {
    let stack = crate::memory::kstack::KernelStack::new().ok_or("no frames for a stack")?;
    crate::kprintln!("overflowing a kernel stack (top {:#x})", stack.top());
    // SAFETY: not safe at all, on purpose: the recursion runs off the
    // bottom of the fresh stack into its guard page.
    unsafe {
        core::arch::asm!(
            "mov rsp, {top}",
            "call {recurse}",
            top = in(reg) stack.top(),
            recurse = sym recurse_forever,
            options(noreturn),
        )
    }
}

extern "C" fn recurse_forever(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 32]);
    if core::hint::black_box(depth) == u64::MAX {
        return frame[1];
    }
    recurse_forever(depth + 1).wrapping_add(frame[3])
}

fn deliberate_panic() -> TestResult {
    panic!("deliberate panic requested by test=panic")
}

fn hang() -> TestResult {
    loop {
        core::hint::spin_loop();
    }
}
