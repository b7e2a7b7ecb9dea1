//! Tests for signals: handlers and sigreturn, masks, ignore, default actions, stop/continue,
//! fault signals, and kill permission and lookup errors.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

use rt::process::{describe, fork_with, now_ms, sleep_ms, wait, wait_timeout, waitpid};
use rt::test::{expect_eq, expect_errno, expect_exit, expect_killed, in_child, Ctx};
use rt::{ensure, Tests};
use syscall::data::SigAction;
use syscall::error::{EPERM, ESRCH};
use syscall::flag::*;
use syscall::number::SYS_KILL;

rt::entry!(main);

fn main(_args: &[&str]) -> i32 {
    let mut t = Tests::new();
    testkit::run(&mut t, "sigaction_returns_old_action", sigaction_old);
    testkit::run(&mut t, "handler_runs_on_kill_self", handler_runs);
    testkit::run(&mut t, "sigreturn_restores_registers", registers_preserved);
    testkit::run(&mut t, "handler_inherited_by_fork", handler_inherited);
    testkit::run(
        &mut t,
        "blocked_signal_pending_until_unblocked",
        blocked_then_unblocked,
    );
    testkit::run(&mut t, "sig_ign_ignores", sig_ign);
    testkit::run(
        &mut t,
        "default_terminate_kill_self",
        default_terminate_self,
    );
    testkit::run(
        &mut t,
        "default_terminate_from_parent",
        default_terminate_from_parent,
    );
    testkit::run(&mut t, "default_ignore_chld_urg_winch", default_ignore);
    testkit::run(&mut t, "sigstop_wuntraced_then_sigcont", stop_and_continue);
    testkit::run(&mut t, "sigkill_stopped_child", kill_stopped);
    testkit::run(&mut t, "sigsegv_write_0x10", || {
        fault(write_low_address, SIGSEGV)
    });
    testkit::run(&mut t, "sigsegv_read_kernel_address", || {
        fault(read_kernel_address, SIGSEGV)
    });
    testkit::run(&mut t, "sigill_ud2", || {
        fault(undefined_instruction, SIGILL)
    });
    testkit::run(&mut t, "sigfpe_divide_by_zero", || {
        fault(divide_by_zero, SIGFPE)
    });
    testkit::run(&mut t, "sigtrap_int3_untraced", || {
        fault(breakpoint, SIGTRAP)
    });
    testkit::run(&mut t, "kill_missing_pid_esrch", kill_missing);
    testkit::run(&mut t, "kill_root_as_user_eperm", kill_root_as_user);
    testkit::run(&mut t, "root_kills_user_process", root_kills_user);
    t.finish()
}

static HITS: AtomicUsize = AtomicUsize::new(0);
static LAST_SIG: AtomicUsize = AtomicUsize::new(0);

/// Leaves every caller-saved register holding garbage, so a kernel that does
/// not restore them on sigreturn is caught.
#[inline(never)]
fn scramble_registers() {
    // SAFETY: only writes registers that are declared as clobbered.
    unsafe {
        asm!(
            "mov rax, -1",
            "mov rcx, -1",
            "mov rdx, -1",
            "mov rsi, -1",
            "mov rdi, -1",
            "mov r8, -1",
            "mov r9, -1",
            "mov r10, -1",
            "mov r11, -1",
            out("rax") _,
            out("rcx") _,
            out("rdx") _,
            out("rsi") _,
            out("rdi") _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
        );
    }
}

extern "C" fn on_signal(sig: usize) {
    HITS.fetch_add(1, Ordering::SeqCst);
    LAST_SIG.store(sig, Ordering::SeqCst);
    scramble_registers();
}

extern "C" fn other_handler(_sig: usize) {}

type Handler = Option<extern "C" fn(usize)>;

/// The `SIG_IGN` disposition (the value 1 in the handler slot).
fn sig_ign_handler() -> Handler {
    // SAFETY: Option<extern "C" fn> has the size of usize and 1 is a valid
    // non-null function pointer value; the kernel treats it as SIG_IGN and
    // never calls it.
    unsafe { core::mem::transmute::<usize, Handler>(SIG_IGN) }
}

fn handler_addr(h: Handler) -> usize {
    h.map_or(0, |f| f as usize)
}

/// Installs `handler` for `sig`; returns the previous action.
fn set_handler(sig: usize, handler: Handler) -> Result<SigAction, String> {
    let act = SigAction {
        sa_handler: handler,
        sa_mask: [0; 2],
        sa_flags: SigActionFlags::empty(),
    };
    let mut old = SigAction::default();
    syscall::sigaction(sig, Some(&act), Some(&mut old)).ctx("sigaction")?;
    Ok(old)
}

fn set_default(sig: usize) {
    let _ = set_handler(sig, None);
}

fn reset_hits() {
    HITS.store(0, Ordering::SeqCst);
    LAST_SIG.store(0, Ordering::SeqCst);
}

fn getpid() -> Result<usize, String> {
    syscall::getpid().ctx("getpid")
}

fn sigaction_old() -> Result<(), String> {
    let first = set_handler(SIGUSR1, Some(on_signal))?;
    let second = set_handler(SIGUSR1, Some(other_handler));
    let third = set_handler(SIGUSR1, None);
    expect_eq(
        "initial SIGUSR1 handler (SIG_DFL = 0)",
        handler_addr(first.sa_handler),
        0,
    )?;
    expect_eq(
        "old handler returned by the second sigaction",
        handler_addr(second?.sa_handler),
        on_signal as *const () as usize,
    )?;
    expect_eq(
        "old handler returned by the third sigaction",
        handler_addr(third?.sa_handler),
        other_handler as *const () as usize,
    )
}

fn handler_runs() -> Result<(), String> {
    reset_hits();
    set_handler(SIGUSR1, Some(on_signal))?;
    let me = getpid()?;
    let r = syscall::kill(me, SIGUSR1);
    let hits = HITS.load(Ordering::SeqCst);
    set_default(SIGUSR1);
    r.ctx("kill(self, SIGUSR1)")?;
    expect_eq("handler runs before kill returns", hits, 1)?;
    expect_eq(
        "signal number passed to the handler",
        LAST_SIG.load(Ordering::SeqCst),
        SIGUSR1,
    )
}

fn registers_preserved() -> Result<(), String> {
    const NAMES: [&str; 13] = [
        "rax (kill result)",
        "rbx",
        "rbp",
        "r12",
        "r13",
        "r14",
        "r15",
        "rdi",
        "rsi",
        "rdx",
        "r8",
        "r9",
        "r10",
    ];
    reset_hits();
    set_handler(SIGUSR1, Some(on_signal))?;
    let me = getpid()?;
    // out[0..13] follow NAMES; out[13] is rsp before the syscall, out[14] after.
    let mut out = [0usize; 15];
    // SAFETY: rbx and rbp are saved on the stack and restored before the asm
    // ends; every other register written is declared as clobbered; `out` is a
    // live array of 15 words, written through the pointer kept on the stack.
    unsafe {
        asm!(
            "push rbx",
            "push rbp",
            "push r11",
            "mov [r11 + 104], rsp",
            "mov rbx, 0x1111111111111111",
            "mov rbp, 0x2222222222222222",
            "mov r12, 0x3333333333333333",
            "mov r13, 0x4444444444444444",
            "mov r14, 0x5555555555555555",
            "mov r15, 0x6666666666666666",
            "mov rdx, 0x7777777777777777",
            "mov r8, 0x0888888888888888",
            "mov r9, 0x0999999999999999",
            "mov r10, 0x0aaaaaaaaaaaaaaa",
            "mov eax, {nr}",
            "syscall",
            "mov rcx, rax",
            "mov rax, [rsp]",
            "mov [rax + 112], rsp",
            "add rsp, 8",
            "mov [rax], rcx",
            "mov [rax + 8], rbx",
            "mov [rax + 16], rbp",
            "mov [rax + 24], r12",
            "mov [rax + 32], r13",
            "mov [rax + 40], r14",
            "mov [rax + 48], r15",
            "mov [rax + 56], rdi",
            "mov [rax + 64], rsi",
            "mov [rax + 72], rdx",
            "mov [rax + 80], r8",
            "mov [rax + 88], r9",
            "mov [rax + 96], r10",
            "pop rbp",
            "pop rbx",
            nr = const SYS_KILL,
            inout("r11") out.as_mut_ptr() => _,
            inout("rdi") me => _,
            inout("rsi") SIGUSR1 => _,
            out("rax") _,
            out("rcx") _,
            out("rdx") _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
        );
    }
    let hits = HITS.load(Ordering::SeqCst);
    set_default(SIGUSR1);
    let expected: [usize; 13] = [
        0,
        0x1111111111111111,
        0x2222222222222222,
        0x3333333333333333,
        0x4444444444444444,
        0x5555555555555555,
        0x6666666666666666,
        me,
        SIGUSR1,
        0x7777777777777777,
        0x0888888888888888,
        0x0999999999999999,
        0x0aaaaaaaaaaaaaaa,
    ];
    ensure!(
        hits == 1,
        "handler ran {} times during kill(self) (expected 1), so nothing was tested",
        hits
    );
    let mut wrong = String::new();
    for (i, name) in NAMES.iter().enumerate() {
        if out[i] != expected[i] {
            wrong += &format!(" {}: expected {:#x}, got {:#x};", name, expected[i], out[i]);
        }
    }
    if out[13] != out[14] {
        wrong += &format!(" rsp: expected {:#x}, got {:#x};", out[13], out[14]);
    }
    ensure!(wrong.is_empty(), "changed across the handler:{}", wrong);
    Ok(())
}

fn handler_inherited() -> Result<(), String> {
    set_handler(SIGUSR1, Some(on_signal))?;
    let r = in_child(|| {
        reset_hits();
        syscall::kill(getpid()?, SIGUSR1).ctx("kill(self, SIGUSR1) in child")?;
        expect_eq(
            "handler runs in the forked child",
            HITS.load(Ordering::SeqCst),
            1,
        )
    });
    set_default(SIGUSR1);
    r
}

fn blocked_then_unblocked() -> Result<(), String> {
    reset_hits();
    set_handler(SIGUSR2, Some(on_signal))?;
    let bit = [1u64 << (SIGUSR2 - 1), 0];
    let mut old = [0u64; 2];
    let r = (|| {
        syscall::sigprocmask(SIG_BLOCK, Some(&bit), Some(&mut old)).ctx("sigprocmask(BLOCK)")?;
        syscall::kill(getpid()?, SIGUSR2).ctx("kill(self, SIGUSR2)")?;
        let while_blocked = HITS.load(Ordering::SeqCst);
        let mut cur = [0u64; 2];
        syscall::sigprocmask(SIG_BLOCK, Some(&[0, 0]), Some(&mut cur))
            .ctx("sigprocmask(read back)")?;
        syscall::sigprocmask(SIG_UNBLOCK, Some(&bit), None).ctx("sigprocmask(UNBLOCK)")?;
        let after = HITS.load(Ordering::SeqCst);
        expect_eq("handler runs while blocked", while_blocked, 0)?;
        ensure!(
            cur[0] & bit[0] != 0,
            "mask read back {:#x} lacks bit {} for SIGUSR2",
            cur[0],
            SIGUSR2 - 1
        );
        expect_eq("handler runs on unblock (count)", after, 1)?;
        expect_eq(
            "handler signal number",
            LAST_SIG.load(Ordering::SeqCst),
            SIGUSR2,
        )
    })();
    let _ = syscall::sigprocmask(SIG_SETMASK, Some(&old), None);
    set_default(SIGUSR2);
    r
}

fn sig_ign() -> Result<(), String> {
    in_child(|| {
        set_handler(SIGUSR1, sig_ign_handler())?;
        set_handler(SIGTERM, sig_ign_handler())?;
        let me = getpid()?;
        syscall::kill(me, SIGUSR1).ctx("kill(self, SIGUSR1)")?;
        syscall::kill(me, SIGTERM).ctx("kill(self, SIGTERM)")?;
        let old = set_handler(SIGUSR1, None)?;
        expect_eq(
            "old disposition reads back as SIG_IGN",
            handler_addr(old.sa_handler),
            SIG_IGN,
        )
    })
}

fn default_terminate_self() -> Result<(), String> {
    let pid = fork_with(|| {
        if let Ok(me) = syscall::getpid() {
            let _ = syscall::kill(me, SIGTERM);
        }
        let _ = sleep_ms(50);
        0
    })
    .ctx("clone")?;
    let status = wait(pid).ctx("waitpid")?;
    expect_killed("child that sent itself SIGTERM", status, SIGTERM)
}

/// Spins (yielding) for `ms` milliseconds.
fn spin_for(ms: u64) {
    let end = now_ms() + ms;
    while now_ms() < end {
        let _ = syscall::sched_yield();
    }
}

/// Kills and reaps a child left behind by a failed check.
fn reap(pid: usize) {
    let _ = syscall::kill(pid, SIGKILL);
    let _ = wait(pid);
}

fn default_terminate_from_parent() -> Result<(), String> {
    let pid = fork_with(|| {
        spin_for(5000);
        3
    })
    .ctx("clone")?;
    let _ = sleep_ms(10);
    if let Err(e) = syscall::kill(pid, SIGUSR1) {
        reap(pid);
        return Err(format!("kill(child, SIGUSR1): {}", rt::errno::describe(&e)));
    }
    let status = wait(pid).ctx("waitpid")?;
    expect_killed("child sent SIGUSR1", status, SIGUSR1)
}

fn default_ignore() -> Result<(), String> {
    let pid = fork_with(|| {
        let Ok(me) = syscall::getpid() else {
            return 2;
        };
        for sig in [SIGCHLD, SIGURG, SIGWINCH] {
            if syscall::kill(me, sig).is_err() {
                return 3;
            }
        }
        let _ = sleep_ms(20);
        0
    })
    .ctx("clone")?;
    let status = wait(pid).ctx("waitpid")?;
    expect_exit(
        "child that sent itself SIGCHLD, SIGURG, SIGWINCH (3 = kill failed)",
        status,
        0,
    )
}

fn stop_and_continue() -> Result<(), String> {
    // The child runs for 600 ms of wall time, then exits 0. We stop it at
    // once and keep it stopped past that deadline: if it exits meanwhile,
    // SIGSTOP did not stop it.
    let pid = fork_with(|| {
        spin_for(600);
        0
    })
    .ctx("clone")?;
    let r = (|| {
        syscall::kill(pid, SIGSTOP).ctx("kill(child, SIGSTOP)")?;
        let stopped = wait_timeout(pid, WaitFlags::WUNTRACED, 3000).ctx("waitpid(WUNTRACED)")?;
        match stopped {
            Some(st) if wifstopped(st) && wstopsig(st) == SIGSTOP => {}
            Some(st) => {
                return Err(format!(
                    "WUNTRACED: expected stopped by SIGSTOP, got {}",
                    describe(st)
                ))
            }
            None => return Err(String::from("WUNTRACED: no stop reported within 3 s")),
        }
        sleep_ms(800).ctx("nanosleep")?;
        let (got, st) = waitpid(pid, WaitFlags::WNOHANG).ctx("waitpid(WNOHANG)")?;
        ensure!(
            got == 0,
            "stopped child ran on: waitpid(WNOHANG) reported {}",
            describe(st)
        );
        syscall::kill(pid, SIGCONT).ctx("kill(child, SIGCONT)")?;
        match wait_timeout(pid, WaitFlags::empty(), 3000).ctx("waitpid")? {
            Some(st) => expect_exit("child after SIGCONT", st, 0),
            None => Err(String::from("child did not exit within 3 s of SIGCONT")),
        }
    })();
    if r.is_err() {
        reap(pid);
    }
    r
}

fn kill_stopped() -> Result<(), String> {
    let pid = fork_with(|| {
        spin_for(5000);
        3
    })
    .ctx("clone")?;
    let r = (|| {
        syscall::kill(pid, SIGSTOP).ctx("kill(child, SIGSTOP)")?;
        match wait_timeout(pid, WaitFlags::WUNTRACED, 3000).ctx("waitpid(WUNTRACED)")? {
            Some(st) if wifstopped(st) => {}
            Some(st) => return Err(format!("WUNTRACED: expected stopped, got {}", describe(st))),
            None => return Err(String::from("WUNTRACED: no stop reported within 3 s")),
        }
        syscall::kill(pid, SIGKILL).ctx("kill(child, SIGKILL)")?;
        match wait_timeout(pid, WaitFlags::empty(), 3000).ctx("waitpid")? {
            Some(st) => expect_killed("stopped child sent SIGKILL", st, SIGKILL),
            None => Err(String::from(
                "stopped child not killed within 3 s of SIGKILL",
            )),
        }
    })();
    if r.is_err() {
        reap(pid);
    }
    r
}

fn write_low_address() {
    // SAFETY: deliberately faults: nothing is mapped at 0x10 and the child
    // running this is expected to die of SIGSEGV.
    unsafe { core::ptr::write_volatile(0x10 as *mut u32, 1) };
}

fn read_kernel_address() {
    // SAFETY: deliberately faults: the kernel half is not user-accessible.
    let v = unsafe { core::ptr::read_volatile(0xffff_8000_0000_0000usize as *const u64) };
    core::hint::black_box(v);
}

fn undefined_instruction() {
    // SAFETY: ud2 raises #UD on purpose; it touches no registers or memory.
    unsafe { asm!("ud2", options(nomem, nostack)) };
}

fn divide_by_zero() {
    // SAFETY: raises #DE on purpose; only writes the declared registers.
    unsafe {
        asm!(
            "xor edx, edx",
            "xor ecx, ecx",
            "mov eax, 1",
            "div ecx",
            out("rax") _,
            out("rcx") _,
            out("rdx") _,
            options(nomem, nostack),
        )
    };
}

fn breakpoint() {
    // SAFETY: int3 raises #BP on purpose; it touches no registers or memory.
    unsafe { asm!("int3", options(nomem, nostack)) };
}

/// Runs `f` in a child, which exits 0 if it survives; expects death by `sig`.
fn fault(f: fn(), sig: usize) -> Result<(), String> {
    let pid = fork_with(|| {
        f();
        0
    })
    .ctx("clone")?;
    let status = wait(pid).ctx("waitpid")?;
    expect_killed("faulting child", status, sig)
}

fn kill_missing() -> Result<(), String> {
    let pid = fork_with(|| 0).ctx("clone")?;
    wait(pid).ctx("waitpid")?;
    expect_errno("kill of a reaped child", syscall::kill(pid, SIGTERM), ESRCH)?;
    expect_errno("kill(99999)", syscall::kill(99_999, SIGCHLD), ESRCH)
}

fn kill_root_as_user() -> Result<(), String> {
    // If the kernel wrongly delivers the signal, ignoring it keeps us alive.
    let old = set_handler(SIGUSR2, sig_ign_handler())?;
    let parent = getpid()?;
    let r = in_child(|| {
        syscall::setreuid(1000, 1000).ctx("setreuid(1000, 1000)")?;
        expect_errno(
            "kill(root parent, SIGUSR2) as uid 1000",
            syscall::kill(parent, SIGUSR2),
            EPERM,
        )?;
        syscall::kill(getpid()?, SIGCHLD).ctx("kill(self, SIGCHLD) as uid 1000")?;
        Ok(())
    });
    let _ = set_handler(SIGUSR2, old.sa_handler);
    r
}

fn root_kills_user() -> Result<(), String> {
    let (rd, wr) = rt::io::pipe(0).ctx("pipe2")?;
    let pid = fork_with(|| {
        let _ = syscall::close(rd);
        if syscall::setreuid(1000, 1000).is_err() {
            return 4;
        }
        let _ = rt::io::write_all(wr, b"r");
        spin_for(5000);
        3
    })
    .ctx("clone")?;
    let _ = syscall::close(wr);
    let mut b = [0u8; 1];
    let ready = rt::io::read_full(rd, &mut b);
    let _ = syscall::close(rd);
    let r = (|| {
        ensure!(
            matches!(ready, Ok(1)),
            "child never reported dropping to uid 1000: {}",
            rt::errno::describe_result(&ready)
        );
        syscall::kill(pid, SIGTERM).ctx("kill(uid-1000 child, SIGTERM) as root")?;
        Ok(())
    })();
    if r.is_err() {
        reap(pid);
        return r;
    }
    let status = wait(pid).ctx("waitpid")?;
    expect_killed("uid-1000 child", status, SIGTERM)
}
