//! The sacrificial child: a forked process, stripped of the fuzzer's
//! descriptors and running as uid 1000, that makes random raw system calls
//! with random arguments and then exits.
//!
//! What it may not do (checked before each call, see `excluded`):
//! `kill` aimed at the fuzzer or at pid 1 (as uid 1000 it would get
//! `EPERM` anyway; the exclusion keeps a kernel bug in the permission check
//! from ending the run as a false "fuzzer died"). Everything else goes
//! through, blocking calls included: a child that blocks (reads an empty
//! pipe of its own, sleeps for years, stops itself with `SIGSTOP`, waits
//! for a child that never ends) or spins is simply killed by the fuzzer
//! after a number of the fuzzer's own operations, and a new one is
//! started. `exit` ends it early, which is fine. A `clone` child (any
//! flags) exits at once, right after the `syscall` instruction, without
//! touching memory, so `CLONE_VM` children never run on the shared stack.

use alloc::boxed::Box;
use alloc::format;

use syscall::number::*;

/// Size of the scratch area that pointer arguments usually point into.
const SCRATCH: usize = 8192;

/// Every call number `redox_syscall` 0.2.16 defines (the kernel implements
/// a subset; the rest must fail with `ENOSYS`).
const NUMBERS: [usize; 66] = [
    SYS_LINK,
    SYS_OPEN,
    SYS_CHMOD,
    SYS_RMDIR,
    SYS_UNLINK,
    SYS_CLOSE,
    SYS_DUP,
    SYS_DUP2,
    SYS_READ,
    SYS_WRITE,
    SYS_LSEEK,
    SYS_FCHMOD,
    SYS_FCHOWN,
    SYS_FCNTL,
    SYS_FEVENT,
    SYS_FEXEC,
    SYS_FMAP_OLD,
    SYS_FMAP,
    SYS_FUNMAP_OLD,
    SYS_FUNMAP,
    SYS_FPATH,
    SYS_FRENAME,
    SYS_FSTAT,
    SYS_FSTATVFS,
    SYS_FSYNC,
    SYS_FTRUNCATE,
    SYS_FUTIMENS,
    SYS_CHDIR,
    SYS_CLOCK_GETTIME,
    SYS_CLONE,
    SYS_EXIT,
    SYS_FUTEX,
    SYS_GETCWD,
    SYS_GETEGID,
    SYS_GETENS,
    SYS_GETEUID,
    SYS_GETGID,
    SYS_GETNS,
    SYS_GETPID,
    SYS_GETPGID,
    SYS_GETPPID,
    SYS_GETUID,
    SYS_IOPL,
    SYS_KILL,
    SYS_MPROTECT,
    SYS_MKNS,
    SYS_NANOSLEEP,
    SYS_PHYSALLOC,
    SYS_PHYSALLOC3,
    SYS_PHYSFREE,
    SYS_PHYSMAP,
    SYS_PHYSUNMAP,
    SYS_VIRTTOPHYS,
    SYS_PIPE2,
    SYS_SETPGID,
    SYS_SETREGID,
    SYS_SETRENS,
    SYS_SETREUID,
    SYS_SIGACTION,
    SYS_SIGPROCMASK,
    SYS_SIGRETURN,
    SYS_UMASK,
    SYS_WAITPID,
    SYS_YIELD,
    // The calls the kernel implements, twice as likely.
    SYS_OPEN,
    SYS_CLONE,
];

/// The calls the kernel implements: most picks come from here.
const IMPLEMENTED: [usize; 30] = [
    SYS_SIGRETURN,
    SYS_EXIT,
    SYS_FEXEC,
    SYS_CLONE,
    SYS_OPEN,
    SYS_CLOSE,
    SYS_READ,
    SYS_WRITE,
    SYS_LSEEK,
    SYS_DUP,
    SYS_DUP2,
    SYS_FCNTL,
    SYS_FPATH,
    SYS_FSTAT,
    SYS_PIPE2,
    SYS_GETPID,
    SYS_GETPPID,
    SYS_GETUID,
    SYS_GETEUID,
    SYS_GETGID,
    SYS_GETEGID,
    SYS_SETREUID,
    SYS_SETREGID,
    SYS_WAITPID,
    SYS_KILL,
    SYS_SIGACTION,
    SYS_SIGPROCMASK,
    SYS_YIELD,
    SYS_NANOSLEEP,
    SYS_CLOCK_GETTIME,
];

/// Whether the call must not be made (module doc).
fn excluded(nr: usize, a: &[usize; 6], fuzzer: usize) -> bool {
    nr == SYS_KILL && (a[0] == fuzzer || a[0] == 1)
}

/// One raw system call. If it was `clone` and this is the child (result
/// 0), the child exits at once with status 0 without touching memory.
///
/// # Safety
/// Anything may happen to this process's memory: only a sacrificial
/// process may call this.
unsafe fn raw(nr: usize, a: &[usize; 6]) -> usize {
    let ret: usize;
    // SAFETY: the caller accepts any effect on this process; the asm
    // itself clobbers only the registers named here.
    unsafe {
        core::arch::asm!(
            "syscall",
            "cmp {nr}, {clone}",
            "jne 2f",
            "test rax, rax",
            "jnz 2f",
            "mov rax, {exit}",
            "xor edi, edi",
            "syscall",
            "ud2",
            "2:",
            nr = in(reg) nr,
            clone = const SYS_CLONE,
            exit = const SYS_EXIT,
            inlateout("rax") nr => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            out("rcx") _,
            out("r11") _,
        );
    }
    ret
}

/// Paths sometimes written at the start of the scratch area so that
/// `open`, `dup` and `fexec` get past `EFAULT`/`ENOENT`.
fn seed_path(rng: &mut crate::rng::Rng, me: usize) -> alloc::string::String {
    match rng.below(14) {
        0 => "null:".into(),
        1 => "zero:".into(),
        2 => "pipe:".into(),
        3 => "event:".into(),
        4 => "sys:memory".into(),
        5 => format!("proc:{me}/status"),
        6 => format!("proc:{}/trace", me + 1 + rng.below(3) as usize),
        7 => format!("proc:{}/mem", me + 1 + rng.below(3) as usize),
        8 => "/bin/hello".into(),
        9 => "file:/bin/".into(),
        10 => "regs/int".into(),
        11 => "proc:".into(),
        12 => format!("proc:{me}/regs/float"),
        _ => "nosuch:x".into(),
    }
}

/// An argument: small numbers, descriptors, pointers into the scratch
/// area, edges, kernel addresses, or anything.
fn arg(rng: &mut crate::rng::Rng, scratch: usize) -> usize {
    match rng.below(12) {
        0 => 0,
        1 | 2 => rng.below(16) as usize,
        3 | 4 => scratch + rng.below(SCRATCH as u64 / 2) as usize,
        5 => rng.below(SCRATCH as u64) as usize,
        6 => usize::MAX - rng.below(4) as usize,
        7 => 0xFFFF_8000_0000_0000 | rng.next() as usize,
        8 => 0x0000_8000_0000_0000 - rng.below(0x2000) as usize,
        9 => rng.below(1 << 20) as usize,
        10 => 1 << rng.below(64),
        _ => rng.next() as usize,
    }
}

/// The child's body: `calls` random system calls, then `exit(0)`.
pub fn run(seed: u64, calls: usize, fuzzer: usize) -> ! {
    if crate::procs::isolate(1000, None).is_err() {
        rt::process::exit(3);
    }
    let mut rng = crate::rng::Rng::new(seed);
    let me = syscall::getpid().unwrap_or(0);
    let area: Box<[u8; SCRATCH]> = Box::new([0; SCRATCH]);
    let scratch = Box::into_raw(area) as *mut u8;
    for _ in 0..calls {
        // SAFETY: `scratch` is a live allocation of SCRATCH bytes that
        // nothing else references; the kernel may also write into it.
        let area = unsafe { core::slice::from_raw_parts_mut(scratch, SCRATCH) };
        if rng.one_in(4) {
            let path = seed_path(&mut rng, me);
            area[..path.len()].copy_from_slice(path.as_bytes());
            area[path.len()] = 0;
        } else if rng.one_in(8) {
            let at = rng.below(SCRATCH as u64 - 64) as usize;
            rng.fill(&mut area[at..at + 64]);
        }
        let nr = match rng.below(10) {
            0 => *rng.pick(&NUMBERS),
            1 => rng.next() as usize,
            _ => *rng.pick(&IMPLEMENTED),
        };
        let mut a = [0usize; 6];
        for slot in a.iter_mut() {
            *slot = arg(&mut rng, scratch as usize);
        }
        // Often, a path at the start of the scratch area, with its length.
        let path_args = match nr {
            SYS_OPEN => Some((0, 1)),
            SYS_DUP => Some((1, 2)),
            SYS_DUP2 => Some((2, 3)),
            _ => None,
        };
        if let Some((ptr_at, len_at)) = path_args {
            if !rng.one_in(4) {
                a[ptr_at] = scratch as usize;
                a[len_at] = area.iter().position(|&b| b == 0).unwrap_or(16).min(64);
            }
        }
        if excluded(nr, &a, fuzzer) {
            continue;
        }
        // SAFETY: this process is sacrificial (module doc).
        unsafe { raw(nr, &a) };
    }
    rt::process::exit(0)
}
