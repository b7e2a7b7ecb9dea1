//! Section 2 (v1.2): a session belongs to the process that opened `trace`.
//! It ends when that process exits even if copies of the handle live on (a
//! table shared with `CLONE_FILES`, an inherited handle), and operations on
//! such a copy then fail `EBADF`. A tracee never drives its own session.

use alloc::format;
use alloc::string::{String, ToString};

use rt::ensure;
use rt::test::{expect_errno, Ctx};
use syscall::error::{EBADF, EPERM};
use syscall::flag::{CloneFlags, O_CLOEXEC, O_RDONLY, O_RDWR};
use syscall::number::SYS_FEXEC;
use tracer::{IntRegisters, PtraceEvent, PTRACE_CONT, PTRACE_STOP_EXIT, PTRACE_STOP_POST_SYSCALL};

use crate::SELF;
use testkit::*;
use testkit::{expect_memory_back, memory};

/// Reads one `u64` from a pipe.
fn read_word(fd: usize) -> Result<usize, String> {
    let mut word = [0u8; 8];
    let n = rt::io::read_full(fd, &mut word).ctx("read a word")?;
    ensure!(n == 8, "short report ({n} bytes)");
    Ok(u64::from_le_bytes(word) as usize)
}

/// Every operation on a `trace` handle whose session has ended fails
/// `EBADF`; then the handle is closed.
fn expect_dead_copy(fd: usize, what: &str) -> Check {
    let mut buf = [0u8; PtraceEvent::SIZE];
    let result = (|| {
        expect_errno("read", syscall::read(fd, &mut buf), EBADF)?;
        expect_errno(
            "write PTRACE_CONT",
            syscall::write(fd, &[PTRACE_CONT]),
            EBADF,
        )?;
        expect_errno("dup regs/int", syscall::dup(fd, b"regs/int"), EBADF)
    })();
    let _ = syscall::close(fd);
    result.map_err(|e| format!("{what}: {e}"))
}

/// Runs `scenario` twice (the first run warms up the kernel's tables) and
/// checks the second leaves `sys:memory` as it found it.
fn twice_without_leak(scenario: fn() -> Check, what: &str) -> Check {
    scenario().map_err(|e| format!("first run: {e}"))?;
    let before = memory()?;
    scenario().map_err(|e| format!("second run: {e}"))?;
    expect_memory_back(before, what)
}

/// Tracer T traces C, both sharing this process's descriptor table
/// (`CLONE_FILES`); T `fexec`s a program that exits. C was held at the
/// attach stop: once T has exited it runs on, untraced, and the copy of the
/// handle left in the shared table fails `EBADF`.
fn tracer_fexec_then_exit() -> Check {
    let exe = syscall::open(SELF, O_RDONLY | O_CLOEXEC).ctx("open self")?;
    let (rep_rd, rep_wr) = rt::io::pipe(0).ctx("pipe")?;
    let result = (|| {
        let mut c = Kid::spawn_flags(CloneFlags::CLONE_FILES, || nap_forever())?;
        let cpid = c.pid;
        let mut t = Kid::spawn_flags(CloneFlags::CLONE_FILES, move || {
            // Without O_CLOEXEC: the handle lands in the shared table.
            let Ok(fd) = syscall::open(format!("proc:{cpid}/trace"), O_RDWR) else {
                return 3;
            };
            let _ = rt::io::write_all(rep_wr, &(fd as u64).to_le_bytes());
            let _ = rt::process::fexec_fd(exe, &[SELF, "--exit", "0"], &[]);
            4
        })?;
        let fd = read_word(rep_rd)?;
        rt::test::expect_exit("the tracer's new program", t.wait(3000)?, 0)?;
        wait_untraced(cpid, 3000).map_err(|e| format!("after the tracer exited: {e}"))?;
        expect_dead_copy(fd, "the copy in the shared table")?;
        c.kill();
        Ok(())
    })();
    let _ = syscall::close(rep_rd);
    let _ = syscall::close(rep_wr);
    let _ = syscall::close(exe);
    result
}

/// The tracer `fexec`s, its new program exits: nobody stays held, memory
/// goes back to its baseline.
pub fn clone_files_tracer_fexec_then_exit() -> Check {
    twice_without_leak(
        tracer_fexec_then_exit,
        "a CLONE_FILES tracer's fexec and exit",
    )
}

/// Tracer T traces C, both sharing this process's table; C `fexec`s
/// (`--exit 7`) and T takes it to the `fexec` exit stop, held in the new
/// program, whose table holds a copy of the handle; then T exits. C runs
/// on and exits 7; the copy in the shared table fails `EBADF`.
fn tracee_fexec_then_tracer_exit() -> Check {
    let exe = syscall::open(SELF, O_RDONLY | O_CLOEXEC).ctx("open self")?;
    let (rep_rd, rep_wr) = rt::io::pipe(0).ctx("pipe")?;
    let gate = Gate::new()?;
    let result = (|| {
        let gate_rd = gate.rd;
        let gate_wr = gate.wr;
        let mut c = Kid::spawn_flags(CloneFlags::CLONE_FILES, move || {
            let mut b = [0u8; 1];
            let _ = rt::io::read(gate_rd, &mut b);
            let _ = rt::process::fexec_fd(exe, &[SELF, "--exit", "7"], &[]);
            4
        })?;
        let cpid = c.pid;
        let mut t = Kid::spawn_flags(CloneFlags::CLONE_FILES, move || {
            let Ok(fd) = syscall::open(format!("proc:{cpid}/trace"), O_RDWR) else {
                return 3;
            };
            let _ = rt::io::write_all(rep_wr, &(fd as u64).to_le_bytes());
            if rt::io::write_all(gate_wr, b"g").is_err() {
                return 5;
            }
            let at_fexec_exit = |s: &tracer::StopInfo| {
                s.cause == PTRACE_STOP_POST_SYSCALL && s.nr == SYS_FEXEC as u64
            };
            match syscall_until(fd, cpid, 20, at_fexec_exit) {
                Ok(_) => 0,
                Err(_) => 6,
            }
        })?;
        let fd = read_word(rep_rd)?;
        rt::test::expect_exit("the tracer", t.wait(3000)?, 0)?;
        let status = c
            .wait(3000)
            .map_err(|e| format!("the tracee after its tracer exited: {e}"))?;
        rt::test::expect_exit("the tracee's new program", status, 7)?;
        expect_dead_copy(fd, "the copy in the shared table")
    })();
    let _ = syscall::close(rep_rd);
    let _ = syscall::close(rep_wr);
    let _ = syscall::close(exe);
    drop(gate);
    result
}

/// The tracee `fexec`s, then its tracer exits: the tracee is released and
/// memory goes back to its baseline.
pub fn clone_files_tracee_fexec_then_tracer_exit() -> Check {
    twice_without_leak(
        tracee_fexec_then_tracer_exit,
        "a CLONE_FILES tracee's fexec and its tracer's exit",
    )
}

/// O opens `trace` on K (without `O_CLOEXEC`) and forks H, which inherits
/// the handle; O exits. The session ends with O although H's copy lives
/// on: K runs on untraced, and every operation on H's copy fails `EBADF`.
pub fn inherited_copy_after_opener_exit_ebadf() -> Check {
    let mut k = Kid::spawn(|| nap_forever())?;
    let kpid = k.pid;
    let (rep_rd, rep_wr) = rt::io::pipe(0).ctx("pipe")?;
    let (eof_rd, eof_wr) = rt::io::pipe(0).ctx("pipe")?;
    let mut o = Kid::spawn(move || {
        let _ = syscall::close(rep_rd);
        let Ok(fd) = syscall::open(format!("proc:{kpid}/trace"), O_RDWR) else {
            return 3;
        };
        match rt::process::fork() {
            Ok(0) => {
                // H: waits until O (the only other holder of eof_wr) is
                // gone, then reports.
                let _ = syscall::close(eof_wr);
                let mut b = [0u8; 1];
                while let Ok(1) = rt::io::read(eof_rd, &mut b) {}
                let report = match expect_dead_copy(fd, "inherited copy") {
                    Ok(()) => String::from("ok"),
                    Err(e) => e,
                };
                let _ = rt::io::write_all(rep_wr, report.as_bytes());
                rt::process::exit(0);
            }
            Ok(_) => 0,
            Err(_) => 4,
        }
    })?;
    let _ = syscall::close(rep_wr);
    let _ = syscall::close(eof_wr);
    let _ = syscall::close(eof_rd);
    let result = (|| {
        rt::test::expect_exit("the opener", o.wait(3000)?, 0)?;
        let report = rt::io::read_to_end(rep_rd).ctx("read H's report")?;
        let report = String::from_utf8_lossy(&report).to_string();
        ensure!(report == "ok", "the inheriting process: {report}");
        wait_untraced(kpid, 3000).map_err(|e| format!("after the opener exited: {e}"))
    })();
    let _ = syscall::close(rep_rd);
    k.kill();
    result
}

/// A byte the tracee tries to change through its own `mem`.
static TARGET_BYTE: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0x5a);

/// What the tracee tries on its own session; `Err(step)` names the first
/// write that did not fail `EPERM`.
fn drive_own_session(fd: usize) -> Result<(), u8> {
    let eperm = |r: syscall::error::Result<usize>| matches!(r, Err(e) if e.errno == EPERM);
    if !eperm(syscall::write(fd, &[PTRACE_CONT])) {
        return Err(10);
    }
    let regs = syscall::dup(fd, b"regs/int").map_err(|_| 11u8)?;
    let zeros = [0u8; IntRegisters::SIZE];
    let ok = eperm(syscall::write(regs, &zeros));
    let _ = syscall::close(regs);
    if !ok {
        return Err(12);
    }
    let mem = syscall::dup(fd, b"mem").map_err(|_| 13u8)?;
    let addr = TARGET_BYTE.as_ptr() as u64;
    let ok = tracer::seek_to(mem, addr).is_ok() && eperm(syscall::write(mem, &[0xa5]));
    let _ = syscall::close(mem);
    if !ok {
        return Err(14);
    }
    if TARGET_BYTE.load(core::sync::atomic::Ordering::SeqCst) != 0x5a {
        return Err(15);
    }
    Ok(())
}

/// C shares this process's table, which holds the handle of C's own
/// session: C's writes to `trace`, `regs/int` and `mem` through it fail
/// `EPERM`; the session goes on (its exit event arrives).
pub fn tracee_writes_own_session_eperm() -> Check {
    let gate = Gate::new()?;
    let (num_rd, num_wr) = rt::io::pipe(0).ctx("pipe")?;
    let result = (|| {
        let gate_rd = gate.rd;
        let mut c = Kid::spawn_flags(CloneFlags::CLONE_FILES, move || {
            let mut b = [0u8; 1];
            let _ = rt::io::read(gate_rd, &mut b);
            let Ok(fd) = read_word(num_rd) else {
                return 3;
            };
            match drive_own_session(fd) {
                Ok(()) => 0,
                Err(step) => step as i32,
            }
        })?;
        let fd = syscall::open(format!("proc:{}/trace", c.pid), O_RDWR).ctx("attach")?;
        let inner = (|| {
            rt::io::write_all(num_wr, &(fd as u64).to_le_bytes()).ctx("send fd")?;
            gate.open()?;
            let mut reached = op_ok(fd, PTRACE_CONT)?;
            let mut exit = None;
            for _ in 0..16 {
                if reached == 1 {
                    break;
                }
                for event in events(fd)? {
                    if event.cause == PTRACE_STOP_EXIT {
                        exit = Some(event.a);
                    }
                }
                if exit.is_some() {
                    break;
                }
                reached = op_ok(fd, tracer::PTRACE_WAIT)?;
            }
            let status = c.wait(3000)?;
            ensure!(
                exit == Some(status),
                "exit event {exit:?}, waitpid status {status:#x}"
            );
            rt::test::expect_exit("the tracee (0, or the step that was not EPERM)", status, 0)
        })();
        let _ = syscall::close(fd);
        inner
    })();
    let _ = syscall::close(num_rd);
    let _ = syscall::close(num_wr);
    result
}
