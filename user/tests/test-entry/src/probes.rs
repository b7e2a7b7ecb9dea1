//! The checks. Tracee code is inline assembly between `int3`s; the tracer
//! stops at the first `int3`, plants hostile state, resumes, and checks the
//! signal and wait status the tracee ends with.

use alloc::format;
use alloc::string::String;
use alloc::vec;

use rt::test::{expect_eq, expect_errno, expect_exit, expect_killed, Ctx};
use syscall::error::{EINVAL, ENOEXEC};
use syscall::flag::{SIGILL, SIGSEGV, SIGTRAP};
use syscall::number::{SYS_GETPID, SYS_WRITE};
use tracer::Stopped;
use tracer::{
    PTRACE_CONT, PTRACE_SIGNAL, PTRACE_SINGLESTEP, PTRACE_STOP_SIGNAL, PTRACE_STOP_SINGLESTEP,
    PTRACE_SYSEMU,
};

use testkit::{run_child, start};

const TF: usize = 0x100;
const IF: usize = 0x200;
/// rflags bit 1 always reads 1.
const RFLAGS_FIXED: usize = 0x2;
/// CF PF AF ZF SF DF OF: what a tracer may write (contract section 5).
const RFLAGS_WRITABLE: usize = 0xCD5;
const MXCSR_DEFAULT: u32 = 0x1F80;

/// Start of the last page of user space (the unmapped guard page above the
/// stack) and the first non-canonical address.
const LAST_USER_PAGE: usize = 0x7FFF_FFFF_F000;
const FIRST_NONCANONICAL: usize = 0x0000_8000_0000_0000;

/// `int3`, then a plain stretch of code the tracer redirects (or not).
fn body_int3_then_push() -> i32 {
    // SAFETY: stack-balanced; clobbers only rax.
    unsafe { core::arch::asm!("int3", "push rax", "pop rax", out("rax") _) };
    0
}

fn expect_sigsegv_death(signals: &[usize], status: usize) -> Result<(), String> {
    expect_eq("signal events", signals, &[SIGSEGV][..])?;
    expect_killed("tracee", status, SIGSEGV)
}

/// `rip` at the start and at the last byte of the last user page (unmapped):
/// the instruction fetch faults, SIGSEGV, as on hardware.
pub fn rip_last_user_page() -> Result<(), String> {
    for rip in [LAST_USER_PAGE, FIRST_NONCANONICAL - 1] {
        let mut tr = start(body_int3_then_push)?;
        let mut regs = tr.cont_to_int3()?;
        regs.rip = rip;
        tr.t().set_regs(&regs).ctx("write rip")?;
        expect_eq("rip read back", tr.t().regs().ctx("read regs")?.rip, rip)?;
        let (signals, status) = tr.run_to_exit(PTRACE_CONT)?;
        expect_sigsegv_death(&signals, status).map_err(|e| format!("rip {rip:#x}: {e}"))?;
    }
    Ok(())
}

/// The first non-canonical `rip` (and a kernel one) is `EINVAL` and changes
/// nothing: the tracee then runs on normally.
pub fn rip_noncanonical() -> Result<(), String> {
    let mut tr = start(body_int3_then_push)?;
    let regs = tr.cont_to_int3()?;
    for rip in [FIRST_NONCANONICAL, 0xFFFF_8000_0000_0000, usize::MAX] {
        let mut bad = regs;
        bad.rip = rip;
        expect_errno(&format!("rip {rip:#x}"), tr.t().set_regs(&bad), EINVAL)?;
        expect_eq(
            "rip unchanged",
            tr.t().regs().ctx("read regs")?.rip,
            regs.rip,
        )?;
    }
    tr.set_past_int3(&regs)?;
    let (signals, status) = tr.run_to_exit(PTRACE_CONT)?;
    expect_eq("signal events", signals.len(), 0)?;
    expect_exit("tracee", status, 0)
}

/// An unmapped `rsp` (page 0, and the guard page above the stack): the next
/// `push` faults, SIGSEGV.
pub fn rsp_unmapped() -> Result<(), String> {
    for rsp in [0x1000, LAST_USER_PAGE + 0x800] {
        let mut tr = start(body_int3_then_push)?;
        let mut regs = tr.cont_to_int3()?;
        regs.rsp = rsp;
        tr.set_past_int3(&regs)?;
        let (signals, status) = tr.run_to_exit(PTRACE_CONT)?;
        expect_sigsegv_death(&signals, status).map_err(|e| format!("rsp {rsp:#x}: {e}"))?;
    }
    Ok(())
}

/// `int3`; the flags as the tracee sees them go to r13; `int3`.
fn body_read_flags() -> i32 {
    // SAFETY: stack-balanced; `cld` undoes a DF the tracer may have set
    // before any compiled code runs.
    unsafe {
        core::arch::asm!("int3", "pushfq", "pop r13", "cld", "int3", out("r13") _);
    }
    0
}

/// What a write of every rflags bit leaves: the writable bits, IF, bit 1.
const ALL_BITS_RESULT: usize = RFLAGS_WRITABLE | IF | RFLAGS_FIXED;

/// Every rflags bit set: masked to the writable ones, the tracee runs
/// normally and sees exactly those (no TF, IOPL, NT, RF, VM, AC, ID).
pub fn rflags_all_bits() -> Result<(), String> {
    let mut tr = start(body_read_flags)?;
    let mut regs = tr.cont_to_int3()?;
    regs.rflags = usize::MAX;
    tr.set_past_int3(&regs)?;
    let back = tr.t().regs().ctx("read regs back")?;
    expect_eq("rflags read back", back.rflags, ALL_BITS_RESULT)?;
    let regs = tr.cont_to_int3()?;
    expect_eq("rflags the tracee saw", regs.r13, ALL_BITS_RESULT)?;
    tr.set_past_int3(&regs)?;
    let (signals, status) = tr.run_to_exit(PTRACE_CONT)?;
    expect_eq("signal events", signals.len(), 0)?;
    expect_exit("tracee", status, 0)
}

/// The same, resumed with single steps: each step stops once, and the
/// flags the tracee sees still carry no TF of the tracer's.
pub fn rflags_all_bits_step() -> Result<(), String> {
    let mut tr = start(body_read_flags)?;
    let mut regs = tr.cont_to_int3()?;
    regs.rflags = usize::MAX;
    tr.set_past_int3(&regs)?;
    // pushfq, pop r13: two steps.
    for n in 0..2 {
        match tr
            .t()
            .resume(PTRACE_SINGLESTEP, |_| {})
            .ctx("PTRACE_SINGLESTEP")?
        {
            Stopped::Reached(s) if s.cause == PTRACE_STOP_SINGLESTEP => {}
            other => return Err(format!("step {n}: {other:?}")),
        }
        let r = tr.t().regs().ctx("read regs")?;
        expect_eq("rflags at a step stop", r.rflags, ALL_BITS_RESULT)?;
    }
    let r = tr.t().regs().ctx("read regs")?;
    expect_eq("rflags the tracee pushed", r.r13 & !TF, ALL_BITS_RESULT)?;
    let regs = tr.cont_to_int3()?;
    tr.set_past_int3(&regs)?;
    let (_, status) = tr.run_to_exit(PTRACE_CONT)?;
    expect_exit("tracee", status, 0)
}

/// `mxcsr` with reserved bits is `EINVAL` and changes nothing: the tracee
/// then reads the default value itself.
pub fn mxcsr_reserved() -> Result<(), String> {
    let mut tr = start(|| {
        let mut mxcsr: u32 = 0;
        // SAFETY: int3, then stmxcsr into a local.
        unsafe {
            core::arch::asm!("int3", "stmxcsr [{p}]", p = in(reg) &mut mxcsr as *mut u32);
        }
        if mxcsr == MXCSR_DEFAULT {
            0
        } else {
            1
        }
    })?;
    let regs = tr.cont_to_int3()?;
    let fr = tr.t().float_regs().ctx("read regs/float")?;
    expect_eq("mxcsr", fr.mxcsr, MXCSR_DEFAULT)?;
    for bad in [0xFFFF_FFFF, MXCSR_DEFAULT | 0x1_0000, 0x8000_0000] {
        let mut w = fr;
        w.mxcsr = bad;
        expect_errno(
            &format!("mxcsr {bad:#x}"),
            tr.t().set_float_regs(&w),
            EINVAL,
        )?;
    }
    expect_eq(
        "mxcsr after the refused writes",
        tr.t().float_regs().ctx("read regs/float")?.mxcsr,
        MXCSR_DEFAULT,
    )?;
    tr.set_past_int3(&regs)?;
    let (_, status) = tr.run_to_exit(PTRACE_CONT)?;
    expect_exit("tracee (1: it saw another mxcsr)", status, 0)
}

/// Untraced: TF set with `popfq`, then `mov ss, [rsp]` and `syscall`
/// (`write(fd, "x", 1)`). The call runs (the byte arrives); the trap flag
/// is still the program's when the call returns, so it traps after its
/// next instruction: SIGTRAP, whose default action kills. The kernel takes
/// any debug trap at its entry in its stride.
pub fn mov_ss_syscall_untraced() -> Result<(), String> {
    let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
    let status = run_child(move || {
        let byte = b"x";
        // SAFETY: does not return: the trap flag stays set and the first
        // trap kills (no SIGTRAP handler).
        unsafe {
            core::arch::asm!(
                "mov ecx, ss",
                "push rcx",
                "pushfq",
                "or qword ptr [rsp], 0x100",
                "popfq",
                "mov ss, word ptr [rsp]",
                "syscall",
                "nop",
                "nop",
                "ud2",
                in("rax") SYS_WRITE,
                in("rdi") wr,
                in("rsi") byte.as_ptr(),
                in("rdx") 1,
                options(noreturn),
            );
        }
    });
    let _ = syscall::close(wr);
    let mut buf = [0u8; 4];
    let n = rt::io::read(rd, &mut buf);
    let _ = syscall::close(rd);
    expect_killed("child", status?, SIGTRAP)?;
    expect_eq("bytes the syscall wrote", n.ctx("read")?, 1)
}

/// Untraced: TF set, `mov ss, [rsp]`, `int3`: SIGTRAP.
pub fn mov_ss_int3_untraced() -> Result<(), String> {
    let status = run_child(|| {
        // SAFETY: does not return: the int3 kills (no handler).
        unsafe {
            core::arch::asm!(
                "mov ecx, ss",
                "push rcx",
                "pushfq",
                "or qword ptr [rsp], 0x100",
                "popfq",
                "mov ss, word ptr [rsp]",
                "int3",
                "ud2",
                options(noreturn),
            );
        }
    })?;
    expect_killed("child", status, SIGTRAP)
}

/// Untraced: `pop ss` (0x17) does not exist in 64-bit mode: `#UD`, SIGILL,
/// before the `syscall` after it runs.
pub fn pop_ss_untraced() -> Result<(), String> {
    let status = run_child(|| {
        // SAFETY: does not return: the #UD kills.
        unsafe {
            core::arch::asm!(
                "mov ecx, ss",
                "push rcx",
                "pushfq",
                "or qword ptr [rsp], 0x100",
                "popfq",
                ".byte 0x17",
                "syscall",
                "ud2",
                in("rax") SYS_GETPID,
                options(noreturn),
            );
        }
    })?;
    expect_killed("child", status, SIGILL)
}

/// Traced: single-step from `mov ss, [rsp]` followed by `syscall`
/// (`getpid`). The `mov ss` shadow makes the two one step, as on hardware:
/// the next stop is after the call returned, with its result in rax.
pub fn mov_ss_syscall_step() -> Result<(), String> {
    let mut tr = start(|| {
        // SAFETY: stack-balanced; clobbers are declared.
        unsafe {
            core::arch::asm!(
                "lea r12, [rip + 3f]",
                "lea r13, [rip + 2f]",
                "mov ecx, ss",
                "push rcx",
                "int3",
                "mov ss, word ptr [rsp]",
                "2: syscall",
                "3: add rsp, 8",
                "int3",
                inout("rax") SYS_GETPID => _,
                out("rcx") _,
                out("r11") _,
                out("r12") _,
                out("r13") _,
            );
        }
        0
    })?;
    let regs = tr.cont_to_int3()?;
    let (after_syscall, syscall_at) = (regs.r12, regs.r13);
    tr.set_past_int3(&regs)?;
    match tr
        .t()
        .resume(PTRACE_SINGLESTEP, |_| {})
        .ctx("PTRACE_SINGLESTEP")?
    {
        Stopped::Reached(s) if s.cause == PTRACE_STOP_SINGLESTEP => {}
        other => return Err(format!("step from mov ss: {other:?}")),
    }
    let r = tr.t().regs().ctx("read regs")?;
    rt::ensure!(
        r.rip == after_syscall,
        "step from mov ss: rip {:#x}, expected {:#x} (after the syscall at {:#x})",
        r.rip,
        after_syscall,
        syscall_at
    );
    expect_eq("getpid's result", r.rax, tr.pid)?;
    expect_eq("rflags (no TF shown)", r.rflags & TF, 0)?;
    let regs = tr.cont_to_int3()?;
    tr.set_past_int3(&regs)?;
    let (signals, status) = tr.run_to_exit(PTRACE_CONT)?;
    expect_eq("signal events", signals.len(), 0)?;
    expect_exit("tracee", status, 0)
}

/// Traced: single-step from `mov ss, [rsp]` followed by `int3`: the step
/// ends at the `int3` stop (rip on its byte); no signal.
pub fn mov_ss_int3_step() -> Result<(), String> {
    let mut tr = start(|| {
        // SAFETY: stack-balanced; clobbers are declared.
        unsafe {
            core::arch::asm!(
                "lea r12, [rip + 2f]",
                "mov ecx, ss",
                "push rcx",
                "int3",
                "mov ss, word ptr [rsp]",
                "2: int3",
                "add rsp, 8",
                out("rcx") _,
                out("r12") _,
            );
        }
        0
    })?;
    let regs = tr.cont_to_int3()?;
    let second = regs.r12;
    tr.set_past_int3(&regs)?;
    let (stopped, events) = tr
        .t()
        .resume_collect(PTRACE_SINGLESTEP)
        .ctx("PTRACE_SINGLESTEP")?;
    match stopped {
        Stopped::Breakpoint(a) if a == second => {}
        other => return Err(format!("expected the int3 at {second:#x}, got {other:?}")),
    }
    expect_eq("signal events", testkit::signals_of(&events).len(), 0)?;
    let regs = tr.t().regs().ctx("read regs")?;
    expect_eq("rip on the int3", regs.rip, second)?;
    tr.set_past_int3(&regs)?;
    let (signals, status) = tr.run_to_exit(PTRACE_CONT)?;
    expect_eq("signal events", signals.len(), 0)?;
    expect_exit("tracee", status, 0)
}

/// Traced: single-step onto `pop ss`: `#UD`, a SIGILL signal event, death.
pub fn pop_ss_step() -> Result<(), String> {
    let mut tr = start(|| {
        // SAFETY: never returns: the #UD kills.
        unsafe {
            core::arch::asm!(
                "mov ecx, ss",
                "push rcx",
                "int3",
                ".byte 0x17",
                "syscall",
                "ud2",
                in("rax") SYS_GETPID,
                options(noreturn),
            );
        }
    })?;
    let regs = tr.cont_to_int3()?;
    tr.set_past_int3(&regs)?;
    let (signals, status) = tr.run_to_exit(PTRACE_SINGLESTEP)?;
    expect_eq("signal events", signals, vec![SIGILL])?;
    expect_killed("tracee", status, SIGILL)
}

/// Traced: the program sets TF itself (`popfq`), so a debug exception
/// comes from user mode after the next instruction, on the IST stack. The
/// frame it leaves is the ordinary one: at the SIGTRAP signal stop `rip` is
/// just past that instruction and the other registers are intact. The
/// tracer discards each SIGTRAP until the program has cleared TF again
/// (four traps: after `nop`, `pushfq`, `and`, `popfq`); it then exits 0.
pub fn user_tf_traced() -> Result<(), String> {
    let mut tr = start(|| {
        // SAFETY: stack-balanced; the tracer discards the SIGTRAPs.
        unsafe {
            core::arch::asm!(
                "lea r12, [rip + 2f]",
                "int3",
                "pushfq",
                "or qword ptr [rsp], 0x100",
                "popfq",
                "nop",
                "2: pushfq",
                "and qword ptr [rsp], ~0x100",
                "popfq",
                out("r12") _,
            );
        }
        0
    })?;
    let regs = tr.cont_to_int3()?;
    let after = regs.r12;
    let callee = [regs.rbx, regs.rbp, regs.r14, regs.r15];
    tr.set_past_int3(&regs)?;
    match tr.t().resume(PTRACE_SIGNAL, |_| {}).ctx("PTRACE_SIGNAL")? {
        Stopped::Reached(s) if s.cause == PTRACE_STOP_SIGNAL && s.signal == SIGTRAP as u64 => {}
        other => return Err(format!("expected a SIGTRAP stop, got {other:?}")),
    }
    let r = tr.t().regs().ctx("read regs")?;
    expect_eq("rip at the first SIGTRAP stop", r.rip, after)?;
    expect_eq(
        "callee-saved registers",
        [r.rbx, r.rbp, r.r14, r.r15],
        callee,
    )?;
    expect_eq("rsp", r.rsp, regs.rsp)?;
    expect_eq("TF (the program's own) in rflags", r.rflags & TF, TF)?;
    let mut traps = 1;
    loop {
        match tr
            .t()
            .resume(PTRACE_SIGNAL | PTRACE_SYSEMU, |_| {})
            .ctx("resume")?
        {
            Stopped::Reached(s) if s.cause == PTRACE_STOP_SIGNAL && s.signal == SIGTRAP as u64 => {
                traps += 1;
                rt::ensure!(traps <= 4, "more than 4 SIGTRAPs");
            }
            Stopped::Exited(status) => {
                expect_eq("SIGTRAPs", traps, 4)?;
                return expect_exit("tracee", status, 0);
            }
            other => {
                return Err(format!(
                    "expected SIGTRAP stops and the exit, got {other:?}"
                ))
            }
        }
    }
}

/// `/bin/target-wx` has a writable and executable segment: `fexec` fails
/// with `ENOEXEC` and the caller runs on.
pub fn wx_image_refused() -> Result<(), String> {
    let status = run_child(|| {
        let err = rt::process::exec("/bin/target-wx", &[], &[]);
        err.errno
    })?;
    expect_exit(
        "child (its exit code is fexec's errno)",
        status,
        ENOEXEC as usize,
    )
}

/// `/bin/target-wx-shared` has no segment both writable and executable,
/// but its data shares a page with its code: `ENOEXEC` too.
pub fn wx_shared_page_refused() -> Result<(), String> {
    let status = run_child(|| {
        let err = rt::process::exec("/bin/target-wx-shared", &[], &[]);
        err.errno
    })?;
    expect_exit(
        "child (its exit code is fexec's errno)",
        status,
        ENOEXEC as usize,
    )
}

/// Code placed on the stack does not run: the stack is no-execute, so the
/// call faults (SIGSEGV) instead of returning.
pub fn stack_not_executable() -> Result<(), String> {
    let status = run_child(|| {
        let code = [0xC3u8; 16]; // ret
        let f: extern "C" fn() = {
            // SAFETY: only the address is taken; calling it is the test.
            unsafe {
                core::mem::transmute::<usize, extern "C" fn()>(core::hint::black_box(
                    code.as_ptr() as usize
                ))
            }
        };
        f();
        core::hint::black_box(&code);
        0
    })?;
    expect_killed("child that called into its stack", status, SIGSEGV)
}

/// `ret`s in writable data (atomics: interior mutability keeps them out of
/// the read-only sections).
#[used]
pub static DATA_CODE: [core::sync::atomic::AtomicU8; 16] =
    [const { core::sync::atomic::AtomicU8::new(0xC3) }; 16];

/// Code placed in writable data (`.data`) does not run either.
pub fn data_not_executable() -> Result<(), String> {
    let status = run_child(|| {
        let f: extern "C" fn() = {
            // SAFETY: only the address is taken; calling it is the test.
            unsafe {
                core::mem::transmute::<*const u8, extern "C" fn()>(
                    core::ptr::addr_of!(DATA_CODE) as *const u8
                )
            }
        };
        f();
        0
    })?;
    expect_killed("child that called into .data", status, SIGSEGV)
}

/// The program's own code cannot be written (the text is read-only).
pub fn text_not_writable() -> Result<(), String> {
    let status = run_child(|| {
        let target = text_not_writable as *const () as *mut u8;
        // SAFETY: faults: that is the test.
        unsafe { core::ptr::write_volatile(target, 0xCC) };
        0
    })?;
    expect_killed("child that wrote its text", status, SIGSEGV)
}

/// After all of the above a plain trace session still works end to end.
pub fn fresh_session() -> Result<(), String> {
    let mut tr = start(body_int3_then_push)?;
    let regs = tr.cont_to_int3()?;
    tr.set_past_int3(&regs)?;
    let (signals, status) = tr.run_to_exit(PTRACE_CONT)?;
    expect_eq("signal events", signals.len(), 0)?;
    expect_exit("tracee", status, 0)
}
