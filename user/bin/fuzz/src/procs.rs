//! Processes the fuzzer owns: forking a child that first cuts itself off
//! from the fuzzer's descriptors and privileges, reaping every child
//! (orphans included), sweeping away leftovers, and the `sys:memory`
//! counters.

use alloc::format;
use alloc::string::String;

use syscall::flag::{WaitFlags, O_RDONLY, O_RDWR, SIGKILL};

/// Highest descriptor number the fuzzer ever holds is far below this; a
/// child closes everything from 3 up to it.
pub const FD_LIMIT: usize = 256;

/// `frames_free` and `heap_used` from `sys:memory`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    pub frames_free: u64,
    pub heap_used: u64,
}

impl core::fmt::Display for Memory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "frames_free={} heap_used={}",
            self.frames_free, self.heap_used
        )
    }
}

/// Reads `sys:memory` with one read at offset 0.
pub fn memory() -> Result<Memory, String> {
    let fd = syscall::open("sys:memory", O_RDONLY)
        .map_err(|e| format!("open sys:memory: {}", rt::errno::describe(&e)))?;
    let mut buf = [0u8; 256];
    let n = rt::io::read(fd, &mut buf);
    let _ = syscall::close(fd);
    let n = n.map_err(|e| format!("read sys:memory: {}", rt::errno::describe(&e)))?;
    let text =
        core::str::from_utf8(&buf[..n]).map_err(|_| String::from("sys:memory: not UTF-8"))?;
    let value = |key: &str| -> Option<u64> {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
    };
    match (value("frames_free"), value("heap_used")) {
        (Some(frames_free), Some(heap_used)) => Ok(Memory {
            frames_free,
            heap_used,
        }),
        _ => Err(format!("sys:memory: cannot parse {text:?}")),
    }
}

/// In a freshly forked child: closes every descriptor but 0 to 2 (the
/// fuzzer's sessions and handles must not be reachable from a process
/// that runs random code), points 0 to 2 at `null:` (random writes must
/// not reach the console, where they could forge test output), and drops
/// to `uid`/`gid`, so that nothing it does can signal or open the fuzzer
/// (root) or a process of another uid. `keep` stays open.
pub fn isolate(uid: usize, keep: Option<usize>) -> Result<(), syscall::error::Error> {
    for fd in 3..FD_LIMIT {
        if Some(fd) != keep {
            let _ = syscall::close(fd);
        }
    }
    let null = syscall::open("null:", O_RDWR)?;
    for fd in 0..3 {
        if Some(fd) == keep {
            continue;
        }
        if fd != null {
            syscall::dup2(null, fd, &[])?;
        }
    }
    if null > 2 {
        let _ = syscall::close(null);
    }
    syscall::setregid(uid, uid)?;
    syscall::setreuid(uid, uid)?;
    Ok(())
}

/// One reaped child.
pub struct Reaped {
    pub pid: usize,
    pub status: usize,
}

/// Reaps one child that has ended, if any (never blocks).
pub fn reap_one() -> Option<Reaped> {
    match rt::process::waitpid(0, WaitFlags::WNOHANG) {
        Ok((0, _)) | Err(_) => None,
        Ok((pid, status)) => Some(Reaped { pid, status }),
    }
}

/// `SIGKILL` for every process with a pid in `from..=to` except `keep`
/// (the fuzzer itself); returns how many were signalled. Pids are never
/// reused, so everything in the range is the fuzzer's or its descendants'
/// when the fuzzer is pid 1 and `from` is its first child's pid.
pub fn kill_range(from: usize, to: usize, keep: usize) -> usize {
    let mut killed = 0;
    for pid in from..=to {
        if pid != keep && syscall::kill(pid, SIGKILL).is_ok() {
            killed += 1;
        }
    }
    killed
}

/// Set to release the spinners of [`saturate`].
static RELEASE: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Starts one `CLONE_VM` child that calls `sched_yield` until [`RELEASE`]
/// is set, then exits. The child runs on registers alone (it never
/// touches the stack it shares with the fuzzer).
fn spinner() -> Result<usize, syscall::error::Error> {
    let ret: usize;
    // SAFETY: the child side only executes the loop below, which reads
    // `RELEASE` (a static shared through CLONE_VM) and makes `sched_yield`
    // and `exit` calls; the parent side returns normally. `syscall`
    // clobbers rcx and r11 only.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 3f",
            "2:",
            "mov rax, {yield_}",
            "syscall",
            "cmp qword ptr [{flag}], 0",
            "je 2b",
            "mov rax, {exit}",
            "xor edi, edi",
            "syscall",
            "ud2",
            "3:",
            flag = in(reg) RELEASE.as_ptr(),
            yield_ = const syscall::number::SYS_YIELD,
            exit = const syscall::number::SYS_EXIT,
            inlateout("rax") syscall::number::SYS_CLONE => ret,
            in("rdi") syscall::flag::CLONE_VM.bits(),
            out("rcx") _,
            out("r11") _,
        );
    }
    syscall::error::Error::demux(ret)
}

/// Raises the kernel's high-water marks to their maximum, so that later
/// runs cannot raise them further: starts runnable contexts until the
/// kernel refuses one (`EAGAIN` at its context limit, or `ENOMEM`), then
/// ends and reaps them all. Some kernel structures keep the size they
/// once needed: the run queue's capacity, the free list of kernel stack
/// slots and the page tables of the kernel stack region (see
/// `docs/fuzzing.md`). Returns how many contexts were started and the
/// error that stopped it.
pub fn saturate() -> (usize, i32) {
    use core::sync::atomic::Ordering;
    RELEASE.store(0, Ordering::SeqCst);
    let mut pids = alloc::vec::Vec::new();
    let why = loop {
        match spinner() {
            Ok(pid) => pids.push(pid),
            Err(e) => break e.errno,
        }
        if pids.len() >= 100_000 {
            break 0;
        }
    };
    RELEASE.store(1, Ordering::SeqCst);
    for &pid in &pids {
        let _ = rt::process::wait(pid);
    }
    (pids.len(), why)
}
