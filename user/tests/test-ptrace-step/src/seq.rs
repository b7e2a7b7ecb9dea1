//! The stepped code (hand-written instruction sequences with a label per
//! instruction) and the single-step tests that walk through it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use rt::ensure;
use rt::test::Ctx;
use syscall::flag::{O_CLOEXEC, O_RDONLY, SIGUSR1};
use syscall::number::{SYS_FEXEC, SYS_GETPID, SYS_KILL};
use tracer::{
    IntRegisters, StopInfo, Tracer, PTRACE_CONT, PTRACE_SINGLESTEP, PTRACE_STOP_BREAKPOINT,
    PTRACE_STOP_POST_SYSCALL as POST, PTRACE_STOP_PRE_SYSCALL as PRE, PTRACE_STOP_SIGNAL,
    PTRACE_STOP_SINGLESTEP, PTRACE_SYSCALL,
};

use testkit::*;

/// rflags.TF.
pub const TF: usize = 1 << 8;
/// rflags.ZF.
const ZF: usize = 1 << 6;

/// This program, which `step_across_fexec` runs again in `--exec-child` mode.
const SELF_PATH: &str = "/bin/test-ptrace-step";

core::arch::global_asm!(
    ".pushsection .text.step_seq, \"ax\"",
    // step_seq() -> pid: an int3 to stop at, arithmetic, a taken jump, a
    // getpid (the stepped `syscall`), then return its result.
    ".global step_seq",
    "step_seq:",
    "    push rbx",
    ".global step_seq_trap",
    "step_seq_trap:",
    "    int3",
    ".global step_seq_l0",
    "step_seq_l0:",
    "    mov rax, 1",
    ".global step_seq_l1",
    "step_seq_l1:",
    "    add rax, 2",
    ".global step_seq_l2",
    "step_seq_l2:",
    "    mov rbx, rax",
    ".global step_seq_l3",
    "step_seq_l3:",
    "    shl rbx, 4",
    ".global step_seq_l4",
    "step_seq_l4:",
    "    xor ecx, ecx",
    ".global step_seq_l5",
    "step_seq_l5:",
    "    lea rcx, [rbx + rax * 2]",
    ".global step_seq_l6",
    "step_seq_l6:",
    "    imul rax, rbx",
    ".global step_seq_l7",
    "step_seq_l7:",
    "    cmp rax, 144",
    ".global step_seq_l8",
    "step_seq_l8:",
    "    je step_seq_l10",
    ".global step_seq_l9",
    "step_seq_l9:",
    "    ud2",
    ".global step_seq_l10",
    "step_seq_l10:",
    "    mov eax, {getpid}",
    ".global step_seq_l11",
    "step_seq_l11:",
    "    syscall",
    ".global step_seq_l12",
    "step_seq_l12:",
    "    mov rdx, rax",
    ".global step_seq_l13",
    "step_seq_l13:",
    "    pop rbx",
    ".global step_seq_l14",
    "step_seq_l14:",
    "    ret",
    // step_kill(pid) -> result: an int3 to stop at, then
    // kill(pid, SIGUSR1) whose `syscall` is stepped.
    ".global step_kill",
    "step_kill:",
    ".global step_kill_trap",
    "step_kill_trap:",
    "    int3",
    ".global step_kill_l0",
    "step_kill_l0:",
    "    mov esi, {sigusr1}",
    ".global step_kill_l1",
    "step_kill_l1:",
    "    mov eax, {kill}",
    ".global step_kill_l2",
    "step_kill_l2:",
    "    syscall",
    "    ret",
    // step_fexec(fd, argv, argc, envp, envc) -> error: an int3 to stop at,
    // then fexec whose `syscall` is stepped.
    ".global step_fexec",
    "step_fexec:",
    "    mov r10, rcx",
    ".global step_fexec_trap",
    "step_fexec_trap:",
    "    int3",
    ".global step_fexec_l0",
    "step_fexec_l0:",
    "    mov eax, {fexec}",
    ".global step_fexec_l1",
    "step_fexec_l1:",
    "    syscall",
    "    ret",
    // step_after_getpid() -> 7: a getpid whose exit stop is the start of
    // the stepping, then two moves.
    ".global step_after_getpid",
    "step_after_getpid:",
    "    mov eax, {getpid}",
    "    syscall",
    ".global step_after_l0",
    "step_after_l0:",
    "    mov eax, 7",
    ".global step_after_l1",
    "step_after_l1:",
    "    mov ecx, 9",
    ".global step_after_l2",
    "step_after_l2:",
    "    ret",
    ".popsection",
    getpid = const SYS_GETPID,
    kill = const SYS_KILL,
    fexec = const SYS_FEXEC,
    sigusr1 = const SIGUSR1,
);

extern "C" {
    fn step_seq() -> usize;
    fn step_seq_trap();
    fn step_seq_l0();
    fn step_seq_l1();
    fn step_seq_l2();
    fn step_seq_l3();
    fn step_seq_l4();
    fn step_seq_l5();
    fn step_seq_l6();
    fn step_seq_l7();
    fn step_seq_l8();
    fn step_seq_l10();
    fn step_seq_l11();
    fn step_seq_l12();
    fn step_seq_l13();
    fn step_seq_l14();
    fn step_kill(pid: usize) -> usize;
    fn step_kill_trap();
    fn step_kill_l0();
    fn step_kill_l1();
    fn step_kill_l2();
    fn step_fexec(fd: usize, argv: usize, argc: usize, envp: usize, envc: usize) -> usize;
    fn step_fexec_trap();
    fn step_fexec_l0();
    fn step_fexec_l1();
    fn step_after_getpid() -> usize;
    fn step_after_l0();
    fn step_after_l1();
    fn step_after_l2();
}

/// The address of a label of the asm above.
fn addr(label: unsafe extern "C" fn()) -> usize {
    label as *const () as usize
}

/// The caller's rflags.
pub fn rflags() -> usize {
    let flags: usize;
    // SAFETY: pushfq/pop only touch the stack below rsp, which is ours.
    unsafe { core::arch::asm!("pushfq", "pop {}", out(reg) flags) };
    flags
}

/// A tracee that runs `step_seq` after the handshake and exits 0 if it
/// returned its pid and its rflags show no trap flag afterwards (8: wrong
/// result, 9: TF set).
fn seq_tracee() -> Result<Kid, String> {
    fork_stopped(|me| {
        // SAFETY: step_seq follows the C ABI (rbx saved and restored; rax,
        // rcx, rdx, r11 are caller-saved).
        let got = unsafe { step_seq() };
        if rflags() & TF != 0 {
            9
        } else if got != me {
            8
        } else {
            0
        }
    })
}

/// From the handshake, `PTRACE_CONT` to the int3 at `trap` (one breakpoint
/// event), then rip moved past it to `first`; returns the registers there.
fn reach_after_trap(t: &mut Tracer, trap: usize, first: usize) -> Result<IntRegisters, String> {
    let n = t.op(PTRACE_CONT).ctx("write PTRACE_CONT")?;
    ensure!(
        n == 0,
        "write PTRACE_CONT returned {}, expected 0 (int3 event)",
        n
    );
    let events = t.read_events().ctx("read events")?;
    expect_events("int3 marker", &events, &[(PTRACE_STOP_BREAKPOINT, trap, 0)])?;
    let mut r = t.regs().ctx("regs/int")?;
    ensure!(
        r.rip == trap,
        "at the int3: rip {:#x}, expected {:#x}",
        r.rip,
        trap
    );
    r.rip = first;
    t.set_regs(&r).ctx("write regs/int (rip past the int3)")?;
    Ok(r)
}

/// One `PTRACE_SINGLESTEP`: checks cause 4, no events, stop addr = rip, no
/// TF in rflags; returns the stop and the registers.
fn single_step(t: &mut Tracer, what: &str) -> Result<(StopInfo, IntRegisters), String> {
    let s = next_stop(t, PTRACE_SINGLESTEP).map_err(|e| format!("{}: {}", what, e))?;
    let r = t.regs().ctx("regs/int")?;
    check_step_stop(what, &s, &r)?;
    Ok((s, r))
}

fn check_step_stop(what: &str, s: &StopInfo, r: &IntRegisters) -> Check {
    ensure!(
        s.cause == PTRACE_STOP_SINGLESTEP,
        "{}: stop cause {:#x}, expected 4 (single-step): {}",
        what,
        s.cause,
        fmt_stop(s)
    );
    ensure!(
        s.addr == r.rip as u64,
        "{}: stop addr {:#x} != rip {:#x}",
        what,
        s.addr,
        r.rip
    );
    ensure!(
        r.rflags & TF == 0,
        "{}: rflags {:#x} as read shows TF",
        what,
        r.rflags
    );
    Ok(())
}

/// What one step of `step_seq` must leave behind.
struct Expect {
    what: &'static str,
    rip: usize,
    rax: Option<usize>,
    rbx: Option<usize>,
    rcx: Option<usize>,
    rdx: Option<usize>,
    zf: Option<bool>,
}

impl Expect {
    fn at(what: &'static str, label: unsafe extern "C" fn()) -> Expect {
        Expect {
            what,
            rip: addr(label),
            rax: None,
            rbx: None,
            rcx: None,
            rdx: None,
            zf: None,
        }
    }

    fn check(&self, r: &IntRegisters) -> Check {
        let mut bad = Vec::new();
        if r.rip != self.rip {
            bad.push(format!("rip {:#x} (expected {:#x})", r.rip, self.rip));
        }
        for (name, want, got) in [
            ("rax", self.rax, r.rax),
            ("rbx", self.rbx, r.rbx),
            ("rcx", self.rcx, r.rcx),
            ("rdx", self.rdx, r.rdx),
        ] {
            if let Some(want) = want {
                if got != want {
                    bad.push(format!("{} {:#x} (expected {:#x})", name, got, want));
                }
            }
        }
        if let Some(zf) = self.zf {
            if (r.rflags & ZF != 0) != zf {
                bad.push(format!("rflags {:#x} (expected ZF={})", r.rflags, zf as u8));
            }
        }
        ensure!(bad.is_empty(), "after `{}`: {}", self.what, bad.join(", "));
        Ok(())
    }
}

/// The expected state after each step of `step_seq` from `step_seq_l0` up
/// to the `syscall` at `step_seq_l11` (not included).
fn seq_expectations() -> Vec<Expect> {
    let mut v = Vec::new();
    let mut e = Expect::at("mov rax, 1", step_seq_l1);
    e.rax = Some(1);
    v.push(e);
    let mut e = Expect::at("add rax, 2", step_seq_l2);
    e.rax = Some(3);
    e.zf = Some(false);
    v.push(e);
    let mut e = Expect::at("mov rbx, rax", step_seq_l3);
    e.rbx = Some(3);
    v.push(e);
    let mut e = Expect::at("shl rbx, 4", step_seq_l4);
    e.rbx = Some(48);
    v.push(e);
    let mut e = Expect::at("xor ecx, ecx", step_seq_l5);
    e.rcx = Some(0);
    e.zf = Some(true);
    v.push(e);
    let mut e = Expect::at("lea rcx, [rbx + rax * 2]", step_seq_l6);
    e.rcx = Some(54);
    e.rax = Some(3);
    e.rbx = Some(48);
    v.push(e);
    let mut e = Expect::at("imul rax, rbx", step_seq_l7);
    e.rax = Some(144);
    v.push(e);
    let mut e = Expect::at("cmp rax, 144", step_seq_l8);
    e.zf = Some(true);
    v.push(e);
    v.push(Expect::at("je (taken)", step_seq_l10));
    let mut e = Expect::at("mov eax, SYS_GETPID", step_seq_l11);
    e.rax = Some(SYS_GETPID);
    e.rcx = Some(54);
    v.push(e);
    v
}

/// Steps from `step_seq_l0` to the `syscall` at `step_seq_l11`, checking
/// every step.
fn step_to_syscall(t: &mut Tracer) -> Check {
    for e in seq_expectations() {
        let (_, r) = single_step(t, e.what)?;
        e.check(&r)?;
    }
    Ok(())
}

/// Steps the `syscall` at `step_seq_l11`: the stop is right after it
/// (rip = its address + 2) with rax = the result.
fn step_the_syscall(t: &mut Tracer, pid: usize) -> Check {
    ensure!(
        addr(step_seq_l12) == addr(step_seq_l11) + 2,
        "the syscall instruction should be 2 bytes"
    );
    let (_, r) = single_step(t, "syscall (getpid)")?;
    let mut e = Expect::at("syscall (getpid)", step_seq_l12);
    e.rax = Some(pid);
    e.check(&r)
}

/// Runs the tracee to its exit with `PTRACE_CONT`: no stop and no event on
/// the way, exit 0 (it saw its own result and no TF in its rflags).
fn cont_to_exit(t: &mut Tracer, kid: &mut Kid, code: usize) -> Check {
    let (status, events) = run_to_exit(t, PTRACE_CONT)?;
    ensure!(
        events.is_empty(),
        "events after PTRACE_CONT: {}, then the tracee exited: {}",
        fmt_events(&events),
        fmt_status(status)
    );
    expect_exited("exit event", status, code)?;
    expect_exited("waitpid", kid.reap()?, code)
}

/// Every instruction of `step_seq`, one step each, with exact registers.
pub fn exact_sequence() -> Check {
    let mut kid = seq_tracee()?;
    let mut t = handshake(&kid)?;
    let start = reach_after_trap(&mut t, addr(step_seq_trap), addr(step_seq_l0))?;
    // The caller's rbx, pushed by step_seq, comes back with `pop rbx`.
    let saved_rbx = t.read_u64(start.rsp as u64).ctx("read the pushed rbx")? as usize;
    ensure!(
        saved_rbx == start.rbx,
        "pushed rbx {:#x} != rbx {:#x}",
        saved_rbx,
        start.rbx
    );
    step_to_syscall(&mut t)?;
    step_the_syscall(&mut t, kid.pid)?;
    let (_, r) = single_step(&mut t, "mov rdx, rax")?;
    let mut e = Expect::at("mov rdx, rax", step_seq_l13);
    e.rdx = Some(kid.pid);
    e.check(&r)?;
    let (_, r) = single_step(&mut t, "pop rbx")?;
    let mut e = Expect::at("pop rbx", step_seq_l14);
    e.rbx = Some(saved_rbx);
    e.check(&r)?;
    ensure!(
        r.rsp == start.rsp + 8,
        "after pop: rsp {:#x}, expected {:#x}",
        r.rsp,
        start.rsp + 8
    );
    let ret_addr = t.read_u64(r.rsp as u64).ctx("read the return address")? as usize;
    let (_, r) = single_step(&mut t, "ret")?;
    ensure!(
        r.rip == ret_addr && r.rsp == start.rsp + 16,
        "after ret: rip {:#x} rsp {:#x}, expected rip {:#x} rsp {:#x}",
        r.rip,
        r.rsp,
        ret_addr,
        start.rsp + 16
    );
    cont_to_exit(&mut t, &mut kid, 0)
}

/// A step over a `syscall` instruction is one step: it stops right after
/// the instruction with the result in rax, and no syscall stop is reported.
pub fn over_syscall() -> Check {
    let mut kid = seq_tracee()?;
    let mut t = handshake(&kid)?;
    reach_after_trap(&mut t, addr(step_seq_trap), addr(step_seq_l0))?;
    step_to_syscall(&mut t)?;
    step_the_syscall(&mut t, kid.pid)?;
    cont_to_exit(&mut t, &mut kid, 0)
}

/// A few steps, then `PTRACE_CONT`: the tracee runs to its end with no
/// stray stop or SIGTRAP, and its own rflags show no TF.
pub fn cont_after_steps() -> Check {
    let mut kid = seq_tracee()?;
    let mut t = handshake(&kid)?;
    reach_after_trap(&mut t, addr(step_seq_trap), addr(step_seq_l0))?;
    for e in seq_expectations().iter().take(3) {
        let (_, r) = single_step(&mut t, e.what)?;
        e.check(&r)?;
    }
    cont_to_exit(&mut t, &mut kid, 0)
}

/// Set by [`on_usr1`].
static HANDLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_usr1(_sig: usize) {
    HANDLED.store(true, Ordering::SeqCst);
}

/// Stepping the `syscall` of kill(getpid(), SIGUSR1) stops at the handler's
/// first instruction (rdi = the signal); after `PTRACE_CONT` the handler
/// has run and kill returned 0.
pub fn into_handler() -> Check {
    let handler = on_usr1 as *const () as usize;
    let mut kid = fork_prepared(
        || set_disposition(SIGUSR1, handler).is_ok(),
        |me| {
            // SAFETY: step_kill follows the C ABI; it only makes syscalls.
            let r = unsafe { step_kill(me) };
            match (r, HANDLED.load(Ordering::SeqCst)) {
                (0, true) => 0,
                (0, false) => 10,
                _ => 11,
            }
        },
    )?;
    let mut t = handshake(&kid)?;
    let start = reach_after_trap(&mut t, addr(step_kill_trap), addr(step_kill_l0))?;
    ensure!(
        start.rdi == kid.pid,
        "at step_kill: rdi {:#x}, expected the pid {:#x}",
        start.rdi,
        kid.pid
    );
    let (_, r) = single_step(&mut t, "mov esi, SIGUSR1")?;
    Expect::at("mov esi, SIGUSR1", step_kill_l1).check(&r)?;
    let (_, r) = single_step(&mut t, "mov eax, SYS_KILL")?;
    Expect::at("mov eax, SYS_KILL", step_kill_l2).check(&r)?;
    ensure!(
        r.rax == SYS_KILL && r.rsi == SIGUSR1 && r.rdi == kid.pid,
        "before the kill: rax {:#x} rdi {} rsi {}, expected {:#x} {} {}",
        r.rax,
        r.rdi,
        r.rsi,
        SYS_KILL,
        kid.pid,
        SIGUSR1
    );
    // The step over the syscall: the signal event, then the stop at the
    // handler's first instruction.
    let (stopped, events) = resume_ev(&mut t, PTRACE_SINGLESTEP)?;
    let s = reached("step over kill", stopped)?;
    expect_events(
        "events of the step",
        &events,
        &[(PTRACE_STOP_SIGNAL, SIGUSR1, handler)],
    )?;
    let r = t.regs().ctx("regs/int")?;
    check_step_stop("step over kill", &s, &r)?;
    ensure!(
        r.rip == handler && r.rdi == SIGUSR1,
        "after stepping kill: rip {:#x} rdi {}, expected the handler {:#x} with rdi {}",
        r.rip,
        r.rdi,
        handler,
        SIGUSR1
    );
    let (_, r) = single_step(&mut t, "the handler's first instruction")?;
    ensure!(
        r.rip != handler,
        "the handler's first instruction did not move rip ({:#x})",
        r.rip
    );
    cont_to_exit(&mut t, &mut kid, 0)
}

/// Stepping the `syscall` of a successful fexec stops at the new program's
/// entry (its ELF header's); the next step runs in the new program;
/// `PTRACE_CONT` then runs it to its exit with clean rflags.
pub fn across_fexec() -> Check {
    let entry = elf_entry(SELF_PATH)? as usize;
    let fd = syscall::open(SELF_PATH, O_RDONLY | O_CLOEXEC).ctx("open self")?;
    let argv: [&str; 2] = [SELF_PATH, "--exec-child"];
    let mut kid = fork_stopped(move |_| {
        let pairs: [[usize; 2]; 2] = argv.map(|s| [s.as_ptr() as usize, s.len()]);
        let env: [[usize; 2]; 0] = [];
        // SAFETY: step_fexec passes its arguments to fexec, which reads the
        // argument pairs (live on this stack) and the strings they point to.
        let err = unsafe {
            step_fexec(
                fd,
                pairs.as_ptr() as usize,
                pairs.len(),
                env.as_ptr() as usize,
                0,
            )
        };
        let _ = err;
        50
    })?;
    let _ = syscall::close(fd);
    let mut t = handshake(&kid)?;
    reach_after_trap(&mut t, addr(step_fexec_trap), addr(step_fexec_l0))?;
    let (_, r) = single_step(&mut t, "mov eax, SYS_FEXEC")?;
    Expect::at("mov eax, SYS_FEXEC", step_fexec_l1).check(&r)?;
    ensure!(r.rax == SYS_FEXEC, "rax {:#x}, expected SYS_FEXEC", r.rax);
    let (s, r) = single_step(&mut t, "syscall (fexec)")?;
    ensure!(
        r.rip == entry,
        "after stepping fexec: rip {:#x}, expected the new program's entry {:#x} ({})",
        r.rip,
        entry,
        fmt_stop(&s)
    );
    let argc = t.read_u64(r.rsp as u64).ctx("read argc")?;
    ensure!(argc == 2, "new program's argc {}, expected 2", argc);
    let (_, r2) = single_step(&mut t, "the new program's first instruction")?;
    ensure!(
        r2.rip > entry && r2.rip < entry + 16,
        "after the first instruction of the new program: rip {:#x} (entry {:#x})",
        r2.rip,
        entry
    );
    cont_to_exit(&mut t, &mut kid, crate::EXEC_CHILD_CODE)
}

/// `PTRACE_SINGLESTEP` from a syscall's exit stop (rip already past the
/// `syscall`, the call already reported complete) executes the next
/// instruction: the stop is after `mov eax, 7`, not a second stop at the
/// same rip.
pub fn from_syscall_exit_stop() -> Check {
    let mut kid = fork_stopped(|_| {
        // SAFETY: step_after_getpid follows the C ABI and only calls getpid.
        let r = unsafe { step_after_getpid() };
        if r == 7 && rflags() & TF == 0 {
            0
        } else {
            12
        }
    })?;
    let mut t = handshake(&kid)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("marker", &s, PRE, SYS_GETPID)?;
    let s = next_stop(&mut t, PTRACE_SYSCALL)?;
    expect_sys("marker", &s, POST, SYS_GETPID)?;
    ensure!(
        s.addr == addr(step_after_l0) as u64,
        "getpid exit stop at {:#x}, expected {:#x}",
        s.addr,
        addr(step_after_l0)
    );
    let (_, r) = single_step(&mut t, "first step after the exit stop")?;
    let mut e = Expect::at("mov eax, 7", step_after_l1);
    e.rax = Some(7);
    e.check(&r)?;
    let (_, r) = single_step(&mut t, "second step")?;
    let mut e = Expect::at("mov ecx, 9", step_after_l2);
    e.rcx = Some(9);
    e.check(&r)?;
    cont_to_exit(&mut t, &mut kid, 0)
}
