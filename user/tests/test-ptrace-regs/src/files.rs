//! The rules every `regs/*` file shares: buffer sizes (EINVAL), writes only
//! while held by ptrace (EBUSY), and ESRCH once the tracee has exited.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use rt::process::waitpid;
use rt::test::{expect_eq, expect_errno, Ctx};
use syscall::error::{EBUSY, EINVAL, ESRCH};
use syscall::flag::{WaitFlags, O_EXCL, O_NONBLOCK, O_RDWR, SIGSTOP};
use tracer::{open_proc, PTRACE_CONT};

use crate::probes::{self, bp};
use testkit::{start, start_flags, wait_state, Gate, Kid};

/// The three register files and their sizes.
pub const REGS_FILES: [(&str, usize); 3] =
    [("regs/int", 168), ("regs/float", 416), ("regs/env", 16)];

/// An image of `file` that differs from `current` in a field the kernel
/// accepts (so only the length can be the reason for a refusal).
fn changed_image(file: &str, current: &[u8]) -> Vec<u8> {
    let mut image = current.to_vec();
    match file {
        // rbx (offset 40).
        "regs/int" => image[40..48].copy_from_slice(&0x0BAD_0BAD_0BAD_0BADu64.to_le_bytes()),
        // xmm3 (xmm_space at 160).
        "regs/float" => image[160 + 48..160 + 64].copy_from_slice(&[0x5A; 16]),
        // fsbase: a canonical user address.
        _ => image[0..8].copy_from_slice(&0x1234_5000u64.to_le_bytes()),
    }
    image
}

fn read_exact_size(fd: usize, file: &str, size: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; size];
    let n = syscall::read(fd, &mut buf).ctx(&format!("read {}", file))?;
    expect_eq(&format!("bytes read from {}", file), n, size)?;
    Ok(buf)
}

/// A read buffer shorter than the struct is EINVAL; a longer one gets the
/// struct. A write of any other length than the struct's is EINVAL and
/// changes nothing.
pub fn sizes() -> Result<(), String> {
    let mut tr = start(|| {
        probes::park();
        0
    })?;
    tr.cont_to(bp::park())?;
    for (file, size) in REGS_FILES {
        let fd = open_proc(tr.pid, file, O_RDWR).ctx(&format!("open {}", file))?;
        let result = (|| -> Result<(), String> {
            // A real buffer, so even the empty read has a valid pointer.
            let mut space = vec![0u8; size];
            for short in [0, 1, size - 1] {
                expect_errno(
                    &format!("read {} with {} bytes", file, short),
                    syscall::read(fd, &mut space[..short]),
                    EINVAL,
                )?;
            }
            let exact = read_exact_size(fd, file, size)?;
            let mut long = vec![0xEEu8; size + 64];
            let n =
                syscall::read(fd, &mut long).ctx(&format!("read {} with a long buffer", file))?;
            expect_eq(
                &format!("bytes read from {} into a long buffer", file),
                n,
                size,
            )?;
            expect_eq(
                &format!("{} read into a long buffer", file),
                &long[..size],
                &exact[..],
            )?;

            let changed = changed_image(file, &exact);
            for len in [0, 1, size - 1, size + 1, size + 8, 2 * size] {
                let mut buf = changed.clone();
                buf.resize(len, 0);
                expect_errno(
                    &format!("write {} bytes to {}", len, file),
                    syscall::write(fd, &buf),
                    EINVAL,
                )?;
                let now = read_exact_size(fd, file, size)?;
                if now != exact {
                    return Err(format!("a refused {}-byte write changed {}", len, file));
                }
            }
            // The exact size with the same change is accepted: the length was
            // the only problem.
            let n = syscall::write(fd, &changed).ctx(&format!("write {} exact size", file))?;
            expect_eq(&format!("bytes written to {}", file), n, size)?;
            let now = read_exact_size(fd, file, size)?;
            if now != changed {
                return Err(format!("{} does not read back what was written", file));
            }
            let n = syscall::write(fd, &exact).ctx(&format!("restore {}", file))?;
            expect_eq(&format!("bytes written to {}", file), n, size)?;
            Ok(())
        })();
        let _ = syscall::close(fd);
        result?;
    }
    tr.finish()
}

/// Reads the file at `fd` (must work) and writes it back unchanged
/// (must be EBUSY, and change nothing).
fn expect_busy(fd: usize, file: &str, size: usize, when: &str) -> Result<(), String> {
    let before = read_exact_size(fd, file, size)?;
    expect_errno(
        &format!("write {} while {}", file, when),
        syscall::write(fd, &changed_image(file, &before)),
        EBUSY,
    )?;
    let after = read_exact_size(fd, file, size)?;
    if after != before {
        return Err(format!("a refused write changed {} ({})", file, when));
    }
    Ok(())
}

fn open_all(pid: usize) -> Result<Vec<usize>, String> {
    let mut fds = Vec::new();
    for (file, _) in REGS_FILES {
        match open_proc(pid, file, O_RDWR) {
            Ok(fd) => fds.push(fd),
            Err(e) => {
                for fd in fds {
                    let _ = syscall::close(fd);
                }
                return Err(format!("open {}: {}", file, rt::errno::describe(&e)));
            }
        }
    }
    Ok(fds)
}

fn close_all(fds: Vec<usize>) {
    for fd in fds {
        let _ = syscall::close(fd);
    }
}

/// Register writes to an untraced child (blocked, then stopped by job
/// control) are EBUSY; reads work.
pub fn not_held_untraced() -> Result<(), String> {
    let gate = Gate::new()?;
    let kid = Kid::at_gate(&gate, 0)?;
    let pid = kid.pid;
    let result = (|| -> Result<(), String> {
        wait_state(pid, "blocked")?;
        let fds = open_all(pid)?;
        let r = (|| -> Result<(), String> {
            for (fd, (file, size)) in fds.iter().zip(REGS_FILES) {
                expect_busy(*fd, file, size, "the untraced child is blocked")?;
            }
            syscall::kill(pid, SIGSTOP).ctx("kill SIGSTOP")?;
            let (_, status) = waitpid(pid, WaitFlags::WUNTRACED).ctx("waitpid WUNTRACED")?;
            rt::ensure!(
                syscall::flag::wifstopped(status),
                "child after SIGSTOP: {}",
                rt::process::describe(status)
            );
            for (fd, (file, size)) in fds.iter().zip(REGS_FILES) {
                expect_busy(*fd, file, size, "the untraced child is stopped by SIGSTOP")?;
            }
            Ok(())
        })();
        close_all(fds);
        r
    })();
    // Dropping `kid` kills and reaps the child.
    drop(kid);
    result
}

/// A traced tracee: writes work at the attach stop, and are EBUSY once it
/// has been resumed and is blocked in a system call.
pub fn not_held_traced() -> Result<(), String> {
    let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
    let tracee = start_flags(O_EXCL | O_NONBLOCK, move || {
        let _ = syscall::close(wr);
        let mut b = [0u8; 1];
        let _ = rt::io::read(rd, &mut b);
        0
    });
    let _ = syscall::close(rd);
    let result = (|| -> Result<(), String> {
        let mut tr = tracee?;
        let fds = open_all(tr.pid)?;
        let r = (|| -> Result<(), String> {
            // Held at the attach stop: writing back what was read works.
            for (fd, (file, size)) in fds.iter().zip(REGS_FILES) {
                let image = read_exact_size(*fd, file, size)?;
                let n = syscall::write(*fd, &image)
                    .ctx(&format!("write {} at the attach stop", file))?;
                expect_eq(&format!("bytes written to {}", file), n, size)?;
            }
            let accepted = tr.t().op(PTRACE_CONT).ctx("PTRACE_CONT (non-blocking)")?;
            expect_eq("non-blocking PTRACE_CONT", accepted, 1)?;
            wait_state(tr.pid, "blocked")?;
            for (fd, (file, size)) in fds.iter().zip(REGS_FILES) {
                expect_busy(*fd, file, size, "the traced child runs (blocked in read)")?;
            }
            Ok(())
        })();
        close_all(fds);
        r
    })();
    let _ = syscall::close(wr);
    result
}

/// After the tracee has exited (not yet reaped, then reaped), reads and
/// writes of every register file and of `mem` are ESRCH, and so is opening.
pub fn after_exit() -> Result<(), String> {
    let mut tr = start(|| 7)?;
    let mut fds = open_all(tr.pid)?;
    let mem = open_proc(tr.pid, "mem", O_RDWR).ctx("open mem");
    let result = (|| -> Result<(), String> {
        let mem = mem?;
        fds.push(mem);
        let mut images = Vec::new();
        for (fd, (file, size)) in fds.iter().zip(REGS_FILES) {
            images.push(read_exact_size(*fd, file, size)?);
        }
        let status = tr.cont_to_exit()?;
        rt::test::expect_exit("tracee", status, 7)?;
        for when in ["exited", "reaped"] {
            if when == "reaped" {
                tr.close_and_reap()?;
            }
            for ((fd, (file, size)), image) in fds.iter().zip(REGS_FILES).zip(&images) {
                let mut buf = vec![0u8; size];
                expect_errno(
                    &format!("read {} ({})", file, when),
                    syscall::read(*fd, &mut buf),
                    ESRCH,
                )?;
                expect_errno(
                    &format!("write {} ({})", file, when),
                    syscall::write(*fd, image),
                    ESRCH,
                )?;
                expect_errno(
                    &format!("open {} ({})", file, when),
                    open_proc(tr.pid, file, O_RDWR),
                    ESRCH,
                )?;
            }
            let addr = crate::probes::OUT.addr();
            let mut buf = [0u8; 8];
            let read = tracer::seek_to(mem, addr).and_then(|_| syscall::read(mem, &mut buf));
            expect_errno(&format!("read mem ({})", when), read, ESRCH)?;
            let write = tracer::seek_to(mem, addr).and_then(|_| syscall::write(mem, &buf));
            expect_errno(&format!("write mem ({})", when), write, ESRCH)?;
        }
        Ok(())
    })();
    close_all(fds);
    result
}
