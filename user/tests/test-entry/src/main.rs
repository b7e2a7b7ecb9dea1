//! Entry-path hardening (issue 8): a tracee resumed with hostile register
//! state gets the signal real hardware would give and the kernel stays up;
//! `mov ss` / `pop ss` followed by `syscall` or `int3` with the trap
//! flag set, untraced and under a single-stepping tracer; W^X (an image with
//! a writable and executable segment is refused with `ENOEXEC`).
//! `test-entry nmi` is the guest half of the host's NMI test (`nmi.rs`).
#![no_std]
#![no_main]

extern crate alloc;

mod nmi;
mod probes;

use rt::Tests;

rt::entry!(main);

fn main(args: &[&str]) -> i32 {
    if args.get(1) == Some(&"nmi") {
        return nmi::run();
    }
    let mut t = Tests::new();
    testkit::run(
        &mut t,
        "resume_rip_last_user_page_sigsegv",
        probes::rip_last_user_page,
    );
    testkit::run(
        &mut t,
        "resume_rip_noncanonical_einval",
        probes::rip_noncanonical,
    );
    testkit::run(&mut t, "resume_rsp_unmapped_sigsegv", probes::rsp_unmapped);
    testkit::run(
        &mut t,
        "resume_rflags_all_bits_masked",
        probes::rflags_all_bits,
    );
    testkit::run(
        &mut t,
        "resume_rflags_all_bits_single_step",
        probes::rflags_all_bits_step,
    );
    testkit::run(
        &mut t,
        "resume_mxcsr_reserved_einval",
        probes::mxcsr_reserved,
    );
    testkit::run(
        &mut t,
        "mov_ss_syscall_tf_untraced_sigtrap",
        probes::mov_ss_syscall_untraced,
    );
    testkit::run(
        &mut t,
        "mov_ss_int3_tf_untraced_sigtrap",
        probes::mov_ss_int3_untraced,
    );
    testkit::run(
        &mut t,
        "pop_ss_syscall_untraced_sigill",
        probes::pop_ss_untraced,
    );
    testkit::run(
        &mut t,
        "mov_ss_syscall_single_step",
        probes::mov_ss_syscall_step,
    );
    testkit::run(&mut t, "mov_ss_int3_single_step", probes::mov_ss_int3_step);
    testkit::run(
        &mut t,
        "pop_ss_syscall_single_step_sigill",
        probes::pop_ss_step,
    );
    testkit::run(
        &mut t,
        "user_tf_traced_signal_stops",
        probes::user_tf_traced,
    );
    testkit::run(&mut t, "wx_segment_enoexec", probes::wx_image_refused);
    testkit::run(
        &mut t,
        "wx_shared_page_enoexec",
        probes::wx_shared_page_refused,
    );
    testkit::run(
        &mut t,
        "stack_not_executable_sigsegv",
        probes::stack_not_executable,
    );
    testkit::run(
        &mut t,
        "data_not_executable_sigsegv",
        probes::data_not_executable,
    );
    testkit::run(
        &mut t,
        "text_not_writable_sigsegv",
        probes::text_not_writable,
    );
    testkit::run(
        &mut t,
        "fresh_session_after_hostile_state",
        probes::fresh_session,
    );
    t.finish()
}
