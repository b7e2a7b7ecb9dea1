//! Conformance tests for ptrace stops and events (contract sections 3, 4
//! and 4a): syscall entry/exit stops, the attach handshake, handlers inside
//! calls, `exit` and `fexec`, `PTRACE_SYSEMU`, signal stops and events,
//! `int3`, clone and exit events; and the client library's `resume` loop.
#![no_std]
#![no_main]

extern crate alloc;

mod clone;
mod exit;
mod int3;
mod resume;
mod signals;
mod syscalls;
mod sysemu;

use rt::Tests;
use testkit::run;

rt::entry!(main);

/// `--exec-child`: what `fexec_exit_stop` runs in the traced child: one
/// getpid, then exit 5.
fn exec_child() -> i32 {
    let _ = syscall::getpid();
    syscalls::EXEC_CHILD_CODE as i32
}

fn main(args: &[&str]) -> i32 {
    if args.get(1) == Some(&"--exec-child") {
        return exec_child();
    }
    let mut t = Tests::new();
    run(&mut t, "syscall_entry_exit_alternate", syscalls::alternate);
    run(
        &mut t,
        "handshake_first_stop_is_kill_exit",
        syscalls::handshake_detail,
    );
    run(
        &mut t,
        "handler_syscalls_inside_kill",
        syscalls::handler_inside_kill,
    );
    run(
        &mut t,
        "blocking_read_interrupted_eintr",
        syscalls::blocking_read_eintr,
    );
    run(
        &mut t,
        "exit_has_entry_stop_only",
        syscalls::exit_entry_only,
    );
    run(
        &mut t,
        "fexec_exit_stop_in_new_program",
        syscalls::fexec_exit_stop,
    );
    run(&mut t, "sysemu_skips_getpid", sysemu::skip_getpid);
    run(&mut t, "entry_change_number_getppid", sysemu::change_number);
    run(&mut t, "entry_change_write_args", sysemu::change_write_args);
    run(&mut t, "exit_change_result", sysemu::change_result);
    run(
        &mut t,
        "signal_stop_handled_discarded",
        signals::handled_discarded,
    );
    run(
        &mut t,
        "signal_stop_handled_delivered",
        signals::handled_delivered,
    );
    run(
        &mut t,
        "signal_stop_default_ignore_sigurg",
        signals::default_ignore,
    );
    run(
        &mut t,
        "signal_stop_sigterm_discarded",
        signals::default_terminate_discarded,
    );
    run(
        &mut t,
        "signal_stop_sigterm_delivered",
        signals::default_terminate_delivered,
    );
    run(&mut t, "signal_stop_ignored_sig_ign", signals::ignored);
    run(&mut t, "signal_event_handled", signals::event_handled);
    run(
        &mut t,
        "signal_event_sigterm_kills",
        signals::event_default_terminate,
    );
    run(&mut t, "int3_event_then_skip", int3::event_and_skip);
    run(
        &mut t,
        "int3_again_when_rip_unchanged",
        int3::again_when_rip_unchanged,
    );
    run(
        &mut t,
        "int3_resume_returns_breakpoint",
        int3::resume_returns_breakpoint,
    );
    run(&mut t, "int3_untraced_sigtrap", int3::untraced_sigtrap);
    run(
        &mut t,
        "resume_waits_through_signals",
        resume::waits_through_signals,
    );
    run(
        &mut t,
        "resume_nonblocking_einval",
        resume::nonblocking_einval,
    );
    run(
        &mut t,
        "clone_process_held_then_released",
        clone::process_untraced,
    );
    run(&mut t, "clone_process_attached", clone::process_attached);
    run(
        &mut t,
        "clone_thread_held_then_released",
        clone::thread_untraced,
    );
    run(&mut t, "clone_thread_attached", clone::thread_attached);
    run(&mut t, "exit_event_exit_code_then_esrch", exit::exit_code);
    run(
        &mut t,
        "exit_event_killed_by_sigterm",
        exit::killed_by_own_signal,
    );
    run(
        &mut t,
        "exit_event_sigkill_while_held",
        exit::sigkill_while_held,
    );
    t.finish()
}
