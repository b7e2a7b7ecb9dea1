//! The security matrix cases that no other test program covers, each
//! named `matrix_case_N_...` after its number in `docs/security.md`.

use alloc::format;
use alloc::string::String;

use rt::ensure;
use rt::process::{self, sleep_ms};
use rt::test::{expect_eq, expect_errno, expect_exit, expect_killed, Ctx};
use syscall::data::Stat;
use syscall::error::{EBUSY, EINVAL, EPERM, ESRCH};
use syscall::flag::{O_EXCL, O_RDONLY, O_RDWR, O_WRONLY, SIGKILL};
use tracer::{Stopped, Tracer, PTRACE_CONT, PTRACE_STOP_POST_SYSCALL, PTRACE_SYSCALL};

use testkit::*;

pub const TESTS: &[Entry] = &[
    (
        "matrix_case_5_mem_refused_at_open_and_dup",
        case_5_mem_refused_at_open_and_dup,
        10_000,
    ),
    (
        "matrix_case_6_mem_without_session",
        case_6_mem_without_session,
        10_000,
    ),
    (
        "matrix_case_7_excl_needs_trace_permission",
        case_7_excl_needs_trace_permission,
        10_000,
    ),
    (
        "matrix_case_10_idle_untraceable_root_may_trace_init",
        case_10_idle_untraceable_root_may_trace_init,
        10_000,
    ),
    (
        "matrix_case_12_exec_keeps_ids_while_traced",
        case_12_exec_keeps_ids_while_traced,
        20_000,
    ),
    (
        "matrix_case_14_attach_while_execing",
        case_14_attach_while_execing,
        60_000,
    ),
    (
        "matrix_case_16_regs_write_racing_sigkill",
        case_16_regs_write_racing_sigkill,
        10_000,
    ),
    (
        "matrix_case_19_mov_ss_then_int3_or_syscall",
        case_19_mov_ss_then_int3_or_syscall,
        20_000,
    ),
    (
        "matrix_case_20_text_write_is_private",
        case_20_text_write_is_private,
        10_000,
    ),
    (
        "matrix_case_23_handles_never_follow_a_new_pid",
        case_23_handles_never_follow_a_new_pid,
        20_000,
    ),
];

/// Every `proc:` file but `status`.
const GUARDED: [&str; 6] = ["trace", "regs/int", "regs/float", "regs/env", "mem", "stop"];

/// Case 5 (S4): a process that may not trace the target cannot reach its
/// `mem` at all: not by `open` with any access mode, not by `dup` from a
/// `status` handle it may hold, not as the target's same-user parent once
/// the target is root's. Control: the root parent opens and reads it.
fn case_5_mem_refused_at_open_and_dup() -> Check {
    let root = me();
    let mut kid = Kid::spawn(|| nap_forever())?;
    // Control: root (an ancestor) reads the child's memory.
    let fd = tracer::open_proc(kid.pid, "mem", O_RDONLY).ctx("root opens mem")?;
    let _ = syscall::close(fd);
    let target = kid.pid;
    let verdict = rt::test::in_child(move || {
        // Opened while still root: a status handle is anyone's.
        let status = tracer::open_proc(root, "status", O_RDONLY).ctx("open status")?;
        become_user(1000)?;
        for pid in [root, target] {
            for flags in [O_RDONLY, O_WRONLY, O_RDWR] {
                expect_errno(
                    &format!("uid 1000 opens proc:{pid}/mem flags {flags:#x}"),
                    tracer::open_proc(pid, "mem", flags),
                    EPERM,
                )?;
            }
        }
        expect_errno(
            "dup(status of root's process, \"mem\") as uid 1000",
            syscall::dup(status, b"mem"),
            EPERM,
        )
    });
    kid.kill();
    verdict
}

/// A value the tracee of case 6 watches.
static WATCHED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0x1111);

/// Case 6 (S5), the policy: `mem` needs the permission to trace, not a
/// trace session. An ancestor reads and writes the memory of a running,
/// untraced child: the child sees the write (it exits with 7 once it does)
/// and was never traced (`tracer=0` throughout).
fn case_6_mem_without_session() -> Check {
    let mut kid = Kid::spawn(|| loop {
        if WATCHED.load(core::sync::atomic::Ordering::SeqCst) == 0x2222 {
            return 7;
        }
        let _ = sleep_ms(1);
    })?;
    let addr = &WATCHED as *const _ as u64;
    let mem = tracer::open_proc(kid.pid, "mem", O_RDWR).ctx("open mem")?;
    let result = (|| {
        let (_, tracer) = state_of(kid.pid)?;
        expect_eq("tracer of the child", tracer, 0)?;
        tracer::seek_to(mem, addr).ctx("seek")?;
        let mut buf = [0u8; 8];
        expect_eq("read", syscall::read(mem, &mut buf).ctx("read mem")?, 8)?;
        expect_eq("value read", u64::from_le_bytes(buf), 0x1111)?;
        tracer::seek_to(mem, addr).ctx("seek")?;
        expect_eq(
            "write",
            syscall::write(mem, &0x2222u64.to_le_bytes()).ctx("write mem")?,
            8,
        )?;
        let status = kid.wait(5000)?;
        expect_exit("child that saw the write", status, 7)
    })();
    let _ = syscall::close(mem);
    result
}

/// Case 7 (S6): kill-on-close (`O_EXCL`) cannot be had without the
/// permission to trace. uid 1000 asking for `trace` with `O_EXCL` on a
/// root process gets `EPERM`; `O_EXCL` on other files means nothing
/// (closing them kills nobody). The target then exits normally (7) when
/// its gate opens, where a kill would have shown as `SIGKILL`.
fn case_7_excl_needs_trace_permission() -> Check {
    let gate = Gate::new()?;
    let mut kid = Kid::at_gate(&gate, 7)?;
    let target = kid.pid;
    rt::test::in_child(move || {
        become_user(1000)?;
        for flags in [O_RDWR | O_EXCL, O_RDONLY | O_EXCL] {
            expect_errno(
                &format!("uid 1000 opens root's proc:{target}/trace flags {flags:#x}"),
                tracer::open_proc(target, "trace", flags),
                EPERM,
            )?;
        }
        Ok(())
    })?;
    for file in ["mem", "regs/int", "stop", "status"] {
        let fd = tracer::open_proc(target, file, O_RDONLY | O_EXCL).ctx(file)?;
        syscall::close(fd).ctx("close")?;
    }
    let (_, tracer) = state_of(target)?;
    expect_eq("tracer of the target", tracer, 0)?;
    gate.open()?;
    let status = kid.wait(5000)?;
    expect_exit("target after the O_EXCL opens", status, 7)
}

/// Case 10 (S9): the idle context (pid 0) is not a process any path can
/// name: every `proc:0/...` is `EINVAL`, for root too. Init (pid 1) is an
/// ordinary root process: root may attach to it (as on Linux) and
/// detaching lets it run on; uid 1000 may not.
fn case_10_idle_untraceable_root_may_trace_init() -> Check {
    for file in GUARDED.iter().chain(["status"].iter()) {
        for pid in ["0", "00"] {
            expect_errno(
                &format!("root opens proc:{pid}/{file}"),
                syscall::open(format!("proc:{pid}/{file}"), O_RDWR),
                EINVAL,
            )?;
        }
    }
    let t = Tracer::attach(1).ctx("root attaches to pid 1")?;
    expect_held_by(1, me())?;
    drop(t);
    let (state, tracer) = state_of(1)?;
    ensure!(
        state != "held" && tracer == 0,
        "pid 1 after detaching: state={} tracer={}",
        state,
        tracer
    );
    rt::test::in_child(|| {
        become_user(1000)?;
        expect_errno(
            "uid 1000 opens proc:1/trace",
            tracer::open_proc(1, "trace", O_RDWR),
            EPERM,
        )
    })
}

/// The value of `key=` in `pid`'s status line.
fn status_field(pid: usize, key: &str) -> Result<String, String> {
    let line = status_line(pid)?;
    field(&line, key)
        .map(String::from)
        .ok_or(format!("no {key}= in {line:?}"))
}

/// Case 12 (S11): the policy. No program in this system is set-id (every
/// file's mode is 0555, and `fexec` never changes credentials), so an exec
/// under trace cannot gain privilege: a traced uid-1000 process execs, the
/// session survives (the exec's exit stop is in the new program) and the
/// new program runs with uid and euid 1000.
fn case_12_exec_keeps_ids_while_traced() -> Check {
    let fd = syscall::open("/bin/hello", O_RDONLY).ctx("open /bin/hello")?;
    let mut st = Stat::default();
    let r = syscall::fstat(fd, &mut st);
    let _ = syscall::close(fd);
    r.ctx("fstat")?;
    expect_eq("set-id bits of /bin/hello", st.st_mode & 0o6000, 0)?;
    rt::test::in_child(|| {
        become_user(1000)?;
        let gate = Gate::new()?;
        let g = gate.rd;
        let mut kid = Kid::spawn(move || {
            let mut b = [0u8; 1];
            let _ = rt::io::read(g, &mut b);
            let _ = process::exec("/bin/hello", &["x"], &[]);
            99
        })?;
        let mut t = Tracer::attach(kid.pid).ctx("attach")?;
        gate.open()?;
        let mut exec_stop = false;
        for _ in 0..20 {
            match t.resume(PTRACE_SYSCALL, |_| {}).ctx("resume")? {
                Stopped::Reached(s)
                    if s.cause == PTRACE_STOP_POST_SYSCALL
                        && s.nr == syscall::number::SYS_FEXEC as u64 =>
                {
                    exec_stop = true;
                    break;
                }
                Stopped::Reached(_) => {}
                other => return Err(format!("before the exec stop: {other:?}")),
            }
        }
        ensure!(exec_stop, "no fexec exit stop within 20 stops");
        expect_eq(
            "name after fexec",
            status_field(kid.pid, "name")?,
            String::from("/bin/hello"),
        )?;
        expect_eq(
            "uid after fexec",
            status_field(kid.pid, "uid")?,
            String::from("1000"),
        )?;
        expect_eq(
            "euid after fexec",
            status_field(kid.pid, "euid")?,
            String::from("1000"),
        )?;
        expect_held_by(kid.pid, me())?;
        let end = t.resume(PTRACE_CONT, |_| {}).ctx("resume")?;
        // hello exits with its argument count.
        expect_eq("end", end, Stopped::Exited(1 << 8))?;
        drop(t);
        let status = kid.wait(5000)?;
        expect_exit("hello", status, 1)
    })
}

/// Case 14: attaching while the target is inside `fexec`, hammered. The
/// child execs itself 200 times (`--exec-loop N`); meanwhile this process
/// attaches, reads `stop` and `regs/int`, and detaches, again and again.
/// Every attach either succeeds with a consistent stop or fails with
/// `ESRCH` once the child is gone; the ids never change; the chain ends
/// with exit 0.
fn case_14_attach_while_execing() -> Check {
    let mut kid = Kid::spawn(|| {
        let _ = process::exec("/bin/test-ptrace-death", &["--exec-loop", "200"], &[]);
        98
    })?;
    let mut attached = 0;
    loop {
        match Tracer::attach(kid.pid) {
            Ok(mut t) => {
                attached += 1;
                let stop = t.stop().ctx("stop")?;
                let regs = t.regs().ctx("regs/int")?;
                expect_eq("stop cause at the attach stop", stop.cause, 0)?;
                expect_eq("attach stop addr = rip", stop.addr, regs.rip as u64)?;
                expect_eq("euid", status_field(kid.pid, "euid")?, String::from("0"))?;
                drop(t);
            }
            Err(e) if e.errno == ESRCH => break,
            Err(e) => return Err(format!("attach: {}", rt::errno::describe(&e))),
        }
        let _ = sched_yield();
    }
    let status = kid.wait(5000)?;
    expect_exit("exec chain", status, 0)?;
    ensure!(attached > 0, "never attached during the exec chain");
    Ok(())
}

fn sched_yield() -> syscall::error::Result<usize> {
    syscall::sched_yield()
}

/// Runs `--exec-loop N`: execs itself with N-1, exits 0 at 0.
pub fn exec_loop(n: &str) -> i32 {
    let n: usize = n.parse().unwrap_or(0);
    if n == 0 {
        return 0;
    }
    let next = format!("{}", n - 1);
    let _ = process::exec("/bin/test-ptrace-death", &["--exec-loop", &next], &[]);
    97
}

/// Case 16: `SIGKILL` wins over a register and memory write that races
/// with it, and needs no help from the tracer. The tracee is held at a
/// syscall stop; we send `SIGKILL`, then (before it could run) write a
/// `rip` into nowhere and garbage over its stack, and never resume it. It
/// dies of `SIGKILL` all the same, never of the garbage; the writes
/// themselves either succeed or fail with `ESRCH`/`EBUSY`.
fn case_16_regs_write_racing_sigkill() -> Check {
    let mut kid = Kid::spawn(|| nap_forever())?;
    let mut t = Tracer::attach(kid.pid).ctx("attach")?;
    match t.resume(PTRACE_SYSCALL, |_| {}).ctx("resume")? {
        Stopped::Reached(_) => {}
        other => return Err(format!("expected a syscall stop, got {other:?}")),
    }
    let mut regs = t.regs().ctx("regs")?;
    let rsp = regs.rsp as u64;
    syscall::kill(kid.pid, SIGKILL).ctx("kill")?;
    regs.rip = 0x10;
    regs.rsp = 0x20;
    let ok_or = |what: &str, r: syscall::error::Result<usize>| match r {
        Ok(_) => Ok(()),
        Err(e) if e.errno == ESRCH || e.errno == EBUSY => Ok(()),
        Err(e) => Err(format!("{what}: {}", rt::errno::describe(&e))),
    };
    ok_or("regs write", t.set_regs(&regs).map(|()| 0))?;
    ok_or("mem write", t.write_mem(rsp & !0xF, &[0xAB; 64]))?;
    let status = kid.wait(5000)?;
    expect_killed("tracee", status, SIGKILL)
}

/// In a child: sets TF with `popfq`, then `mov ss` followed by `int3`
/// (`syscall` when `use_syscall`): the single-step trap `mov ss` holds
/// back fires on the first kernel instruction of the `int3` or `syscall`
/// entry. Returns the child's wait status.
fn mov_ss_child(use_syscall: bool) -> Result<usize, String> {
    let mut kid = Kid::spawn(move || {
        if use_syscall {
            // SAFETY: TF and `mov ss` with ss's own value change nothing
            // but trap behaviour; the getpid syscall (rax 20) clobbers rcx
            // and r11 only. TF stays set: we die of SIGTRAP or go on.
            unsafe {
                core::arch::asm!(
                    "pushfq",
                    "or qword ptr [rsp], 0x100",
                    "popfq",
                    "mov ax, ss",
                    "mov ss, ax",
                    "syscall",
                    inout("rax") 20usize => _,
                    out("rcx") _,
                    out("r11") _,
                );
            }
        } else {
            // SAFETY: as above; `int3` only traps.
            unsafe {
                core::arch::asm!(
                    "pushfq",
                    "or qword ptr [rsp], 0x100",
                    "popfq",
                    "mov ax, ss",
                    "mov ss, ax",
                    "int3",
                    out("rax") _,
                );
            }
        }
        0
    })?;
    kid.wait(5000)
}

/// Case 19 (CVE-2018-8897): a `#DB` held back by `mov ss` and taken on
/// the first instruction of the kernel's `int3` or `syscall` entry does
/// not crash the kernel: the child gets `SIGTRAP` (the trap flag it set
/// itself), and the kernel goes on running processes.
fn case_19_mov_ss_then_int3_or_syscall() -> Check {
    for use_syscall in [false, true] {
        let status = mov_ss_child(use_syscall)?;
        let what = if use_syscall { "syscall" } else { "int3" };
        expect_killed(
            &format!("child doing mov ss; {what} with TF"),
            status,
            syscall::flag::SIGTRAP,
        )?;
    }
    let mut kid = Kid::spawn(|| 3)?;
    expect_exit("a fresh child afterwards", kid.wait(5000)?, 3)
}

/// Never called: its first bytes are what case 20 writes over.
#[inline(never)]
extern "C" fn patched_text() -> usize {
    core::hint::black_box(0x5a5a)
}

/// Case 20, the policy: `mem` writes go through to read-only text (that
/// is how breakpoints are planted) and land in the target's private copy:
/// another process running the same program, and the writer itself, still
/// see the original bytes.
fn case_20_text_write_is_private() -> Check {
    let addr = patched_text as *const () as u64;
    // SAFETY: reading 4 bytes of our own mapped text.
    let original = unsafe { core::ptr::read_volatile(addr as *const [u8; 4]) };
    let mut a = Kid::spawn(|| nap_forever())?;
    let mut b = Kid::spawn(|| nap_forever())?;
    let mut ta = Tracer::attach(a.pid).ctx("attach a")?;
    let patch = [0xCC, 0x90, 0xCC, 0x90];
    expect_eq(
        "write to a's text",
        ta.write_mem(addr, &patch).ctx("mem write")?,
        4,
    )?;
    let mut got = [0u8; 4];
    ta.read_mem(addr, &mut got).ctx("read a")?;
    expect_eq("a's text after the write", got, patch)?;
    let mb = tracer::open_proc(b.pid, "mem", O_RDONLY).ctx("open b's mem")?;
    let r = (|| {
        tracer::seek_to(mb, addr).ctx("seek")?;
        syscall::read(mb, &mut got).ctx("read b")?;
        expect_eq("b's text (same program)", got, original)
    })();
    let _ = syscall::close(mb);
    r?;
    // SAFETY: as above.
    let own = unsafe { core::ptr::read_volatile(addr as *const [u8; 4]) };
    expect_eq("our own text", own, original)?;
    drop(ta);
    a.kill();
    b.kill();
    Ok(())
}

/// Case 23: pids are never reused, and a handle never follows a pid to
/// another process: after the child is reaped, its `status`, `stop`,
/// `regs/int` and `mem` handles give `ESRCH`, and the next 50 children
/// all get pids of their own.
fn case_23_handles_never_follow_a_new_pid() -> Check {
    let mut kid = Kid::spawn(|| nap_forever())?;
    let old = kid.pid;
    let fds = [
        tracer::open_proc(old, "status", O_RDONLY).ctx("status")?,
        tracer::open_proc(old, "stop", O_RDONLY).ctx("stop")?,
        tracer::open_proc(old, "regs/int", O_RDONLY).ctx("regs/int")?,
        tracer::open_proc(old, "mem", O_RDONLY).ctx("mem")?,
    ];
    kid.kill();
    let result = (|| {
        for _ in 0..50 {
            let mut k = Kid::spawn(|| nap_forever())?;
            ensure!(k.pid != old, "pid {} was given out again", old);
            let mut buf = [0u8; 256];
            for (fd, name) in fds.iter().zip(["status", "stop", "regs/int", "mem"]) {
                expect_errno(
                    &format!("read {name} of reaped pid {old}"),
                    syscall::read(*fd, &mut buf),
                    ESRCH,
                )?;
            }
            k.kill();
        }
        Ok(())
    })();
    for fd in fds {
        let _ = syscall::close(fd);
    }
    result
}
