//! Entry paths no user state can subvert (issue 8): the IST handlers and
//! their `gs` judgement (kernel self-test `entry-traps`), and the guest
//! program `test-entry` (hostile register state on resume, `mov ss` /
//! `pop ss` sequences with the trap flag, W^X images refused).

use qemu_tests::Boot;

#[test]
fn ist_debug_and_nmi_in_the_syscall_entry_window() {
    Boot::new("entry-traps", "test=entry-traps")
        .run()
        .expect_success()
        .expect_tests_passed(&["entry-traps"]);
}

#[test]
fn ist_entry_traps_on_q35() {
    Boot::new("entry-traps-q35", "test=entry-traps")
        .machine("q35")
        .run()
        .expect_success()
        .expect_tests_passed(&["entry-traps"]);
}

#[test]
fn hostile_resume_state_mov_ss_and_wx() {
    let out = Boot::new("test-entry", "init=/bin/test-entry").run();
    out.expect_success()
        .expect_absent("target-wx: ran")
        .expect_absent("target-wx-shared: ran")
        .expect_absent("KERNEL");
    out.expect_tests_passed(&[
        "resume_rip_last_user_page_sigsegv",
        "resume_rip_noncanonical_einval",
        "resume_rsp_unmapped_sigsegv",
        "resume_rflags_all_bits_masked",
        "resume_rflags_all_bits_single_step",
        "resume_mxcsr_reserved_einval",
        "mov_ss_syscall_tf_untraced_sigtrap",
        "mov_ss_int3_tf_untraced_sigtrap",
        "pop_ss_syscall_untraced_sigill",
        "mov_ss_syscall_single_step",
        "mov_ss_int3_single_step",
        "pop_ss_syscall_single_step_sigill",
        "user_tf_traced_signal_stops",
        "wx_segment_enoexec",
        "wx_shared_page_enoexec",
        "fresh_session_after_hostile_state",
    ]);
}
