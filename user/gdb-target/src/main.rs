//! The program the gdb tests debug (`gdbserver /bin/gdb-target [MODE]`): a
//! few functions that are never inlined, with arguments and locals, two
//! globals, a loop, and exit code 7 when everything added up.
//!
//! Modes: none (compute and exit 7), `loop` (bump the counter every 10 ms
//! until a debugger clears `KEEP_GOING`, then exit 7), `segv` (write to
//! address 0).
#![no_std]
#![no_main]

use core::hint::black_box;

rt::entry!(main);

/// Bumped by [`bump_counter`]; the gdb test prints it.
#[no_mangle]
pub static mut COUNTER: u64 = 0;

/// `loop` mode runs while this is non-zero; a debugger clears it.
#[no_mangle]
pub static mut KEEP_GOING: u64 = 1;

/// Adds two numbers; the gdb test stops here and prints `a` and `b`.
#[inline(never)]
#[no_mangle]
pub fn add_numbers(a: u64, b: u64) -> u64 {
    let sum = a + b;
    // Handing out the addresses keeps `a`, `b` and `sum` in stack slots
    // that the debug info describes, even in an optimised build.
    keep(&a);
    keep(&b);
    keep(&sum);
    sum
}

/// Adds `by` to [`COUNTER`] and returns the new value.
#[inline(never)]
#[no_mangle]
pub fn bump_counter(by: u64) -> u64 {
    keep(&by);
    let counter = &raw mut COUNTER;
    // SAFETY: the program has one thread; nothing else touches COUNTER, and
    // volatile accesses keep every update visible to the debugger.
    unsafe {
        let next = counter.read_volatile() + by;
        counter.write_volatile(next);
        next
    }
}

/// Makes the optimiser assume `value` is read (and its address taken).
#[inline(never)]
fn keep(value: &u64) {
    black_box(value);
}

fn read_global(global: *const u64) -> u64 {
    // SAFETY: `global` points at one of this program's statics; the program
    // has one thread, and a debugger may change the value (hence volatile).
    unsafe { global.read_volatile() }
}

#[inline(never)]
fn compute() -> i32 {
    let mut total = add_numbers(black_box(2), black_box(40));
    for i in 1..=3 {
        total = add_numbers(total, black_box(i));
        bump_counter(i);
    }
    let counter = read_global(&raw const COUNTER);
    rt::println!("gdb-target: total={total} counter={counter}");
    if total == 48 && counter == 6 {
        7
    } else {
        1
    }
}

#[inline(never)]
fn spin() -> i32 {
    rt::println!("gdb-target: looping until KEEP_GOING is 0");
    // Ten minutes at most, so that a lost debugger cannot wedge a test.
    for _ in 0..60_000 {
        if read_global(&raw const KEEP_GOING) == 0 {
            let counter = read_global(&raw const COUNTER);
            rt::println!("gdb-target: loop ended, counter={counter}");
            return 7;
        }
        bump_counter(1);
        let _ = rt::process::sleep_ms(10);
    }
    1
}

#[inline(never)]
fn segv() -> i32 {
    let null = black_box(0usize) as *mut u64;
    // SAFETY: none: this write faults on purpose (SIGSEGV for the debugger).
    unsafe { null.write_volatile(1) };
    1
}

fn main(args: &[&str]) -> i32 {
    match args.get(1).copied() {
        None => compute(),
        Some("loop") => spin(),
        Some("segv") => segv(),
        Some(other) => {
            rt::eprintln!("gdb-target: unknown mode {other}");
            2
        }
    }
}
