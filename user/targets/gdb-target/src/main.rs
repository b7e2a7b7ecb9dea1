//! The program the gdb tests debug (`gdbserver /bin/gdb-target [MODE]`): a
//! few functions that are never inlined, with arguments and locals, two
//! globals, a loop, and exit code 7 when everything added up.
//!
//! Modes: none (compute and exit 7), `loop` (bump the counter every 10 ms
//! until a debugger clears `KEEP_GOING`, then exit 7), `segv` (write to
//! address 0), `fork` (a child and the parent both call [`in_both`]; exit 7
//! if the child exited 5), `killed` (a child kills the parent with
//! `SIGKILL` a second after the fork), `stop` (stops itself with
//! `SIGSTOP`, then computes), `nap` (one 60 s `nanosleep` at
//! `gdb_target_nap_syscall`, exit 7), `nap-signal` (a 10 s nap that a
//! child interrupts with `SIGUSR1` after a second; exit 7 if the handler
//! [`on_usr1`] ran), `exec` (becomes `/bin/strace-target-segv`, which
//! dies of SIGSEGV).
#![no_std]
#![no_main]

use core::hint::black_box;
use core::sync::atomic::{AtomicU64, Ordering};

use syscall::data::{SigAction, TimeSpec};
use syscall::flag::{SigActionFlags, SIGKILL, SIGSTOP, SIGUSR1};

rt::entry!(main);

// `nanosleep` through one known `syscall` instruction, so that a test can
// put a breakpoint on it (`gdb_target_nap_syscall`) and single-step it.
core::arch::global_asm!(
    ".pushsection .text.gdb_target_nap,\"ax\",@progbits",
    ".globl gdb_target_nap",
    ".type gdb_target_nap,@function",
    "gdb_target_nap:",
    "    mov eax, {nr}",
    ".globl gdb_target_nap_syscall",
    "gdb_target_nap_syscall:",
    "    syscall",
    "    ret",
    ".size gdb_target_nap, . - gdb_target_nap",
    ".popsection",
    nr = const syscall::number::SYS_NANOSLEEP,
);

extern "C" {
    /// `nanosleep(req, rem)`; returns the raw result (`-errno` on error).
    fn gdb_target_nap(req: *const TimeSpec, rem: *mut TimeSpec) -> isize;
}

/// Set by [`on_usr1`].
static USR1_SEEN: AtomicU64 = AtomicU64::new(0);

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

/// Called by both the parent and the child in `fork` mode; a test puts a
/// breakpoint here.
#[inline(never)]
#[no_mangle]
pub fn in_both(x: u64) -> u64 {
    keep(&x);
    x + 1
}

/// `fork` mode: the child's copy of the text must not keep the parent's
/// breakpoints.
#[inline(never)]
fn fork_both() -> i32 {
    let child = match rt::process::fork_with(|| {
        let got = in_both(black_box(4));
        rt::println!("gdb-target: child got {got}");
        if got == 5 {
            5
        } else {
            1
        }
    }) {
        Ok(pid) => pid,
        Err(e) => {
            rt::eprintln!("gdb-target: fork: {e}");
            return 1;
        }
    };
    let got = in_both(black_box(1));
    let status = rt::process::wait(child).unwrap_or(0xff << 8);
    rt::println!("gdb-target: child {}", rt::process::describe(status));
    let child_ok = syscall::flag::wifexited(status) && syscall::flag::wexitstatus(status) == 5;
    if got == 2 && child_ok {
        7
    } else {
        1
    }
}

/// `killed` mode: a child kills this process while a debugger holds it.
#[inline(never)]
fn killed() -> i32 {
    let parent = syscall::getpid().unwrap_or(0);
    if let Err(e) = rt::process::fork_with(|| {
        let _ = rt::process::sleep_ms(1000);
        let _ = syscall::kill(parent, SIGKILL);
        0
    }) {
        rt::eprintln!("gdb-target: fork: {e}");
        return 1;
    }
    add_numbers(black_box(2), black_box(40));
    let _ = rt::process::sleep_ms(5000);
    rt::println!("gdb-target: still alive");
    7
}

/// `stop` mode: a job-control stop of its own, then the computation.
#[inline(never)]
fn stop_self() -> i32 {
    let _ = syscall::kill(syscall::getpid().unwrap_or(0), SIGSTOP);
    rt::println!("gdb-target: continued after SIGSTOP");
    compute()
}

/// Sleeps `seconds` in one `nanosleep` at `gdb_target_nap_syscall`; returns
/// its raw result.
#[inline(never)]
fn nap(seconds: i64) -> isize {
    let req = TimeSpec {
        tv_sec: seconds,
        tv_nsec: 0,
    };
    let mut rem = TimeSpec::default();
    // SAFETY: `gdb_target_nap` is a plain `nanosleep` system call; both
    // pointers are valid for the call and it clobbers only what the C ABI
    // lets a callee clobber.
    unsafe { gdb_target_nap(&req, &mut rem) }
}

/// The `SIGUSR1` handler of `nap-signal` mode.
#[no_mangle]
pub extern "C" fn on_usr1(_sig: usize) {
    USR1_SEEN.store(1, Ordering::Relaxed);
}

/// `nap` mode (`with_signal`: `nap-signal`).
#[inline(never)]
fn napping(with_signal: bool) -> i32 {
    if !with_signal {
        rt::println!("gdb-target: napping");
        let ret = nap(60);
        rt::println!("gdb-target: nap returned {ret}");
        return 7;
    }
    let action = SigAction {
        sa_handler: Some(on_usr1),
        sa_mask: [0, 0],
        sa_flags: SigActionFlags::empty(),
    };
    if let Err(e) = syscall::sigaction(SIGUSR1, Some(&action), None) {
        rt::eprintln!("gdb-target: sigaction: {e}");
        return 1;
    }
    let parent = syscall::getpid().unwrap_or(0);
    let child = match rt::process::fork_with(|| {
        let _ = rt::process::sleep_ms(1000);
        let _ = syscall::kill(parent, SIGUSR1);
        0
    }) {
        Ok(pid) => pid,
        Err(e) => {
            rt::eprintln!("gdb-target: fork: {e}");
            return 1;
        }
    };
    let ret = nap(10);
    let _ = rt::process::wait(child);
    let seen = USR1_SEEN.load(Ordering::Relaxed);
    rt::println!("gdb-target: nap returned {ret}, SIGUSR1 seen {seen}");
    if seen == 1 {
        7
    } else {
        1
    }
}

fn main(args: &[&str]) -> i32 {
    match args.get(1).copied() {
        None => compute(),
        Some("loop") => spin(),
        Some("segv") => segv(),
        Some("fork") => fork_both(),
        Some("killed") => killed(),
        Some("stop") => stop_self(),
        Some("nap") => napping(false),
        Some("nap-signal") => napping(true),
        Some("exec") => {
            let err = rt::process::exec("/bin/strace-target-segv", &[], rt::env());
            rt::eprintln!("gdb-target: exec: {err}");
            1
        }
        Some(other) => {
            rt::eprintln!("gdb-target: unknown mode {other}");
            2
        }
    }
}
