//! The tracee and the fuzzer's session on it: random operations on
//! `trace`, `regs/int`, `regs/float`, `regs/env`, `regs/debug`, `stop`,
//! `syscalls` and `mem`, and on an `event:` queue watching them.
//!
//! The fuzzer must never block forever. A blocking `trace` write is made
//! only when it must return: the tracee is *clean* (it runs its own loop,
//! which makes a syscall, signals itself and executes `int3` on every
//! pass, so every resuming operation reaches its breakpoint or queues an
//! event) and the operation is a valid generation-1 op (`PTRACE_WAIT` only
//! while a breakpoint is set), or the write is one the contract refuses
//! at once (`EINVAL`). Anything that may change what the tracee does (a
//! register, debug register or memory write that went through,
//! `SIGSTOP`) marks it
//! *tainted*: from then on the handle is switched to `O_NONBLOCK` before
//! any write that could wait. Eight-byte (generation 2) writes are made
//! only on non-blocking handles, since generation-2 reads wait.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use syscall::error::{Error, Result, EINVAL, ESRCH};
use syscall::flag::{F_GETFL, F_SETFL, O_CLOEXEC, O_EXCL, O_NONBLOCK, O_RDONLY, O_RDWR};
use tracer::{
    EnvRegisters, FloatRegisters, IntRegisters, PtraceEvent, StopInfo, PTRACE_CONT, PTRACE_SIGNAL,
    PTRACE_SINGLESTEP, PTRACE_STOP_BREAKPOINT, PTRACE_SYSCALL, PTRACE_SYSEMU, PTRACE_WAIT,
};

use crate::rng::Rng;

/// The session's files besides `trace`, in this order (`syscalls` and
/// `regs/debug` are contract v1.2 sections 8 and 9).
const FILES: [&str; 7] = [
    "regs/int",
    "regs/float",
    "regs/env",
    "mem",
    "stop",
    "syscalls",
    "regs/debug",
];
const INT: usize = 0;
const FLOAT: usize = 1;
const ENV: usize = 2;
const MEM: usize = 3;
const STOP: usize = 4;
const SYSCALLS: usize = 5;
const DEBUG: usize = 6;
/// `DebugRegisters`: dr0 to dr3, dr6, dr7.
const DEBUG_SIZE: usize = 48;

/// Generation-2 bits the contract accepts (section 7).
const GEN2_VALID: u64 = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x100 | 0x1000;

/// The tracee's uid is `TRACEE_UID_BASE + generation`: no other process
/// (the sacrificial child, a tainted tracee's leftovers) can signal it.
const TRACEE_UID_BASE: usize = 2000;

pub struct Session {
    pub trace: usize,
    /// A generation-1 op was accepted: a breakpoint is set, so a blocking
    /// `PTRACE_WAIT` has something to wait for.
    pub armed: bool,
    /// An 8-byte write went through (generation 2).
    pub gen2: bool,
    pub files: [Option<usize>; 7],
    /// A non-blocking `event:` queue watching the session's handles.
    pub queue: Option<usize>,
}

impl Session {
    fn close(self) {
        for fd in self.files.into_iter().chain([self.queue]).flatten() {
            let _ = syscall::close(fd);
        }
        let _ = syscall::close(self.trace);
    }
}

pub struct Target {
    /// The tracee, until it is reaped.
    pub pid: Option<usize>,
    /// Read end of the pipe on which a new tracee says it is ready.
    ready: Option<usize>,
    pub generation: usize,
    pub tainted: bool,
    pub session: Option<Session>,
    /// Tracees started, sessions opened (of which `O_EXCL`), `int3`
    /// step-overs done.
    pub spawned: usize,
    pub attached: usize,
    pub exclusive: usize,
    pub fixups: usize,
    /// The last registers read, for addresses in the tracee's mappings.
    regs: IntRegisters,
    int_now: Vec<u8>,
    float_now: Vec<u8>,
    scratch: [u8; 512],
}

extern "C" fn on_signal(_sig: usize) {}

/// The tracee's body (see the module doc): never blocks, and on every
/// pass makes a syscall, a signal and an `int3` (a handled `SIGTRAP` when
/// untraced).
fn tracee_main(uid: usize, ready: usize) -> ! {
    if crate::procs::isolate(uid, Some(ready)).is_err() {
        rt::process::exit(3);
    }
    let _ = syscall::write(ready, &[1]);
    let _ = syscall::close(ready);
    for sig in [syscall::flag::SIGUSR1, syscall::flag::SIGTRAP] {
        let act = syscall::data::SigAction {
            sa_handler: Some(on_signal),
            sa_mask: [0; 2],
            sa_flags: syscall::flag::SigActionFlags::empty(),
        };
        if syscall::sigaction(sig, Some(&act), None).is_err() {
            rt::process::exit(4);
        }
    }
    let me = syscall::getpid().unwrap_or(0);
    loop {
        let _ = syscall::getpid();
        let _ = syscall::kill(me, syscall::flag::SIGUSR1);
        // SAFETY: int3 only raises a breakpoint trap, handled by the
        // tracer or by the SIGTRAP handler installed above.
        unsafe { core::arch::asm!("int3") };
        let _ = syscall::sched_yield();
    }
}

/// A write for `syscalls`: numbers the kernel knows, repeats, unknown
/// numbers, "every syscall" (`u64::MAX`) alone or mixed, bad lengths.
fn syscall_set(rng: &mut Rng) -> Vec<u8> {
    use syscall::number::*;
    const KNOWN: [usize; 8] = [
        SYS_GETPID,
        SYS_KILL,
        SYS_YIELD,
        SYS_WRITE,
        SYS_CLOSE,
        SYS_NANOSLEEP,
        SYS_CLONE,
        SYS_EXIT,
    ];
    let n = match rng.below(8) {
        0 => 0,
        1 => 257,
        _ => 1 + rng.below(6) as usize,
    };
    let mut out = Vec::new();
    for _ in 0..n {
        let nr = match rng.below(10) {
            0 => u64::MAX,
            1 => rng.next(),
            _ => *rng.pick(&KNOWN) as u64,
        };
        out.extend_from_slice(&nr.to_le_bytes());
    }
    if rng.one_in(8) && !out.is_empty() {
        out.pop();
    }
    out
}

/// Whether a 1-byte write is a valid generation-1 op.
fn valid_op(b: u8) -> bool {
    let base = b & !PTRACE_SYSEMU;
    let emu = b & PTRACE_SYSEMU != 0;
    match base {
        PTRACE_CONT | PTRACE_SINGLESTEP | PTRACE_SYSCALL | PTRACE_SIGNAL => true,
        PTRACE_WAIT => !emu,
        _ => false,
    }
}

impl Default for Target {
    fn default() -> Target {
        Target {
            pid: None,
            ready: None,
            generation: 0,
            tainted: false,
            session: None,
            spawned: 0,
            attached: 0,
            exclusive: 0,
            fixups: 0,
            regs: IntRegisters::default(),
            int_now: Vec::new(),
            float_now: Vec::new(),
            scratch: [0; 512],
        }
    }
}

impl Target {
    /// Starts a new tracee if there is none. `Ok(true)` if one was started.
    pub fn ensure_tracee(&mut self, pids: &mut crate::Pids) -> Result<bool> {
        if self.pid.is_some() {
            return Ok(false);
        }
        self.generation += 1;
        let uid = TRACEE_UID_BASE + self.generation % 60000;
        let (rd, wr) = rt::io::pipe(O_NONBLOCK | O_CLOEXEC)?;
        let pid = match rt::process::fork() {
            Ok(0) => tracee_main(uid, wr),
            Ok(pid) => pid,
            Err(e) => {
                let _ = syscall::close(rd);
                let _ = syscall::close(wr);
                return Err(e);
            }
        };
        let _ = syscall::close(wr);
        pids.note(pid);
        self.pid = Some(pid);
        self.ready = Some(rd);
        // Let it run first (it isolates itself, then says so).
        let _ = syscall::sched_yield();
        self.tainted = false;
        self.spawned += 1;
        Ok(true)
    }

    /// Opens a session if there is none (random `O_NONBLOCK`, `O_EXCL`).
    pub fn ensure_session(&mut self, rng: &mut Rng) -> Result<usize> {
        let pid = self.pid.ok_or(Error::new(ESRCH))?;
        if let Some(s) = &self.session {
            return Ok(s.trace);
        }
        if let Some(rd) = self.ready {
            // Never attach before the tracee has dropped root and closed
            // its copies of the fuzzer's handles: random register writes
            // must not run code as root, and a copy of a handle would
            // keep sessions alive.
            let mut byte = [0u8; 1];
            match syscall::read(rd, &mut byte) {
                Ok(1) => {
                    let _ = syscall::close(rd);
                    self.ready = None;
                }
                Ok(_) => {
                    // It died before saying so.
                    return Err(Error::new(ESRCH));
                }
                Err(e) => {
                    let _ = syscall::sched_yield();
                    return Err(e);
                }
            }
        }
        let mut flags = O_RDWR | O_CLOEXEC;
        if rng.one_in(2) {
            flags |= O_NONBLOCK;
        }
        let excl = rng.one_in(4);
        if excl {
            flags |= O_EXCL;
        }
        let trace = syscall::open(format!("proc:{pid}/trace"), flags)?;
        self.attached += 1;
        self.exclusive += usize::from(excl);
        self.session = Some(Session {
            trace,
            armed: false,
            gen2: false,
            files: [None; 7],
            queue: None,
        });
        Ok(trace)
    }

    /// The tracee was reaped: its session and files go.
    pub fn gone(&mut self) {
        self.pid = None;
        if let Some(rd) = self.ready.take() {
            let _ = syscall::close(rd);
        }
        if let Some(s) = self.session.take() {
            s.close();
        }
    }

    /// Ends the session (detach, or kill with `O_EXCL`).
    pub fn close_session(&mut self) {
        if let Some(s) = self.session.take() {
            s.close();
        }
    }

    /// `SIGKILL` to the tracee (reaped later).
    pub fn kill(&mut self) -> Result<usize> {
        let pid = self.pid.ok_or(Error::new(ESRCH))?;
        syscall::kill(pid, syscall::flag::SIGKILL)
    }

    /// One of the session's files, opened now if needed: by path or by
    /// `dup(trace, name)`.
    fn file(&mut self, which: usize, rng: &mut Rng) -> Result<usize> {
        let pid = self.pid.ok_or(Error::new(ESRCH))?;
        let s = self.session.as_mut().ok_or(Error::new(ESRCH))?;
        if let Some(fd) = s.files[which] {
            return Ok(fd);
        }
        let name = FILES[which];
        let fd = if rng.one_in(2) {
            let flags = if which == STOP { O_RDONLY } else { O_RDWR };
            syscall::open(format!("proc:{pid}/{name}"), flags | O_CLOEXEC)?
        } else {
            syscall::dup(s.trace, name.as_bytes())?
        };
        s.files[which] = Some(fd);
        Ok(fd)
    }

    /// Closes one of the session's files (it is opened again when next
    /// used).
    pub fn close_file(&mut self, rng: &mut Rng) {
        if let Some(s) = self.session.as_mut() {
            let which = rng.below(FILES.len() as u64) as usize;
            if let Some(fd) = s.files[which].take() {
                let _ = syscall::close(fd);
            }
        }
    }

    fn nonblocking(fd: usize) -> Result<bool> {
        Ok(syscall::fcntl(fd, F_GETFL, 0)? & O_NONBLOCK != 0)
    }

    /// Whether a write of `bytes` on a blocking handle must return.
    fn blocking_safe(&self, s: &Session, bytes: &[u8]) -> bool {
        match bytes.len() {
            1 => {
                if s.gen2 || !valid_op(bytes[0]) {
                    return true;
                }
                if self.tainted {
                    return false;
                }
                bytes[0] != PTRACE_WAIT || s.armed
            }
            8 => {
                let mut w = [0u8; 8];
                w.copy_from_slice(bytes);
                u64::from_ne_bytes(w) & !GEN2_VALID != 0
            }
            _ => true,
        }
    }

    /// A random 0-16-byte write on `trace`: valid ops (with and without
    /// `PTRACE_SYSEMU`), invalid bytes, lengths, and generation-2 words.
    pub fn trace_write(&mut self, rng: &mut Rng) -> Result<usize> {
        let trace = self.ensure_session(rng)?;
        let bytes: Vec<u8> = match rng.below(12) {
            0..=6 => {
                let base = *rng.pick(&[
                    PTRACE_CONT,
                    PTRACE_SINGLESTEP,
                    PTRACE_SYSCALL,
                    PTRACE_SYSCALL,
                    PTRACE_WAIT,
                    PTRACE_SIGNAL,
                ]);
                let emu = if rng.one_in(3) { PTRACE_SYSEMU } else { 0 };
                vec![base | emu]
            }
            7 => vec![rng.next() as u8],
            8 => {
                let mut v = rng.next() & GEN2_VALID;
                if rng.one_in(3) {
                    v |= 1 << rng.below(64);
                }
                v.to_ne_bytes().to_vec()
            }
            _ => {
                let len = rng.below(17) as usize;
                rng.bytes(len)
            }
        };
        let s = self.session.as_ref().ok_or(Error::new(ESRCH))?;
        let mut bytes = bytes;
        if bytes.len() == 8 && !Self::nonblocking(trace)? && !self.blocking_safe(s, &bytes) {
            // Generation 2 only on non-blocking handles (its reads wait).
            bytes[5] |= 1;
        }
        if !Self::nonblocking(trace)? && !self.blocking_safe(s, &bytes) {
            syscall::fcntl(trace, F_SETFL, O_NONBLOCK)?;
        }
        let r = syscall::write(trace, &bytes);
        let s = self.session.as_mut().ok_or(Error::new(ESRCH))?;
        if r.is_ok() {
            match bytes.len() {
                1 if bytes[0] != PTRACE_WAIT => s.armed = true,
                8 => s.gen2 = true,
                _ => {}
            }
        }
        r
    }

    /// A random-length read on `trace`; a clean tracee held at an `int3`
    /// is moved past it (as a debugger would), so it keeps making progress.
    pub fn trace_read(&mut self, rng: &mut Rng, big: &mut [u8]) -> Result<usize> {
        let trace = self.ensure_session(rng)?;
        let s = self.session.as_ref().ok_or(Error::new(ESRCH))?;
        if s.gen2 && !Self::nonblocking(trace)? {
            // Cannot happen (generation 2 needs a non-blocking handle),
            // but a generation-2 read on a blocking handle may wait.
            return Err(Error::new(EINVAL));
        }
        let len = match rng.below(4) {
            0 => rng.below(PtraceEvent::SIZE as u64) as usize,
            1 => PtraceEvent::SIZE,
            _ => rng.below(8 * PtraceEvent::SIZE as u64 + 1) as usize,
        };
        let n = syscall::read(trace, &mut big[..len])?;
        let breakpoint = big[..n]
            .chunks_exact(PtraceEvent::SIZE)
            .filter_map(PtraceEvent::from_bytes)
            .any(|e| e.cause == PTRACE_STOP_BREAKPOINT);
        if breakpoint && !self.tainted {
            let _ = self.step_over_int3(rng);
        }
        Ok(n)
    }

    fn step_over_int3(&mut self, rng: &mut Rng) -> Result<()> {
        let stop_fd = self.file(STOP, rng)?;
        let mut buf = [0u8; StopInfo::SIZE];
        syscall::read(stop_fd, &mut buf)?;
        let stop = StopInfo::from_bytes(&buf).ok_or(Error::new(EINVAL))?;
        if stop.cause != PTRACE_STOP_BREAKPOINT {
            return Ok(());
        }
        let int_fd = self.file(INT, rng)?;
        let mut raw = [0u8; IntRegisters::SIZE];
        syscall::read(int_fd, &mut raw)?;
        let mut regs = IntRegisters::from_bytes(&raw).ok_or(Error::new(EINVAL))?;
        let mem = self.file(MEM, rng)?;
        tracer::seek_to(mem, regs.rip as u64)?;
        let mut byte = [0u8; 1];
        if syscall::read(mem, &mut byte)? == 1 && byte[0] == 0xCC {
            regs.rip += 1;
            syscall::write(int_fd, &regs.to_bytes())?;
            self.fixups += 1;
        }
        Ok(())
    }

    /// A random-length read of a register file or `stop`.
    pub fn regs_read(&mut self, rng: &mut Rng, big: &mut [u8]) -> Result<usize> {
        let (which, size) = *rng.pick(&[
            (INT, IntRegisters::SIZE),
            (FLOAT, FloatRegisters::SIZE),
            (ENV, EnvRegisters::SIZE),
            (STOP, StopInfo::SIZE),
            (SYSCALLS, 8),
            (DEBUG, DEBUG_SIZE),
        ]);
        let fd = self.file(which, rng)?;
        let len = rng.len_around(size, 2 * size);
        let n = syscall::read(fd, &mut big[..len])?;
        if which == INT && n == IntRegisters::SIZE {
            self.int_now = big[..n].to_vec();
            if let Some(regs) = IntRegisters::from_bytes(&self.int_now) {
                self.regs = regs;
            }
        }
        if which == FLOAT && n == FloatRegisters::SIZE {
            self.float_now = big[..n].to_vec();
        }
        Ok(n)
    }

    /// A random write of a register file: random bytes, or the current
    /// registers with a few words changed, at random lengths. One that
    /// goes through (and changes anything) taints the tracee.
    pub fn regs_write(&mut self, rng: &mut Rng) -> Result<usize> {
        let (which, size) = *rng.pick(&[
            (INT, IntRegisters::SIZE),
            (INT, IntRegisters::SIZE),
            (FLOAT, FloatRegisters::SIZE),
            (ENV, EnvRegisters::SIZE),
            (SYSCALLS, 8),
            (DEBUG, DEBUG_SIZE),
        ]);
        let fd = self.file(which, rng)?;
        if which == SYSCALLS {
            // The set of syscalls that stop: it cannot make a clean tracee
            // stop making progress (its signals and `int3` still stop it).
            return syscall::write(fd, &syscall_set(rng));
        }
        if which == DEBUG {
            let len = rng.len_around(DEBUG_SIZE, 2 * DEBUG_SIZE);
            let mut blob = rng.bytes(len);
            if blob.len() == DEBUG_SIZE && rng.one_in(2) {
                // dr7 with only local enables, R/W and LEN bits, addresses
                // in the tracee's text and stack.
                let dr7 = rng.next() & 0xFFFF_0055;
                blob[40..48].copy_from_slice(&dr7.to_le_bytes());
                blob[32..40].copy_from_slice(&0u64.to_le_bytes());
                for i in 0..4 {
                    let at = self.mem_addr(rng) & !7;
                    blob[i * 8..i * 8 + 8].copy_from_slice(&at.to_le_bytes());
                }
            }
            let r = syscall::write(fd, &blob);
            if r.is_ok() {
                self.tainted = true;
            }
            return r;
        }
        if which != ENV {
            // Start from the registers as they are now (a random blob
            // mostly fails validation).
            let n = syscall::read(fd, &mut self.scratch[..size])?;
            let now = self.scratch[..n].to_vec();
            if which == INT {
                self.int_now = now;
            } else {
                self.float_now = now;
            }
        }
        let len = rng.len_around(size, 2 * size);
        let current = match which {
            INT => &self.int_now,
            FLOAT => &self.float_now,
            _ => &self.int_now,
        };
        let mut blob = if which != ENV && current.len() == size && !rng.one_in(3) {
            let mut b = current.clone();
            for _ in 0..rng.below(3) {
                let at = (rng.below((size / 8) as u64) * 8) as usize;
                b[at..at + 8].copy_from_slice(&rng.next().to_le_bytes());
            }
            b
        } else {
            rng.bytes(size)
        };
        let unchanged = blob == *current;
        blob.resize(len, 0);
        let r = syscall::write(fd, &blob);
        if r.is_ok() && !unchanged {
            self.tainted = true;
        }
        r
    }

    /// An address for `mem`: edges (2^63, 2^64, the end of user space,
    /// kernel space), page boundaries, the tracee's real mappings (its
    /// text, stack and heap: the fuzzer's own layout, as the tracee is a
    /// fork of it), or anything.
    fn mem_addr(&self, rng: &mut Rng) -> u64 {
        let near = |rng: &mut Rng, at: u64| at.wrapping_add(rng.below(0x2000)).wrapping_sub(0x1000);
        let local = 0u8;
        match rng.below(12) {
            0 => near(rng, 1 << 63),
            1 => 0u64.wrapping_sub(rng.below(0x2000) + 1),
            2 => near(rng, 0x0000_8000_0000_0000),
            3 => 0xFFFF_8000_0000_0000 | rng.next(),
            4 => (rng.below(1 << 35) << 12).wrapping_sub(rng.below(16)),
            5 => near(rng, self.regs.rip as u64 & !0xFFF),
            6 => near(rng, self.regs.rsp as u64 & !0xFFF),
            7 => near(rng, tracee_main as *const () as u64),
            8 => near(rng, &local as *const u8 as u64),
            9 => near(rng, self.int_now.as_ptr() as u64),
            10 => rng.below(0x10000),
            _ => rng.next(),
        }
    }

    /// A seek to a random address, then a random-length read or write.
    pub fn mem_op(&mut self, rng: &mut Rng, big: &mut [u8]) -> Result<usize> {
        let fd = self.file(MEM, rng)?;
        let addr = self.mem_addr(rng);
        // A raw lseek: redox_syscall's wrapper misreads high results.
        tracer::seek_to(fd, addr)?;
        if rng.one_in(3) {
            let len = match rng.below(4) {
                0 => rng.below(16) as usize,
                1 => 4096,
                _ => rng.below(128) as usize,
            };
            rng.fill(&mut big[..len]);
            let r = syscall::write(fd, &big[..len]);
            if matches!(r, Ok(n) if n > 0) {
                self.tainted = true;
            }
            r
        } else {
            let len = match rng.below(4) {
                0 => rng.below(16) as usize,
                1 => 4096 + rng.below(2) as usize,
                _ => rng.below(big.len() as u64) as usize,
            };
            syscall::read(fd, &mut big[..len])
        }
    }

    /// A signal to the tracee; `SIGSTOP` taints it (a job-control stop
    /// would make a blocking op wait).
    pub fn signal(&mut self, rng: &mut Rng) -> Result<usize> {
        let pid = self.pid.ok_or(Error::new(ESRCH))?;
        use syscall::flag::*;
        let sig = *rng.pick(&[
            SIGUSR1, SIGUSR2, SIGSTOP, SIGCONT, SIGSEGV, SIGTERM, SIGCHLD,
        ]);
        if sig == SIGSTOP {
            self.tainted = true;
        }
        syscall::kill(pid, sig)
    }

    /// Registers session handles in a non-blocking `event:` queue with
    /// random flags, or reads the queue with a random length.
    pub fn event_op(&mut self, rng: &mut Rng, big: &mut [u8]) -> Result<usize> {
        self.ensure_session(rng)?;
        let fds = self.fds();
        let s = self.session.as_mut().ok_or(Error::new(ESRCH))?;
        let queue = match s.queue {
            Some(q) => q,
            None => {
                let q = syscall::open("event:", O_RDWR | O_NONBLOCK | O_CLOEXEC)?;
                s.queue = Some(q);
                q
            }
        };
        if rng.one_in(2) {
            let len = rng.below(4 * 24 + 1) as usize;
            return syscall::read(queue, &mut big[..len]);
        }
        let mut records = Vec::new();
        for _ in 0..rng.below(3) + 1 {
            let id = if rng.one_in(8) {
                rng.below(64) as usize
            } else {
                *rng.pick(&fds)
            };
            let flags = match rng.below(5) {
                0 => 0,
                1 => 1,
                2 => 2,
                3 => 3,
                _ => rng.next() & 0xF,
            };
            records.extend_from_slice(&(id as u64).to_le_bytes());
            records.extend_from_slice(&flags.to_le_bytes());
            records.extend_from_slice(&rng.next().to_le_bytes());
        }
        if rng.one_in(8) {
            records.truncate(rng.below(records.len() as u64) as usize);
        }
        syscall::write(queue, &records)
    }

    /// Switches the session's handle to non-blocking (never back).
    pub fn set_nonblocking(&mut self) -> Result<usize> {
        let s = self.session.as_ref().ok_or(Error::new(ESRCH))?;
        syscall::fcntl(s.trace, F_SETFL, O_NONBLOCK)
    }

    /// The session's descriptors (for `dup`).
    pub fn fds(&self) -> Vec<usize> {
        match &self.session {
            Some(s) => core::iter::once(s.trace)
                .chain(s.files.iter().flatten().copied())
                .collect(),
            None => Vec::new(),
        }
    }
}
