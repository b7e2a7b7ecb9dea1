//! Robustness: attach/detach cycles leave kernel memory where it was, and
//! random input on every `proc:` file of a tracee leaves the kernel
//! working (contract section 6).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use rt::ensure;
use rt::process::sleep_ms;
use rt::test::{expect_eq, expect_exit, Ctx};
use syscall::error::{Error, EAGAIN, EBUSY, EFAULT, EINVAL, ESRCH};
use syscall::flag::{O_EXCL, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY};
use tracer::{
    EnvRegisters, FloatRegisters, IntRegisters, PtraceEvent, StopInfo, Tracer, PTRACE_SYSCALL,
    PTRACE_WAIT,
};

use testkit::*;

/// `n` cycles of attach, `PTRACE_SYSCALL` to a stop, close, on one napping
/// child, which is then killed and reaped. Returns `sys:memory` as it was
/// during the last cycle (child alive, session open).
fn attach_cycles(n: usize) -> Result<(u64, u64), String> {
    let mut kid = Kid::spawn(|| nap_forever())?;
    let mut during = (0, 0);
    for i in 0..n {
        let t = Tracer::attach(kid.pid).ctx(&format!("cycle {i}: attach"))?;
        let mut reached = op_ok(t.fd(), PTRACE_SYSCALL)?;
        while reached == 0 {
            events(t.fd())?;
            reached = op_ok(t.fd(), PTRACE_WAIT)?;
        }
        expect_held_by(kid.pid, me()).map_err(|e| format!("cycle {i}: {e}"))?;
        if i + 1 == n {
            during = memory()?;
        }
        drop(t);
    }
    kid.kill();
    Ok(during)
}

/// 100 attach/detach cycles leave `sys:memory` where it was (measured
/// with the child reaped both times, after 5 warm-up cycles).
pub fn attach_detach_cycles_no_leak() -> Check {
    attach_cycles(5)?;
    let _ = sleep_ms(20);
    let before = memory()?;
    let during = attach_cycles(100)?;
    // Control: the counters do see a live child and its session.
    ensure!(
        during != before,
        "sys:memory {:?} did not change while a traced child existed: it cannot show a leak",
        before
    );
    expect_memory_back(before, "100 cycles")
}

/// xorshift64*: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// The tracee's files, all open at once.
struct Files {
    int: usize,
    float: usize,
    env: usize,
    mem: usize,
    stop: usize,
}

impl Files {
    fn open(pid: usize) -> Result<Files, String> {
        let o = |file: &str, flags: usize| {
            tracer::open_proc(pid, file, flags).ctx(&format!("open {file}"))
        };
        Ok(Files {
            int: o("regs/int", O_RDWR)?,
            float: o("regs/float", O_RDWR)?,
            env: o("regs/env", O_RDWR)?,
            mem: o("mem", O_RDWR)?,
            stop: o("stop", O_RDONLY)?,
        })
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        for fd in [self.int, self.float, self.env, self.mem, self.stop] {
            let _ = syscall::close(fd);
        }
    }
}

/// What the fuzzing saw.
#[derive(Default)]
struct Tally {
    /// Results recorded.
    total: usize,
    /// Results other than `ESRCH`: calls that met a live tracee.
    live: usize,
    /// Refusals outside the contract's errors (the first few).
    unexpected: Vec<String>,
}

impl Tally {
    /// Records a result; an error must be one of `allowed`.
    fn note(&mut self, what: &str, r: Result<usize, Error>, allowed: &[i32]) {
        self.total += 1;
        match r {
            Ok(_) => self.live += 1,
            Err(e) => {
                if e.errno != ESRCH {
                    self.live += 1;
                }
                if !allowed.contains(&e.errno) && self.unexpected.len() < 10 {
                    self.unexpected
                        .push(format!("{what}: {}", rt::errno::describe(&e)));
                }
            }
        }
    }
}

/// An address for `mem`: anywhere, near the end of user space, in the
/// tracee's text or stack, or in kernel space.
fn fuzz_addr(rng: &mut Rng, regs: &IntRegisters) -> u64 {
    match rng.below(7) {
        0 => rng.next(),
        1 => rng.next() & 0x0000_7FFF_FFFF_FFFF,
        2 => 0x0000_8000_0000_0000 - rng.below(0x3000),
        3 => (regs.rip as u64 & !0xFFF).wrapping_add(rng.below(0x2000)),
        4 => (regs.rsp as u64).wrapping_sub(rng.below(0x2000)),
        5 => 0xFFFF_8000_0000_0000 | rng.next(),
        _ => rng.below(0x1_0000),
    }
}

/// A register blob: fully random, or the current registers with a few
/// fields set to random 64-bit values; usually the exact size.
fn fuzz_regs(rng: &mut Rng, current: &[u8], size: usize) -> Vec<u8> {
    let len = match rng.below(8) {
        0 => rng.below(size as u64 * 2) as usize,
        1 => size + 1,
        _ => size,
    };
    if rng.below(2) == 0 || current.len() < size {
        return rng.bytes(len);
    }
    let mut blob = current.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = (rng.below((size / 8) as u64) * 8) as usize;
        blob[at..at + 8].copy_from_slice(&rng.next().to_le_bytes());
    }
    blob.resize(len, 0);
    blob
}

/// One tracee, one non-blocking `O_EXCL` session, `steps` random calls.
fn fuzz_one(rng: &mut Rng, steps: usize, tally: &mut Tally) -> Check {
    let mut kid = Kid::spawn(|| {
        // Not root: whatever the random registers make it do, it cannot
        // signal our processes.
        if become_user(1000).is_err() {
            return 3;
        }
        nap_forever()
    })?;
    let _ = sleep_ms(2);
    let t = Tracer::attach_flags(kid.pid, O_NONBLOCK | O_EXCL).ctx("attach")?;
    let files = Files::open(kid.pid)?;
    let mut int_now = vec![0u8; IntRegisters::SIZE];
    let mut regs = IntRegisters::default();
    let all = [ESRCH, EBUSY, EINVAL, EFAULT, EAGAIN];
    // Reads go into slices of one real buffer (an empty Vec's dangling
    // pointer is a different question than the one fuzzed here).
    let mut big = vec![0u8; 9000];
    for _ in 0..steps {
        match rng.below(12) {
            0..=2 => {
                let len = match rng.below(6) {
                    0 => rng.below(4) as usize,
                    _ => 1,
                };
                let bytes = rng.bytes(len);
                let r = syscall::write(t.fd(), &bytes);
                if let Ok(v) = r {
                    if v > 1 {
                        tally
                            .unexpected
                            .push(format!("trace write {bytes:x?} returned {v}"));
                    }
                }
                tally.note("trace write", r, &[EINVAL, ESRCH, EAGAIN]);
            }
            3 => {
                let len = rng.below(300) as usize;
                let r = syscall::read(t.fd(), &mut big[..len]);
                if let Ok(n) = r {
                    if n % PtraceEvent::SIZE != 0 {
                        tally
                            .unexpected
                            .push(format!("trace read of {len} gave {n} bytes"));
                    }
                }
                tally.note("trace read", r, &[EINVAL]);
            }
            4 => {
                let addr = fuzz_addr(rng, &regs);
                let seek = tracer::seek_to(files.mem, addr).map(|v| v as usize);
                tally.note("mem lseek", seek, &[EINVAL, ESRCH]);
                let len = rng.below(9000) as usize;
                let r = syscall::read(files.mem, &mut big[..len]);
                tally.note("mem read", r, &[EFAULT, EINVAL, ESRCH]);
            }
            5 => {
                let addr = fuzz_addr(rng, &regs);
                let seek = tracer::seek_to(files.mem, addr).map(|v| v as usize);
                tally.note("mem lseek", seek, &[EINVAL, ESRCH]);
                let len = rng.below(64) as usize;
                let data = rng.bytes(len);
                let r = syscall::write(files.mem, &data);
                tally.note("mem write", r, &[EFAULT, EINVAL, ESRCH]);
            }
            6 | 7 => {
                let blob = fuzz_regs(rng, &int_now, IntRegisters::SIZE);
                let r = syscall::write(files.int, &blob);
                tally.note("regs/int write", r, &all);
            }
            8 => {
                let blob = fuzz_regs(rng, &[], FloatRegisters::SIZE);
                let r = syscall::write(files.float, &blob);
                tally.note("regs/float write", r, &all);
            }
            9 => {
                let blob = fuzz_regs(rng, &[], EnvRegisters::SIZE);
                let r = syscall::write(files.env, &blob);
                tally.note("regs/env write", r, &all);
            }
            10 => {
                let len = rng.below(200) as usize;
                let r = syscall::read(files.int, &mut big[..len]);
                if let Ok(IntRegisters::SIZE) = r {
                    int_now.copy_from_slice(&big[..IntRegisters::SIZE]);
                    regs = IntRegisters::from_bytes(&int_now).unwrap_or_default();
                }
                tally.note("regs/int read", r, &[EINVAL, ESRCH]);
                let len = rng.below(500) as usize;
                let r = syscall::read(files.float, &mut big[..len]);
                tally.note("regs/float read", r, &[EINVAL, ESRCH]);
            }
            _ => {
                let len = rng.below(2 * StopInfo::SIZE as u64) as usize;
                let r = syscall::read(files.stop, &mut big[..len]);
                tally.note("stop read", r, &[EINVAL, ESRCH]);
            }
        }
    }
    drop(files);
    drop(t);
    // O_EXCL: closing killed it, wherever the random input left it.
    kid.wait(5000)?;
    Ok(())
}

/// Random paths and open flags under `proc:` (never `O_EXCL`, so nothing
/// is killed; a successful open is closed at once).
fn fuzz_paths(rng: &mut Rng, n: usize, tally: &mut Tally) {
    const ALPHABET: &[u8] = b"0123456789//abcdefgilmnorstuvx.";
    const FILES: [&str; 8] = [
        "trace",
        "regs/int",
        "regs/float",
        "regs/env",
        "mem",
        "stop",
        "status",
        "bogus",
    ];
    for _ in 0..n {
        let path = match rng.below(3) {
            0 => {
                let len = rng.below(20) as usize;
                let s: String = (0..len)
                    .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char)
                    .collect();
                format!("proc:{s}")
            }
            1 => format!(
                "proc:{}/{}",
                rng.below(2_000_000),
                FILES[rng.below(FILES.len() as u64) as usize]
            ),
            _ => format!(
                "proc:{}/{}",
                rng.next(),
                String::from_utf8_lossy(&rng.bytes(6))
            ),
        };
        let flags = match rng.below(4) {
            0 => O_RDONLY,
            1 => O_WRONLY,
            2 => O_RDWR,
            _ => O_RDWR | O_NONBLOCK,
        };
        let r = try_open(&path, flags).map(|_| 0);
        tally.note(
            &format!("open {path:?}"),
            r,
            &[
                ESRCH,
                syscall::error::EPERM,
                EBUSY,
                syscall::error::ENOENT,
                EINVAL,
            ],
        );
    }
}

/// Random operation bytes and lengths, `mem` offsets and lengths, register
/// blobs and paths: the kernel keeps working, every refusal is an error
/// the contract names.
pub fn fuzz_no_panic() -> Check {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut tally = Tally::default();
    for round in 0..4 {
        fuzz_one(&mut rng, 150, &mut tally).map_err(|e| format!("round {round}: {e}"))?;
    }
    let (in_sessions, live) = (tally.total, tally.live);
    fuzz_paths(&mut rng, 200, &mut tally);
    // The kernel still works: a child runs and is reaped, and a normal
    // session still works.
    let mut kid = Kid::spawn(|| 3)?;
    let status = kid.wait(3000)?;
    expect_exit("child forked after fuzzing", status, 3)?;
    let mut kid = Kid::spawn(|| nap_forever())?;
    let t = Tracer::attach(kid.pid).ctx("attach after fuzzing")?;
    let mut reached = op_ok(t.fd(), PTRACE_SYSCALL)?;
    while reached == 0 {
        events(t.fd())?;
        reached = op_ok(t.fd(), PTRACE_WAIT)?;
    }
    expect_eq("PTRACE_SYSCALL after fuzzing", reached, 1)?;
    drop(t);
    kid.kill();
    memory()?;
    ensure!(
        tally.unexpected.is_empty(),
        "refusals outside the contract's errors: {:?}",
        tally.unexpected
    );
    // Control: most calls met a live tracee (the random input did not just
    // kill it at once, leaving ESRCH ever after).
    ensure!(
        live * 2 >= in_sessions,
        "only {} of {} fuzzing results met a live tracee",
        live,
        in_sessions
    );
    Ok(())
}
