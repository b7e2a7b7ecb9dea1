//! Tests for process syscalls: ids, clone/fork, waitpid, threads, descriptor-table sharing,
//! setreuid/setregid, fexec, leak-freedom of fork/exit/wait, and ENOSYS.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use rt::process::{describe, fork, fork_with, wait, waitpid};
use rt::test::{expect_eq, expect_errno, expect_exit, in_child, Ctx};
use rt::{ensure, Tests};
use syscall::error::{EBADF, ECHILD, ENOEXEC, ENOSYS, EPERM};
use syscall::flag::{wexitstatus, wifexited, CloneFlags, WaitFlags, O_CLOEXEC, O_RDONLY, O_RDWR};
use testkit::{expect_memory_back, memory};

rt::entry!(main);

/// Arguments (after the mode word) that the `child-args` mode expects.
const CHILD_ARGS: [&str; 3] = ["alpha", "", "two words"];
/// The exact environment that the `child-env` mode expects.
const CHILD_ENV: [&str; 2] = ["RT_A=1", "RT_B=two words"];

fn main(args: &[&str]) -> i32 {
    // Modes used when the tests fexec this program again.
    match args.get(1).copied() {
        Some("child-exit") => {
            return args.get(2).and_then(|s| s.parse().ok()).unwrap_or(99);
        }
        Some("child-args") => {
            return if args.len() == 2 + CHILD_ARGS.len() && args[2..] == CHILD_ARGS {
                0
            } else {
                3
            };
        }
        Some("child-env") => return if rt::env() == CHILD_ENV { 0 } else { 4 },
        Some("child-fds") => return check_inherited_fds(args),
        _ => {}
    }
    let me = args.first().copied().unwrap_or("/bin/test-proc");

    let mut t = Tests::new();
    testkit::run(&mut t, "waitpid_without_children_echild", no_children);
    testkit::run(&mut t, "entry_stack_aligned", entry_stack);
    testkit::run(&mut t, "ids_start_as_root", ids_are_root);
    testkit::run(&mut t, "getppid_in_child", getppid_in_child);
    testkit::run(&mut t, "fork_exit_status_42", fork_exit_42);
    testkit::run(&mut t, "fork_child_pid_is_its_getpid", fork_child_pid);
    testkit::run(&mut t, "fork_copies_memory", fork_copies_memory);
    testkit::run(&mut t, "waitpid_non_child_echild", waitpid_non_child);
    testkit::run(&mut t, "waitpid_wnohang_running_child", wnohang_running);
    testkit::run(&mut t, "waitpid_any_child", waitpid_any);
    testkit::run(&mut t, "thread_shares_memory", thread_shares_memory);
    testkit::run(&mut t, "threads_concurrent_counter", threads_counter);
    testkit::run(&mut t, "clone_files_shares_table", clone_files_shared);
    testkit::run(&mut t, "fork_copies_fd_table", fork_copies_fds);
    testkit::run(&mut t, "setreuid_drop_root", setreuid_drop);
    testkit::run(&mut t, "setreuid_max_leaves_unchanged", setreuid_partial);
    testkit::run(&mut t, "setregid_drop_root", setregid_drop);
    testkit::run(&mut t, "fexec_self_exit_7", || fexec_exit(me));
    testkit::run(&mut t, "fexec_passes_args", || fexec_args(me));
    testkit::run(&mut t, "fexec_passes_env", || fexec_env(me));
    testkit::run(&mut t, "fexec_keeps_fds_closes_cloexec", || fexec_fds(me));
    testkit::run(&mut t, "fexec_non_elf_enoexec", fexec_non_elf);
    testkit::run(&mut t, "fexec_bad_fd_ebadf", fexec_bad_fd);
    testkit::run(&mut t, "unknown_syscall_enosys", unknown_syscall);
    testkit::run(&mut t, "vfork_parent_waits_for_the_child", vfork_waits);
    testkit::run(&mut t, "fork_exit_wait_200_no_leak", fork_cycles_no_leak);
    t.finish()
}

fn no_children() -> Result<(), String> {
    expect_errno(
        "waitpid(0, WNOHANG) with no children",
        waitpid(0, WaitFlags::WNOHANG),
        ECHILD,
    )
}

fn entry_stack() -> Result<(), String> {
    let sp = rt::start::initial_sp();
    ensure!(
        sp.is_multiple_of(16),
        "initial rsp {:#x} is not 16-byte aligned",
        sp
    );
    // SAFETY: the initial stack (argc and the argv array) stays mapped for
    // the life of the process; we only read argc.
    let argc = unsafe { *(sp as *const usize) };
    expect_eq("argc at initial rsp", argc, rt::args().len())
}

fn ids_are_root() -> Result<(), String> {
    expect_eq("getuid", syscall::getuid().ctx("getuid")?, 0)?;
    expect_eq("geteuid", syscall::geteuid().ctx("geteuid")?, 0)?;
    expect_eq("getgid", syscall::getgid().ctx("getgid")?, 0)?;
    expect_eq("getegid", syscall::getegid().ctx("getegid")?, 0)
}

fn getppid_in_child() -> Result<(), String> {
    let parent = syscall::getpid().ctx("getpid")?;
    ensure!(parent > 0, "getpid returned 0");
    in_child(move || {
        let me = syscall::getpid().ctx("child getpid")?;
        ensure!(me != parent, "child getpid {} equals the parent's", me);
        expect_eq("child getppid", syscall::getppid().ctx("getppid")?, parent)
    })
}

fn fork_exit_42() -> Result<(), String> {
    let pid = fork_with(|| 42).ctx("clone")?;
    ensure!(pid > 0, "clone returned pid 0 in the parent");
    let (got, status) = waitpid(pid, WaitFlags::empty()).ctx("waitpid")?;
    expect_eq("waitpid return", got, pid)?;
    expect_exit("child", status, 42)
}

fn fork_child_pid() -> Result<(), String> {
    let parent = syscall::getpid().ctx("getpid")?;
    let pid = fork_with(|| match syscall::getpid() {
        Ok(p) => (p & 0xff) as i32,
        Err(_) => 0xff,
    })
    .ctx("clone")?;
    let status = wait(pid).ctx("waitpid")?;
    ensure!(pid != parent, "clone returned our own pid {}", pid);
    expect_exit("child exiting with getpid() & 0xff", status, pid & 0xff)
}

static MARK: AtomicUsize = AtomicUsize::new(1);

fn fork_copies_memory() -> Result<(), String> {
    MARK.store(1, Ordering::SeqCst);
    let mut local = [7u8; 64];
    let local_ptr = local.as_mut_ptr();
    let pid = fork_with(|| {
        MARK.store(2, Ordering::SeqCst);
        // SAFETY: `local` is alive in this (copied) stack frame.
        unsafe { core::ptr::write_volatile(local_ptr, 9) };
        if MARK.load(Ordering::SeqCst) == 2 {
            0
        } else {
            1
        }
    })
    .ctx("clone")?;
    let status = wait(pid).ctx("waitpid")?;
    expect_exit("child", status, 0)?;
    expect_eq(
        "static after child wrote it",
        MARK.load(Ordering::SeqCst),
        1,
    )?;
    // SAFETY: `local` is alive; volatile so the compiler cannot assume the value.
    let byte = unsafe { core::ptr::read_volatile(local_ptr) };
    expect_eq("stack byte after child wrote it", byte, 7)
}

fn waitpid_non_child() -> Result<(), String> {
    let pid = fork_with(|| 0).ctx("clone")?;
    let status = wait(pid).ctx("waitpid")?;
    expect_exit("child", status, 0)?;
    expect_errno(
        "waitpid of an already reaped child",
        waitpid(pid, WaitFlags::WNOHANG),
        ECHILD,
    )?;
    let me = syscall::getpid().ctx("getpid")?;
    expect_errno(
        "waitpid of our own pid",
        waitpid(me, WaitFlags::WNOHANG),
        ECHILD,
    )?;
    // pid 1 is either us or init, which is not our child.
    expect_errno("waitpid(1)", waitpid(1, WaitFlags::WNOHANG), ECHILD)
}

fn wnohang_running() -> Result<(), String> {
    let (rd, wr) = rt::io::pipe(0).ctx("pipe2")?;
    let pid = fork_with(|| {
        let _ = syscall::close(wr);
        let mut b = [0u8; 1];
        let _ = rt::io::read(rd, &mut b);
        5
    })
    .ctx("clone")?;
    let _ = syscall::close(rd);
    let early = waitpid(pid, WaitFlags::WNOHANG);
    // Release and reap the child whatever WNOHANG said.
    let released = rt::io::write_all(wr, b"x").ctx("write to pipe");
    let _ = syscall::close(wr);
    let status = wait(pid).ctx("waitpid")?;
    match early {
        Ok((0, _)) => {}
        Ok((got, st)) => {
            return Err(format!(
                "WNOHANG on a blocked child: expected 0, got pid {} ({})",
                got,
                describe(st)
            ))
        }
        Err(e) => return Err(format!("WNOHANG: {}", rt::errno::describe(&e))),
    }
    released?;
    expect_exit("child", status, 5)
}

fn waitpid_any() -> Result<(), String> {
    let pid = fork_with(|| 9).ctx("clone")?;
    let (got, status) = waitpid(0, WaitFlags::empty()).ctx("waitpid(0)")?;
    expect_eq("pid from waitpid(0)", got, pid)?;
    expect_exit("child", status, 9)
}

static THREAD_VALUE: AtomicUsize = AtomicUsize::new(0);
static THREAD_PID: AtomicUsize = AtomicUsize::new(0);

fn thread_worker(n: usize) {
    let v: Vec<usize> = (0..n).collect();
    THREAD_VALUE.store(v.iter().sum::<usize>() + 1, Ordering::SeqCst);
    THREAD_PID.store(syscall::getpid().unwrap_or(0), Ordering::SeqCst);
}

fn thread_shares_memory() -> Result<(), String> {
    THREAD_VALUE.store(0, Ordering::SeqCst);
    THREAD_PID.store(0, Ordering::SeqCst);
    let heap_before = rt::heap::used();
    let me = syscall::getpid().ctx("getpid")?;
    let h = rt::thread::spawn(64 * 1024, thread_worker, 100).ctx("thread spawn")?;
    let tid = h.pid();
    let status = h.join().ctx("join (waitpid)")?;
    expect_exit("thread", status, 0)?;
    expect_eq(
        "value written by the thread",
        THREAD_VALUE.load(Ordering::SeqCst),
        4951,
    )?;
    let seen = THREAD_PID.load(Ordering::SeqCst);
    ensure!(seen != me, "thread getpid {} equals the parent's", seen);
    expect_eq("thread getpid vs clone return", seen, tid)?;
    expect_eq(
        "heap bytes in use after join",
        rt::heap::used(),
        heap_before,
    )
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn adder(n: usize) {
    for i in 0..n {
        COUNTER.fetch_add(1, Ordering::SeqCst);
        if i % 1024 == 0 {
            let _ = syscall::sched_yield();
        }
    }
}

fn threads_counter() -> Result<(), String> {
    const THREADS: usize = 4;
    const EACH: usize = 20_000;
    COUNTER.store(0, Ordering::SeqCst);
    let mut handles = Vec::new();
    let mut err = None;
    for _ in 0..THREADS {
        match rt::thread::spawn(32 * 1024, adder, EACH) {
            Ok(h) => handles.push(h),
            Err(e) => {
                err = Some(format!("thread spawn: {}", rt::errno::describe(&e)));
                break;
            }
        }
    }
    for h in handles {
        let status = h.join().ctx("join")?;
        expect_exit("thread", status, 0)?;
    }
    if let Some(e) = err {
        return Err(e);
    }
    expect_eq("counter", COUNTER.load(Ordering::SeqCst), THREADS * EACH)
}

/// Forks with `flags`; the child opens `zero:` and exits with the new fd
/// number (255 if the open failed). Returns that fd number.
fn child_opens_fd(flags: CloneFlags) -> Result<usize, String> {
    // SAFETY: no CLONE_VM, so the child runs on its own copy of the stack.
    let pid = unsafe { syscall::clone(flags) }.ctx("clone")?;
    if pid == 0 {
        let code = syscall::open("zero:", O_RDONLY).unwrap_or(255);
        rt::process::exit(code);
    }
    let status = wait(pid).ctx("waitpid")?;
    ensure!(
        wifexited(status) && wexitstatus(status) != 255,
        "child opening zero: {}",
        describe(status)
    );
    Ok(wexitstatus(status))
}

/// Forks with `flags`; the child closes `fd`. Returns the child's status.
fn child_closes_fd(flags: CloneFlags, fd: usize) -> Result<(), String> {
    // SAFETY: no CLONE_VM, so the child runs on its own copy of the stack.
    let pid = unsafe { syscall::clone(flags) }.ctx("clone")?;
    if pid == 0 {
        rt::process::exit(if syscall::close(fd).is_ok() { 0 } else { 1 });
    }
    let status = wait(pid).ctx("waitpid")?;
    expect_exit("child closing the fd", status, 0)
}

fn clone_files_shared() -> Result<(), String> {
    let fd = child_opens_fd(CloneFlags::CLONE_FILES)?;
    let mut buf = [1u8; 4];
    let read = syscall::read(fd, &mut buf);
    let _ = syscall::close(fd);
    match read {
        Ok(4) if buf == [0; 4] => {}
        other => {
            return Err(format!(
                "read of fd {} opened by a CLONE_FILES child: expected Ok(4) zeros, got {} {:?}",
                fd,
                rt::errno::describe_result(&other),
                buf
            ))
        }
    }
    let m = syscall::open("null:", O_RDWR).ctx("open null:")?;
    child_closes_fd(CloneFlags::CLONE_FILES, m)?;
    let after = syscall::write(m, b"x");
    if after.is_ok() {
        let _ = syscall::close(m);
    }
    expect_errno("write to an fd closed by a CLONE_FILES child", after, EBADF)
}

fn fork_copies_fds() -> Result<(), String> {
    let fd = child_opens_fd(CloneFlags::empty())?;
    let mut buf = [0u8; 4];
    let read = syscall::read(fd, &mut buf);
    if read.is_ok() {
        let _ = syscall::close(fd);
    }
    expect_errno("read of an fd opened only by a forked child", read, EBADF)?;
    let m = syscall::open("null:", O_RDWR).ctx("open null:")?;
    let closed = child_closes_fd(CloneFlags::empty(), m);
    let after = syscall::write(m, b"x");
    let _ = syscall::close(m);
    closed?;
    expect_eq(
        "write to our fd after a forked child closed its copy",
        rt::errno::describe_result(&after),
        String::from("Ok(1)"),
    )
}

fn ids() -> Result<[usize; 4], String> {
    Ok([
        syscall::getuid().ctx("getuid")?,
        syscall::geteuid().ctx("geteuid")?,
        syscall::getgid().ctx("getgid")?,
        syscall::getegid().ctx("getegid")?,
    ])
}

fn setreuid_drop() -> Result<(), String> {
    in_child(|| {
        syscall::setreuid(1000, 1000).ctx("setreuid(1000, 1000) as root")?;
        expect_eq("[uid, euid, gid, egid]", ids()?, [1000, 1000, 0, 0])?;
        expect_errno("setreuid(0, 0) as uid 1000", syscall::setreuid(0, 0), EPERM)?;
        expect_errno(
            "setreuid(MAX, 0) as uid 1000",
            syscall::setreuid(usize::MAX, 0),
            EPERM,
        )?;
        expect_eq("ids after refused calls", ids()?, [1000, 1000, 0, 0])?;
        syscall::setreuid(1000, 1000).ctx("setreuid(1000, 1000) to our own ids")?;
        expect_eq("ids at the end", ids()?, [1000, 1000, 0, 0])
    })
}

fn setreuid_partial() -> Result<(), String> {
    in_child(|| {
        syscall::setreuid(usize::MAX, 1000).ctx("setreuid(MAX, 1000) as root")?;
        expect_eq("[uid, euid, gid, egid]", ids()?, [0, 1000, 0, 0])
    })
}

fn setregid_drop() -> Result<(), String> {
    in_child(|| {
        syscall::setregid(1000, 1000).ctx("setregid(1000, 1000) as root")?;
        expect_eq("[uid, euid, gid, egid]", ids()?, [0, 0, 1000, 1000])?;
        syscall::setregid(usize::MAX, 2000).ctx("setregid(MAX, 2000) as root")?;
        expect_eq("ids after setregid(MAX, 2000)", ids()?, [0, 0, 1000, 2000])?;
        syscall::setregid(1000, 1000).ctx("setregid(1000, 1000) as root")?;
        syscall::setreuid(1000, 1000).ctx("setreuid(1000, 1000) as root")?;
        expect_errno("setregid(0, 0) as uid 1000", syscall::setregid(0, 0), EPERM)?;
        expect_eq(
            "ids after refused setregid",
            ids()?,
            [1000, 1000, 1000, 1000],
        )
    })
}

fn fexec_exit(me: &str) -> Result<(), String> {
    let pid = rt::process::spawn(me, &["child-exit", "7"]).ctx("spawn")?;
    let status = wait(pid).ctx("waitpid")?;
    expect_exit("fexec'd copy run with `child-exit 7`", status, 7)
}

fn fexec_args(me: &str) -> Result<(), String> {
    let mut args = alloc::vec!["child-args"];
    args.extend_from_slice(&CHILD_ARGS);
    let pid = rt::process::spawn(me, &args).ctx("spawn")?;
    let status = wait(pid).ctx("waitpid")?;
    expect_exit("fexec'd copy checking argv (3 = wrong argv)", status, 0)
}

fn fexec_env(me: &str) -> Result<(), String> {
    let pid = rt::process::spawn_env(me, &["child-env"], &CHILD_ENV).ctx("spawn")?;
    let status = wait(pid).ctx("waitpid")?;
    expect_exit("fexec'd copy checking envp (4 = wrong env)", status, 0)
}

/// `child-fds CLOEXEC_FD KEPT_FD`: exits 0 if the first fd is closed and the
/// second is open, 5 if the O_CLOEXEC fd survived, 6 if the other one did not.
fn check_inherited_fds(args: &[&str]) -> i32 {
    let fd = |i: usize| args.get(i).and_then(|s| s.parse::<usize>().ok());
    let (Some(cloexec), Some(kept)) = (fd(2), fd(3)) else {
        return 7;
    };
    let mut st = syscall::data::Stat::default();
    if syscall::fstat(cloexec, &mut st).map_err(|e| e.errno) != Err(EBADF) {
        return 5;
    }
    if syscall::fstat(kept, &mut st).is_err() {
        return 6;
    }
    0
}

fn fexec_fds(me: &str) -> Result<(), String> {
    let cloexec = syscall::open("null:", O_RDONLY | O_CLOEXEC).ctx("open null: O_CLOEXEC")?;
    let kept = match syscall::open("zero:", O_RDONLY).ctx("open zero:") {
        Ok(fd) => fd,
        Err(e) => {
            let _ = syscall::close(cloexec);
            return Err(e);
        }
    };
    let a = format!("{}", cloexec);
    let b = format!("{}", kept);
    let pid = rt::process::spawn(me, &["child-fds", &a, &b]);
    let _ = syscall::close(cloexec);
    let _ = syscall::close(kept);
    let status = wait(pid.ctx("spawn")?).ctx("waitpid")?;
    expect_exit(
        "fexec'd copy checking fds (5 = O_CLOEXEC fd kept, 6 = plain fd lost)",
        status,
        0,
    )
}

fn fexec_non_elf() -> Result<(), String> {
    in_child(|| {
        let fd = syscall::open("null:", O_RDONLY).ctx("open null:")?;
        let err = rt::process::fexec_fd(fd, &["null:"], &[]);
        expect_errno("fexec of null:", Err::<(), _>(err), ENOEXEC)
    })
}

fn fexec_bad_fd() -> Result<(), String> {
    in_child(|| {
        let err = rt::process::fexec_fd(9999, &["nothing"], &[]);
        expect_errno("fexec of fd 9999", Err::<(), _>(err), EBADF)
    })
}

fn unknown_syscall() -> Result<(), String> {
    // SAFETY: an unknown syscall number takes no arguments and touches no memory.
    let r = unsafe { syscall::syscall0(0xdead) };
    expect_errno("syscall 0xdead", r, ENOSYS)
}

fn fork_cycles(n: usize) -> Result<(), String> {
    for i in 0..n {
        let pid = fork().ctx("clone")?;
        if pid == 0 {
            rt::process::exit(0);
        }
        let status = wait(pid).ctx("waitpid")?;
        if !wifexited(status) || wexitstatus(status) != 0 {
            return Err(format!("cycle {}: child {}", i, describe(status)));
        }
    }
    Ok(())
}

fn fork_cycles_no_leak() -> Result<(), String> {
    // Warm up: let every lazily grown kernel table and our own stack reach
    // their steady state before taking the first reading.
    memory()?;
    fork_cycles(10)?;
    let before = memory()?;
    fork_cycles(200)?;
    expect_memory_back(before, "200 fork/exit/wait cycles")
}

/// Set by the vfork child before it exits; the parent must see it at once.
static VFORK_CHILD_RAN: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// `clone(CLONE_VM | CLONE_VFORK)`: the child runs on our memory and stack
/// (so it only stores a flag and exits, in assembly); we are suspended
/// until it exits, so the flag is set when clone returns.
fn vfork_waits() -> Result<(), String> {
    VFORK_CHILD_RAN.store(0, core::sync::atomic::Ordering::SeqCst);
    let flags = (CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK).bits();
    let pid: usize;
    // SAFETY: the child touches no stack: it stores 1 through rsi and calls
    // exit; the parent returns normally with the child's pid in rax.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov qword ptr [rsi], 1",
            "mov eax, {exit}",
            "mov edi, 42",
            "syscall",
            "ud2",
            "2:",
            exit = const syscall::number::SYS_EXIT,
            inlateout("rax") syscall::number::SYS_CLONE => pid,
            in("rdi") flags,
            in("rsi") VFORK_CHILD_RAN.as_ptr(),
            out("rcx") _,
            out("r11") _,
        );
    }
    ensure!(pid < 4096 && pid > 0, "clone returned {:#x}", pid);
    let ran = VFORK_CHILD_RAN.load(core::sync::atomic::Ordering::SeqCst);
    ensure!(ran == 1, "clone(CLONE_VFORK) returned before the child ran");
    let status = wait(pid).ctx("waitpid")?;
    expect_exit("vfork child", status, 42)
}
