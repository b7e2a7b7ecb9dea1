//! Conformance tests for single-stepping (`PTRACE_SINGLESTEP`, contract
//! sections 3 and 4a): exact register state after each instruction of a
//! hand-written sequence, a step over `syscall`, a step into a signal
//! handler, a step across `fexec`, and `PTRACE_CONT` after stepping.
#![no_std]
#![no_main]

extern crate alloc;

mod seq;

use rt::Tests;
use testkit::run;

rt::entry!(main);

/// What the `--exec-child` mode exits with when its rflags are clean.
pub const EXEC_CHILD_CODE: usize = 5;

/// `--exec-child`: the program `step_across_fexec` steps into. Exits 5 if
/// its own rflags show no trap flag once it runs freely, 6 otherwise.
fn exec_child() -> i32 {
    if seq::rflags() & seq::TF == 0 {
        EXEC_CHILD_CODE as i32
    } else {
        6
    }
}

fn main(args: &[&str]) -> i32 {
    if args.get(1) == Some(&"--exec-child") {
        return exec_child();
    }
    let mut t = Tests::new();
    run(&mut t, "step_exact_sequence", seq::exact_sequence);
    run(&mut t, "step_over_syscall", seq::over_syscall);
    run(
        &mut t,
        "step_then_cont_runs_normally",
        seq::cont_after_steps,
    );
    run(&mut t, "step_into_signal_handler", seq::into_handler);
    run(&mut t, "step_across_fexec", seq::across_fexec);
    run(
        &mut t,
        "step_from_syscall_exit_stop",
        seq::from_syscall_exit_stop,
    );
    t.finish()
}
