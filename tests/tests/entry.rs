//! Entry paths no user state can subvert (issue 8): the IST handlers and
//! their `gs` judgement (kernel self-test `entry-traps`), and the guest
//! program `test-entry` (hostile register state on resume, `mov ss` /
//! `pop ss` sequences with the trap flag, W^X images refused), and real
//! NMIs injected through the QEMU monitor while the guest works.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

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
        "stack_not_executable_sigsegv",
        "data_not_executable_sigsegv",
        "text_not_writable_sigsegv",
        "fresh_session_after_hostile_state",
    ]);
}

/// How many NMIs the host injects, one at a time.
const NMIS: usize = 20;
/// Catches hangs only.
const HANG: Duration = Duration::from_secs(120);

fn connect(path: &Path) -> UnixStream {
    let deadline = Instant::now() + HANG;
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return s,
            Err(e) if Instant::now() >= deadline => panic!("connect {}: {e}", path.display()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// NMIs from the QEMU monitor while `test-entry nmi` runs user code,
/// system calls and forks: each is taken on its IST stack, reported and
/// ignored (one line each), and the guest, checking its own results all
/// along, finishes normally when told to through the second serial port.
#[test]
fn injected_nmis_while_the_guest_works() {
    let dir = std::env::temp_dir();
    let tag = format!("entry-nmi-{}", std::process::id());
    let monitor = dir.join(format!("{tag}.mon"));
    let com2 = dir.join(format!("{tag}.com2"));
    let _ = std::fs::remove_file(&monitor);
    let _ = std::fs::remove_file(&com2);
    let mut running = Boot::new("entry-nmi", "init=/bin/test-entry nmi")
        .machine("q35")
        .extra_qemu_args(&format!(
            "-monitor unix:{},server=on,wait=off -serial unix:{},server=on,wait=off",
            monitor.display(),
            com2.display()
        ))
        .spawn();
    running.wait_for("nmi-loop: ready", HANG);
    let mut mon = connect(&monitor);
    for n in 1..=NMIS {
        mon.write_all(b"nmi\n").expect("write to the QEMU monitor");
        let deadline = Instant::now() + HANG;
        while running.serial().matches("NMI at rip").count() < n {
            assert!(Instant::now() < deadline, "NMI {n} was not reported");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut port = connect(&com2);
    port.write_all(b"q").expect("write to COM2");
    let out = running.wait();
    let _ = std::fs::remove_file(&monitor);
    let _ = std::fs::remove_file(&com2);
    out.expect_success()
        .expect_line("nmi-loop: done")
        .expect_absent("KERNEL");
    let reported = out.serial.matches("NMI at rip").count();
    if reported != NMIS {
        out.fail(&format!("{reported} NMIs reported, {NMIS} injected"));
    }
}
