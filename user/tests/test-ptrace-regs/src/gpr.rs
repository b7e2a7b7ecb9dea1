//! `regs/int` at `int3` stops: the round trip into a running tracee, the
//! fields a tracer may not change (non-canonical rip/rsp, cs/ss/fs, rflags
//! bits) and the trap flag hidden while single-stepping.

use alloc::format;
use alloc::string::String;

use rt::errno::describe;
use rt::test::{expect_eq, expect_errno, Ctx};
use syscall::error::EINVAL;
use tracer::{
    IntRegisters, StopInfo, Stopped, PTRACE_SINGLESTEP, PTRACE_STOP_POST_SYSCALL,
    PTRACE_STOP_PRE_SYSCALL, PTRACE_STOP_SINGLESTEP, PTRACE_SYSCALL,
};

use crate::probes::{self, bp, GPR_PRESET, OUT};
use testkit::start;

pub const RFLAGS_TF: usize = 0x100;
pub const RFLAGS_IF: usize = 0x200;
pub const RFLAGS_IOPL: usize = 0x3000;
pub const RFLAGS_NT: usize = 0x4000;
pub const RFLAGS_RF: usize = 0x1_0000;
pub const RFLAGS_VM: usize = 0x2_0000;
pub const RFLAGS_AC: usize = 0x4_0000;
pub const RFLAGS_VIF: usize = 0x8_0000;
pub const RFLAGS_VIP: usize = 0x10_0000;
pub const RFLAGS_ID: usize = 0x20_0000;
/// CF PF AF ZF SF DF OF: the bits a tracer may write.
pub const RFLAGS_WRITABLE: usize = 0xCD5;

fn callee_saved(r: &IntRegisters) -> [u64; 6] {
    [r.rbx, r.rbp, r.r12, r.r13, r.r14, r.r15].map(|v| v as u64)
}

fn set_callee_saved(r: &mut IntRegisters, v: [u64; 6]) {
    r.rbx = v[0] as usize;
    r.rbp = v[1] as usize;
    r.r12 = v[2] as usize;
    r.r13 = v[3] as usize;
    r.r14 = v[4] as usize;
    r.r15 = v[5] as usize;
}

/// Values the tracer writes into the callee-saved registers.
const NEW_GPR: [u64; 6] = [
    0xA1A1_0000_0000_0001,
    0xB2B2_0000_0000_0002,
    0xC3C3_0000_0000_0003,
    0xD4D4_0000_0000_0004,
    0xE5E5_0000_0000_0005,
    0xF6F6_0000_0000_0006,
];

/// Read at an int3 stop, write several registers, read back, and have the
/// tracee report what it saw after resuming.
pub fn round_trip() -> Result<(), String> {
    let mut tr = start(|| probes::run_gpr(NEW_GPR))?;
    let before = tr.cont_to(bp::gpr1())?;
    expect_eq(
        "callee-saved registers as the tracee set them",
        callee_saved(&before),
        GPR_PRESET,
    )?;
    expect_eq("rdi (the probe's argument)", before.rdi as u64, OUT.addr())?;

    let mut w = before;
    set_callee_saved(&mut w, NEW_GPR);
    // Caller-saved registers the probe does not use between its stops.
    w.rax = 0x0A0A_0A0A_0A0A_0A0A;
    w.rcx = 0x0C0C_0C0C_0C0C_0C0C;
    w.rdx = 0x0D0D_0D0D_0D0D_0D0D;
    w.rsi = 0x5151_5151_5151_5151;
    w.r8 = 0x0808_0808_0808_0808;
    w.r9 = 0x0909_0909_0909_0909;
    w.r10 = 0x1010_1010_1010_1010;
    w.r11 = 0x1111_1111_1111_1111;
    w.rip += 1;
    tr.t().set_regs(&w).ctx("write regs/int")?;
    let back = tr.t().regs().ctx("read regs/int back")?;
    expect_eq("regs/int read right after the write", back, w)?;

    let at2 = tr.cont_to(bp::gpr2())?;
    expect_eq(
        "callee-saved at the second stop",
        callee_saved(&at2),
        NEW_GPR,
    )?;
    let kept = [
        at2.rax, at2.rcx, at2.rdx, at2.rsi, at2.r8, at2.r9, at2.r10, at2.r11,
    ];
    let want = [w.rax, w.rcx, w.rdx, w.rsi, w.r8, w.r9, w.r10, w.r11];
    expect_eq("rax rcx rdx rsi r8..r11 at the second stop", kept, want)?;
    let seen = tr.peek_u64s::<6>(OUT.addr())?;
    expect_eq("registers the tracee stored after resuming", seen, NEW_GPR)?;
    tr.finish()
}

/// One `PTRACE_SYSCALL` step: the next syscall entry or exit stop.
fn syscall_stop(tr: &mut testkit::Tracee) -> Result<StopInfo, String> {
    match tr.t().resume(PTRACE_SYSCALL, |_| {}) {
        Ok(Stopped::Reached(stop)) => Ok(stop),
        Ok(Stopped::Breakpoint(addr)) => Err(format!(
            "PTRACE_SYSCALL: the tracee executed the int3 at {:#x}",
            addr
        )),
        Ok(Stopped::Exited(status)) => Err(format!(
            "PTRACE_SYSCALL: the tracee {}",
            rt::process::describe(status)
        )),
        Err(e) => Err(format!("PTRACE_SYSCALL: {}", describe(&e))),
    }
}

/// The same round trip at the entry stop of a getpid: the registers the
/// tracer writes there survive the system call and reach the tracee.
pub fn round_trip_syscall_stop() -> Result<(), String> {
    let getpid = syscall::number::SYS_GETPID as u64;
    let mut tr = start(|| probes::run_sys(NEW_GPR))?;
    let mut found = false;
    for _ in 0..64 {
        let stop = syscall_stop(&mut tr)?;
        if stop.cause == PTRACE_STOP_PRE_SYSCALL && stop.addr == bp::sys_ret() {
            expect_eq("syscall number at the probe's entry stop", stop.nr, getpid)?;
            found = true;
            break;
        }
    }
    rt::ensure!(
        found,
        "no entry stop at {:#x} in 64 syscall stops",
        bp::sys_ret()
    );
    let before = tr.t().regs().ctx("read regs/int")?;
    expect_eq("rip at the entry stop", before.rip as u64, bp::sys_ret())?;
    expect_eq("rax at the entry stop", before.rax as u64, getpid)?;
    expect_eq(
        "callee-saved registers at the entry stop",
        callee_saved(&before),
        GPR_PRESET,
    )?;
    let mut w = before;
    set_callee_saved(&mut w, NEW_GPR);
    tr.t()
        .set_regs(&w)
        .ctx("write regs/int at the entry stop")?;
    let back = tr.t().regs().ctx("read regs/int back")?;
    expect_eq("regs/int read right after the write", back, w)?;

    let exit = syscall_stop(&mut tr)?;
    expect_eq(
        "the next stop (cause, nr, ret)",
        (exit.cause, exit.nr, exit.ret),
        (PTRACE_STOP_POST_SYSCALL, getpid, tr.pid as u64),
    )?;
    let at_exit = tr.t().regs().ctx("read regs/int at the exit stop")?;
    expect_eq(
        "callee-saved at the exit stop",
        callee_saved(&at_exit),
        NEW_GPR,
    )?;
    tr.cont_to(bp::sys())?;
    let seen = tr.peek_u64s::<7>(OUT.addr())?;
    expect_eq("registers the tracee stored", &seen[..6], &NEW_GPR[..])?;
    expect_eq("getpid's result in the tracee", seen[6], tr.pid as u64)?;
    tr.finish()
}

/// Writes `w` expecting EINVAL, then checks regs/int still reads `before`.
fn reject(
    tr: &mut testkit::Tracee,
    what: &str,
    w: &IntRegisters,
    before: &IntRegisters,
) -> Result<(), String> {
    expect_errno(what, tr.t().set_regs(w), EINVAL)?;
    let now = tr.t().regs().ctx("read regs/int")?;
    if now != *before {
        return Err(format!(
            "{}: the rejected write changed registers: before {:x?}, after {:x?}",
            what, before, now
        ));
    }
    Ok(())
}

/// Non-canonical (or kernel) rip and rsp are EINVAL, and a write that also
/// changed rbx changes nothing; the highest user address is accepted.
pub fn rip_rsp_checked() -> Result<(), String> {
    let mut tr = start(|| probes::run_gpr(GPR_PRESET))?;
    let before = tr.cont_to(bp::gpr1())?;
    for bad in [
        0x0000_8000_0000_0000usize,
        0xFFFF_8000_0000_0000,
        0x8000_0000_0000_0000,
        0xFFFF_FFFF_FFFF_F000,
    ] {
        let mut w = before;
        w.rbx = 0xBAD0_BAD0_BAD0_BAD0;
        w.rip = bad;
        reject(&mut tr, &format!("rip {:#x}", bad), &w, &before)?;
        let mut w = before;
        w.rbx = 0xBAD0_BAD0_BAD0_BAD0;
        w.rsp = bad;
        reject(&mut tr, &format!("rsp {:#x}", bad), &w, &before)?;
    }
    // The top of user space is a valid (if useless) value.
    let mut w = before;
    w.rip = 0x0000_7FFF_FFFF_FFFF;
    w.rsp = 0x0000_7FFF_FFFF_FFF8;
    tr.t()
        .set_regs(&w)
        .ctx("write rip 0x7fffffffffff, rsp 0x7ffffffffff8")?;
    let back = tr.t().regs().ctx("read regs/int")?;
    expect_eq("rip, rsp read back", (back.rip, back.rsp), (w.rip, w.rsp))?;
    tr.t().set_regs(&before).ctx("restore the registers")?;

    // The tracee runs on with its own values: rbx was never changed.
    tr.skip_int3()?;
    tr.cont_to(bp::gpr2())?;
    let seen = tr.peek_u64s::<6>(OUT.addr())?;
    expect_eq("registers the tracee stored", seen, GPR_PRESET)?;
    tr.finish()
}

/// cs, ss and fs written values are ignored; the rest of the write applies.
pub fn segments_ignored() -> Result<(), String> {
    let mut expected = GPR_PRESET;
    expected[0] = 0x5E65_0000_0000_00B1;
    let mut tr = start(move || probes::run_gpr(expected))?;
    let before = tr.cont_to(bp::gpr1())?;
    for (cs, ss, fs) in [
        (0x08, 0x10, 0x1B),
        (0, 0, 0),
        (0x2B | 3, 0x23, 0x33),
        (!0, !0, !0),
    ] {
        let mut w = before;
        w.cs = cs;
        w.ss = ss;
        w.fs = fs;
        w.rbx = expected[0] as usize;
        tr.t()
            .set_regs(&w)
            .ctx(&format!("write cs {:#x} ss {:#x} fs {:#x}", cs, ss, fs))?;
        let back = tr.t().regs().ctx("read regs/int")?;
        expect_eq(
            &format!("cs ss fs after writing {:#x} {:#x} {:#x}", cs, ss, fs),
            (back.cs, back.ss, back.fs),
            (before.cs, before.ss, before.fs),
        )?;
        expect_eq("rbx written alongside", back.rbx, w.rbx)?;
    }
    tr.skip_int3()?;
    tr.cont_to(bp::gpr2())?;
    let seen = tr.peek_u64s::<6>(OUT.addr())?;
    expect_eq("registers the tracee stored", seen, expected)?;
    tr.finish()
}

/// Setting TF IOPL NT RF VM AC VIF VIP ID or clearing IF is ignored.
pub fn rflags_forbidden_ignored() -> Result<(), String> {
    let mut tr = start(probes::run_flags)?;
    let before = tr.cont_to(bp::flags1())?;
    rt::ensure!(
        before.rflags & RFLAGS_IF != 0 && before.rflags & (RFLAGS_IOPL | RFLAGS_TF) == 0,
        "rflags at the stop: {:#x} (expected IF set, IOPL 0, TF clear)",
        before.rflags
    );
    let forbidden = [
        ("TF", RFLAGS_TF),
        ("IOPL", RFLAGS_IOPL),
        ("NT", RFLAGS_NT),
        ("RF", RFLAGS_RF),
        ("VM", RFLAGS_VM),
        ("AC", RFLAGS_AC),
        ("VIF", RFLAGS_VIF),
        ("VIP", RFLAGS_VIP),
        ("ID", RFLAGS_ID),
        ("bit 22..63", !0x3F_FFFF),
    ];
    let mut all = 0;
    for (name, bit) in forbidden {
        all |= bit;
        let mut w = before;
        w.rflags = before.rflags | bit;
        tr.t()
            .set_regs(&w)
            .ctx(&format!("write rflags with {} set", name))?;
        let back = tr.t().regs().ctx("read regs/int")?;
        expect_eq(
            &format!("rflags after setting {}", name),
            back.rflags,
            before.rflags,
        )?;
    }
    let mut w = before;
    w.rflags = before.rflags & !RFLAGS_IF;
    tr.t().set_regs(&w).ctx("write rflags with IF clear")?;
    let back = tr.t().regs().ctx("read regs/int")?;
    expect_eq("rflags after clearing IF", back.rflags, before.rflags)?;
    w.rflags = (before.rflags | all) & !RFLAGS_IF;
    tr.t()
        .set_regs(&w)
        .ctx("write rflags with every forbidden bit")?;
    let back = tr.t().regs().ctx("read regs/int")?;
    expect_eq(
        "rflags after every forbidden change",
        back.rflags,
        before.rflags,
    )?;

    // The tracee runs on (a TF that stuck would trap it) and sees none of it.
    tr.skip_int3()?;
    tr.cont_to(bp::flags2())?;
    let seen = tr.peek_u64s::<1>(OUT.addr())?[0] as usize;
    let bad = RFLAGS_TF | RFLAGS_IOPL | RFLAGS_NT | RFLAGS_AC | RFLAGS_ID | RFLAGS_VIF | RFLAGS_VIP;
    rt::ensure!(
        seen & bad == 0 && seen & RFLAGS_IF != 0,
        "rflags the tracee pushed: {:#x} (expected IF set, none of {:#x})",
        seen,
        bad
    );
    tr.skip_int3()?;
    tr.cont_to(bp::flags3())?;
    tr.finish()
}

/// CF PF AF ZF SF DF OF can be set and cleared, and the tracee sees them.
pub fn rflags_writable() -> Result<(), String> {
    let mut tr = start(probes::run_flags)?;
    let before = tr.cont_to(bp::flags1())?;
    let mut w = before;
    w.rflags = before.rflags | RFLAGS_WRITABLE;
    w.rip += 1;
    tr.t().set_regs(&w).ctx("write rflags | 0xcd5")?;
    let back = tr.t().regs().ctx("read regs/int")?;
    expect_eq(
        "rflags read back after setting CF..OF",
        back.rflags,
        w.rflags,
    )?;

    let at2 = tr.cont_to(bp::flags2())?;
    let pushed = tr.peek_u64s::<1>(OUT.addr())?[0] as usize;
    let carry = tr.peek::<1>(OUT.addr() + 8)?[0];
    expect_eq(
        "CF PF AF ZF SF DF OF the tracee pushed",
        pushed & RFLAGS_WRITABLE,
        RFLAGS_WRITABLE,
    )?;
    expect_eq("setc in the tracee", carry, 1)?;

    let mut w = at2;
    w.rflags = at2.rflags & !RFLAGS_WRITABLE;
    w.rip += 1;
    tr.t().set_regs(&w).ctx("write rflags & !0xcd5")?;
    let back = tr.t().regs().ctx("read regs/int")?;
    expect_eq(
        "rflags read back after clearing CF..OF",
        back.rflags,
        w.rflags,
    )?;
    tr.cont_to(bp::flags3())?;
    let pushed = tr.peek_u64s::<1>(OUT.addr() + 16)?[0] as usize;
    let carry = tr.peek::<1>(OUT.addr() + 24)?[0];
    expect_eq(
        "CF..OF the tracee pushed after clearing",
        pushed & RFLAGS_WRITABLE,
        0,
    )?;
    expect_eq("setc in the tracee after clearing", carry, 0)?;
    tr.finish()
}

/// Single-stepping: rflags as read never shows the kernel's TF, and writing
/// back what was read (TF clear) does not stop the stepping.
pub fn tf_hidden_while_stepping() -> Result<(), String> {
    let mut tr = start(|| probes::run_gpr(GPR_PRESET))?;
    tr.cont_to(bp::gpr1())?;
    tr.skip_int3()?;
    tr.cont_to(bp::gpr2())?;
    tr.skip_int3()?;
    // After the int3 come `pop r15` and `pop r14`, two bytes each.
    for step in 1..=2u64 {
        let stop = match tr.t().resume(PTRACE_SINGLESTEP, |_| {}) {
            Ok(Stopped::Reached(stop)) => stop,
            Ok(Stopped::Breakpoint(addr)) => {
                return Err(format!(
                    "single-step {}: the tracee executed the int3 at {:#x}",
                    step, addr
                ))
            }
            Ok(Stopped::Exited(status)) => {
                return Err(format!(
                    "single-step {}: the tracee {}",
                    step,
                    rt::process::describe(status)
                ))
            }
            Err(e) => return Err(format!("single-step {}: {}", step, describe(&e))),
        };
        let want_rip = bp::gpr2() + 1 + 2 * step;
        expect_eq("stop cause", stop.cause, PTRACE_STOP_SINGLESTEP)?;
        expect_eq("stop addr", stop.addr, want_rip)?;
        let regs = tr.t().regs().ctx("read regs/int")?;
        expect_eq("rip after the step", regs.rip as u64, want_rip)?;
        rt::ensure!(
            regs.rflags & RFLAGS_TF == 0,
            "step {}: rflags as read shows TF: {:#x}",
            step,
            regs.rflags
        );
        tr.t()
            .set_regs(&regs)
            .ctx("write back the registers read")?;
    }
    // PTRACE_CONT from a stepping stop: the tracee must run to its end.
    let status = tr.cont_to_exit()?;
    rt::test::expect_exit("tracee", status, 0)
}
