//! The debugged process: started stopped at its first instruction, resumed
//! with the contract's operations on a non-blocking trace handle (so a
//! Ctrl-C from gdb can be seen while it runs), its registers and memory,
//! and the software breakpoints planted in it.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use gdb_remote::amd64::{File, Registers};
use syscall::error::{Error, Result, EAGAIN, EFAULT, EINTR, EINVAL};
use syscall::flag::{
    EventFlags, WaitFlags, O_CLOEXEC, O_NONBLOCK, O_RDWR, SIGCONT, SIGINT, SIGKILL, SIGSTOP,
};
use tracer::{
    Tracer, PTRACE_EVENT_CLONE, PTRACE_SIGNAL, PTRACE_SINGLESTEP, PTRACE_STOP_BREAKPOINT,
    PTRACE_STOP_EXIT, PTRACE_STOP_POST_SYSCALL, PTRACE_STOP_SIGNAL, PTRACE_SYSCALL, PTRACE_SYSEMU,
    PTRACE_WAIT,
};

use crate::debug;
use crate::link::Link;

/// The byte planted for a software breakpoint.
const INT3: u8 = 0xCC;

/// `data` of the `event:` registrations.
const TAG_TRACE: usize = 1;
const TAG_LINK: usize = 2;

/// Size of one `event:` record.
const EVENT_SIZE: usize = 24;

/// Where the process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// At the new program's first instruction (the fexec exit stop).
    Entry,
    /// After a single step (or another stop that is not a signal).
    Step,
    /// At an `int3`: `rip` is on a breakpoint this server planted
    /// (`ours`), or just after a program's own `int3`.
    Breakpoint { addr: u64, ours: bool },
    /// A signal (kernel number) is about to be delivered.
    Signal(usize),
    /// Gone, with this wait status.
    Exited(usize),
}

/// How to resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    Continue,
    Step,
}

pub struct Inferior {
    tracer: Tracer,
    pub pid: usize,
    /// `event:` queue watching the trace handle (and the link once set).
    queue: usize,
    link_watched: bool,
    /// Planted breakpoints: address → the original byte.
    breakpoints: BTreeMap<u64, u8>,
    pub stop: Stop,
    /// A signal sent on gdb's behalf (`C sig` with a new signal): its stop
    /// is passed on, not reported.
    auto_pass: Option<usize>,
    reaped: bool,
}

fn register(queue: usize, fd: usize, flags: EventFlags, tag: usize) -> Result<()> {
    let mut record = [0u8; EVENT_SIZE];
    record[0..8].copy_from_slice(&fd.to_le_bytes());
    record[8..16].copy_from_slice(&flags.bits().to_le_bytes());
    record[16..24].copy_from_slice(&tag.to_le_bytes());
    syscall::write(queue, &record).map(|_| ())
}

fn word(bytes: &[u8], index: usize) -> usize {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[index * 8..index * 8 + 8]);
    usize::from_le_bytes(w)
}

fn describe(e: Error) -> String {
    rt::errno::describe(&e)
}

impl Inferior {
    /// Starts `path` with `args` (after argv[0]) and holds it at its first
    /// instruction: the child stops itself with `SIGSTOP`, this process
    /// attaches, sends `SIGCONT`, and follows syscall stops to the exit
    /// stop of a successful `fexec`.
    pub fn start(path: &str, args: &[&str]) -> core::result::Result<Inferior, String> {
        let exe = syscall::open(path, syscall::flag::O_RDONLY | O_CLOEXEC)
            .map_err(|e| format!("{path}: {}", describe(e)))?;
        let _ = syscall::close(exe);
        let pid = rt::process::fork_with(|| {
            let _ = syscall::kill(syscall::getpid().unwrap_or(0), SIGSTOP);
            let err = rt::process::exec(path, args, rt::env());
            rt::eprintln!("gdbserver: cannot execute {}: {}", path, describe(err));
            127
        })
        .map_err(|e| format!("fork: {}", describe(e)))?;
        let (_, status) = rt::process::waitpid(pid, WaitFlags::WUNTRACED)
            .map_err(|e| format!("waitpid: {}", describe(e)))?;
        if !syscall::flag::wifstopped(status) {
            return Err(format!("child {}", rt::process::describe(status)));
        }
        let tracer = Tracer::attach_flags(pid, O_NONBLOCK)
            .map_err(|e| format!("attach to {pid}: {}", describe(e)))?;
        let queue = syscall::open("event:", O_RDWR | O_CLOEXEC)
            .map_err(|e| format!("event: {}", describe(e)))?;
        let mut inferior = Inferior {
            tracer,
            pid,
            queue,
            link_watched: false,
            breakpoints: BTreeMap::new(),
            stop: Stop::Entry,
            auto_pass: None,
            reaped: false,
        };
        register(
            queue,
            inferior.tracer.fd(),
            EventFlags::EVENT_READ | EventFlags::EVENT_WRITE,
            TAG_TRACE,
        )
        .map_err(|e| format!("watch trace: {}", describe(e)))?;
        syscall::kill(pid, SIGCONT).map_err(|e| format!("SIGCONT: {}", describe(e)))?;
        loop {
            match inferior.run(PTRACE_SYSCALL, None, false) {
                Ok(Stop::Exited(status)) => {
                    inferior.stop = Stop::Exited(status);
                    inferior.reap();
                    return Err(format!(
                        "{path} {} before it started",
                        rt::process::describe(status)
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(format!("start: {}", describe(e))),
            }
            let info = inferior
                .tracer
                .stop()
                .map_err(|e| format!("stop info: {}", describe(e)))?;
            if info.cause == PTRACE_STOP_POST_SYSCALL
                && info.nr == syscall::number::SYS_FEXEC as u64
                && info.ret == 0
            {
                inferior.stop = Stop::Entry;
                return Ok(inferior);
            }
        }
    }

    /// Also wake up for input from gdb while the process runs.
    pub fn watch_link(&mut self, link: &Link) -> Result<()> {
        register(self.queue, link.fd(), EventFlags::EVENT_READ, TAG_LINK)?;
        self.link_watched = true;
        Ok(())
    }

    /// Writes `op`, then waits until the operation's stop is reached, an
    /// `int3` is hit, or the process exits. With `interruptible`, a Ctrl-C
    /// from gdb sends the process `SIGINT` (which stops it, as the operation
    /// is then `PTRACE_SIGNAL`).
    ///
    /// The handle is non-blocking and the wait is on its readiness:
    /// `EVENT_READ` (events unread) and `EVENT_WRITE` (the breakpoint is
    /// reached), together with input from gdb. Events are read before the
    /// reached stop is looked at, as the contract orders them. No
    /// `PTRACE_WAIT` is written while an `int3` may be held, because that
    /// would resume it; it is written only to release clone children.
    fn run(&mut self, op: u8, mut link: Option<&mut Link>, interruptible: bool) -> Result<Stop> {
        let mut interrupted = false;
        debug!("op {:#x}", op);
        self.tracer.op(op)?;
        loop {
            let (ready, interrupts) = self.wait(link.as_deref_mut())?;
            if interrupts > 0 && interruptible && !interrupted {
                interrupted = true;
                debug!("interrupt: SIGINT to {}", self.pid);
                syscall::kill(self.pid, SIGINT)?;
            }
            if ready.contains(EventFlags::EVENT_READ) {
                let mut hit = None;
                let mut cloned = false;
                for event in self.tracer.read_events()? {
                    debug!(
                        "event: cause {:#x} a {:#x} b {:#x}",
                        event.cause, event.a, event.b
                    );
                    match event.cause {
                        PTRACE_STOP_EXIT => return Ok(Stop::Exited(event.a)),
                        PTRACE_STOP_BREAKPOINT => hit = Some(event.a as u64),
                        PTRACE_EVENT_CLONE => cloned = true,
                        // A signal event: it was delivered.
                        PTRACE_STOP_SIGNAL if self.auto_pass == Some(event.a) => {
                            self.auto_pass = None
                        }
                        _ => {}
                    }
                }
                if let Some(addr) = hit {
                    return Ok(Stop::Breakpoint {
                        addr,
                        ours: self.breakpoints.contains_key(&addr),
                    });
                }
                if cloned {
                    // Release the new process (untraced): a write does it.
                    match self.tracer.op(PTRACE_WAIT) {
                        Ok(_) => {}
                        Err(e) if e.errno == EAGAIN => {}
                        Err(e) => return Err(e),
                    }
                }
                // Look at the readiness again before a reached stop.
                continue;
            }
            if ready.contains(EventFlags::EVENT_WRITE) {
                let info = self.tracer.stop()?;
                debug!(
                    "reached: cause {:#x} signal {} rip {:#x}",
                    info.cause, info.signal, info.addr
                );
                if info.cause == PTRACE_STOP_SIGNAL {
                    let sig = info.signal as usize;
                    if self.auto_pass == Some(sig) {
                        // Deliver it and go on toward the same kind of stop.
                        self.auto_pass = None;
                        self.tracer.op(op & !PTRACE_SYSEMU)?;
                        continue;
                    }
                    return Ok(Stop::Signal(sig));
                }
                return Ok(Stop::Step);
            }
        }
    }

    /// Blocks until the trace handle or the link is ready; returns the
    /// trace handle's readiness and the number of interrupt bytes gdb sent.
    fn wait(&mut self, link: Option<&mut Link>) -> Result<(EventFlags, usize)> {
        let mut buf = [0u8; EVENT_SIZE * 4];
        let n = match syscall::read(self.queue, &mut buf) {
            Ok(n) => n,
            Err(e) if e.errno == EINTR => return Ok((EventFlags::empty(), 0)),
            Err(e) => return Err(e),
        };
        let mut trace = EventFlags::empty();
        let mut link_ready = false;
        for record in buf[..n.min(buf.len())].chunks_exact(EVENT_SIZE) {
            match word(record, 2) {
                TAG_TRACE => trace |= EventFlags::from_bits_truncate(word(record, 1)),
                TAG_LINK => link_ready = true,
                _ => {}
            }
        }
        let interrupts = match link {
            Some(link) if link_ready => link.fill(false)?,
            // Input from gdb with nobody to take it would spin here.
            None if link_ready && self.link_watched => return Err(Error::new(EINVAL)),
            _ => 0,
        };
        Ok((trace, interrupts))
    }

    /// Resumes as gdb asked (`signal`: a kernel signal to deliver), and
    /// returns the next stop, which is also kept in `self.stop`.
    ///
    /// At a signal stop, the signal is delivered if gdb passes that same
    /// signal and discarded otherwise; another signal is sent with `kill`
    /// and its stop passed on. A breakpoint planted at `rip` is stepped
    /// over first (removed, one step, planted again).
    pub fn resume(&mut self, how: Resume, signal: Option<usize>, link: &mut Link) -> Result<Stop> {
        if let Stop::Exited(_) = self.stop {
            return Ok(self.stop);
        }
        let mut discard = false;
        let mut inject = None;
        match (self.stop, signal) {
            (Stop::Signal(held), Some(sig)) if held == sig => {}
            (Stop::Signal(_), other) => {
                discard = true;
                inject = other;
            }
            (_, other) => inject = other,
        }
        if let Some(sig) = inject {
            syscall::kill(self.pid, sig)?;
            self.auto_pass = Some(sig);
        }
        let sysemu = |discard: bool| if discard { PTRACE_SYSEMU } else { 0 };

        let rip = self.tracer.regs()?.rip as u64;
        if let Some(&orig) = self.breakpoints.get(&rip) {
            self.tracer.write_mem(rip, &[orig])?;
            let stepped = self.run(PTRACE_SINGLESTEP | sysemu(discard), Some(link), false);
            discard = false;
            if !matches!(stepped, Ok(Stop::Exited(_))) {
                self.tracer.write_mem(rip, &[INT3])?;
            }
            let stepped = stepped?;
            if how == Resume::Step || stepped != Stop::Step {
                return self.stopped(stepped);
            }
        }
        let stop = match how {
            Resume::Step => self.run(PTRACE_SINGLESTEP | sysemu(discard), Some(link), false)?,
            Resume::Continue => self.run(PTRACE_SIGNAL | sysemu(discard), Some(link), true)?,
        };
        self.stopped(stop)
    }

    /// Records a stop. At an `int3` that is not ours `rip` is moved past
    /// it, as on hardware, so that going on does not run it again.
    fn stopped(&mut self, stop: Stop) -> Result<Stop> {
        match stop {
            Stop::Exited(_) => self.reap(),
            Stop::Breakpoint { addr, ours: false } => {
                let mut regs = self.tracer.regs()?;
                regs.rip = addr as usize + 1;
                self.tracer.set_regs(&regs)?;
            }
            _ => {}
        }
        self.stop = stop;
        Ok(stop)
    }

    /// Collects the exited child's status so it does not linger.
    fn reap(&mut self) {
        if !self.reaped {
            self.reaped = true;
            let _ = rt::process::wait(self.pid);
        }
    }

    /// Moves `rip` (`c addr`, `s addr`, or for a gdb without `swbreak`).
    pub fn set_pc(&mut self, pc: u64) -> Result<()> {
        let mut regs = self.tracer.regs()?;
        regs.rip = pc as usize;
        self.tracer.set_regs(&regs)
    }

    /// All three register files.
    pub fn registers(&mut self) -> Result<Registers> {
        Ok(Registers {
            int: self.tracer.regs()?,
            float: self.tracer.float_regs()?,
            env: self.tracer.env_regs()?,
        })
    }

    /// Writes back the register files in `files`.
    pub fn set_registers(&mut self, regs: &Registers, files: &[File]) -> Result<()> {
        for file in files {
            match file {
                File::Int => self.tracer.set_regs(&regs.int)?,
                File::Float => self.tracer.set_float_regs(&regs.float)?,
                File::Env => self.tracer.set_env_regs(&regs.env)?,
                File::None => {}
            }
        }
        Ok(())
    }

    /// Reads up to `len` bytes at `addr` (fewer at an unmapped page),
    /// showing the original bytes under planted breakpoints.
    pub fn read_memory(&mut self, addr: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let n = self.tracer.read_mem(addr, &mut buf)?;
        if n == 0 && len > 0 {
            return Err(Error::new(EFAULT));
        }
        buf.truncate(n);
        let end = addr.saturating_add(n as u64);
        for (&at, &orig) in self.breakpoints.range(addr..end) {
            buf[(at - addr) as usize] = orig;
        }
        Ok(buf)
    }

    /// Writes `data` at `addr`; a planted breakpoint inside stays planted
    /// and keeps the newly written byte as its original.
    pub fn write_memory(&mut self, addr: u64, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let n = self.tracer.write_mem(addr, data)?;
        if n != data.len() {
            return Err(Error::new(EFAULT));
        }
        let end = addr.saturating_add(data.len() as u64);
        let inside: Vec<u64> = self.breakpoints.range(addr..end).map(|(&a, _)| a).collect();
        for at in inside {
            self.breakpoints.insert(at, data[(at - addr) as usize]);
            self.tracer.write_mem(at, &[INT3])?;
        }
        Ok(())
    }

    /// Whether a breakpoint is planted at `addr`.
    pub fn is_planted(&self, addr: u64) -> bool {
        self.breakpoints.contains_key(&addr)
    }

    /// Plants an `int3` at `addr` (again: nothing to do).
    pub fn insert_breakpoint(&mut self, addr: u64) -> Result<()> {
        if self.breakpoints.contains_key(&addr) {
            return Ok(());
        }
        let mut orig = [0u8; 1];
        if self.tracer.read_mem(addr, &mut orig)? != 1 {
            return Err(Error::new(EFAULT));
        }
        if self.tracer.write_mem(addr, &[INT3])? != 1 {
            return Err(Error::new(EFAULT));
        }
        self.breakpoints.insert(addr, orig[0]);
        Ok(())
    }

    /// Puts the original byte back (not planted: nothing to do).
    pub fn remove_breakpoint(&mut self, addr: u64) -> Result<()> {
        if let Some(&orig) = self.breakpoints.get(&addr) {
            self.tracer.write_mem(addr, &[orig])?;
            self.breakpoints.remove(&addr);
        }
        Ok(())
    }

    /// Kills the process; returns its wait status.
    pub fn kill(mut self) -> Result<usize> {
        if let Stop::Exited(status) = self.stop {
            return Ok(status);
        }
        syscall::kill(self.pid, SIGKILL)?;
        self.reaped = true;
        rt::process::wait(self.pid)
    }

    /// Removes every breakpoint and detaches; the process runs on. A
    /// signal it is held at is discarded first (one step with
    /// `PTRACE_SYSEMU`), since gdb would have passed it with `C` if it
    /// wanted it delivered. Waits for the process to end and returns its
    /// wait status.
    pub fn detach(mut self, link: &mut Link) -> Result<usize> {
        if let Stop::Signal(_) = self.stop {
            let stepped = self.run(PTRACE_SINGLESTEP | PTRACE_SYSEMU, Some(link), false)?;
            self.stopped(stepped)?;
        }
        if let Stop::Exited(status) = self.stop {
            return Ok(status);
        }
        let planted: Vec<(u64, u8)> = self.breakpoints.iter().map(|(&a, &b)| (a, b)).collect();
        for (addr, orig) in planted {
            let _ = self.tracer.write_mem(addr, &[orig]);
        }
        self.breakpoints.clear();
        let pid = self.pid;
        self.reaped = true;
        drop(self);
        rt::process::wait(pid)
    }
}

impl Drop for Inferior {
    fn drop(&mut self) {
        let _ = syscall::close(self.queue);
    }
}
