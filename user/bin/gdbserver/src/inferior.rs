//! The debugged process: started stopped at its first instruction, resumed
//! with the contract's operations on a non-blocking trace handle (so a
//! Ctrl-C from gdb can be seen while it runs), its registers and memory,
//! and the software breakpoints planted in it.
//!
//! Processes the program forks are claimed at once and let go untraced,
//! with the planted breakpoints taken out of their copy of memory.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use gdb_remote::amd64::{File, Registers};
use syscall::error::{Error, Result, EAGAIN, EFAULT, EINTR, EINVAL, ESRCH};
use syscall::flag::{
    CloneFlags, EventFlags, WaitFlags, O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_RDWR, SIGCHLD, SIGCONT,
    SIGINT, SIGKILL, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGWINCH, SIG_DFL, SIG_IGN,
};
use tracer::{
    Tracer, PTRACE_CONT, PTRACE_EVENT_CLONE, PTRACE_SIGNAL, PTRACE_SINGLESTEP,
    PTRACE_STOP_BREAKPOINT, PTRACE_STOP_EXIT, PTRACE_STOP_POST_SYSCALL, PTRACE_STOP_SIGNAL,
    PTRACE_SYSCALL, PTRACE_SYSEMU, PTRACE_WAIT,
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
    /// Held at a signal stop: `sig` (kernel number) is about to be
    /// delivered, and `handler` is its action (`SIG_DFL`, `SIG_IGN` or the
    /// handler's address).
    Signal { sig: usize, handler: usize },
    /// A single step ended after the kernel delivered `sig` during it (the
    /// contract reports a signal as an event during a step, and delivers
    /// it; a handler, if any, has been entered: the pc is its first
    /// instruction).
    Delivered(usize),
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
    /// Signals (bit `sig - 1`) sent on gdb's behalf (`C sig` with a new
    /// signal): their stops and events are passed on, not reported.
    /// Cleared when a resume returns.
    quiet: u64,
    /// A `SIGCONT` this server sent to end a job-control stop: passed on
    /// silently when it shows up.
    quiet_cont: bool,
    /// A Ctrl-C from gdb not acted upon yet (cleared when a resume returns:
    /// the program is stopped then, as gdb asked).
    interrupt_pending: bool,
    /// The program's name as `proc:<pid>/status` gives it (its argv[0]): a
    /// change means it ran `fexec`, and the breakpoint table is stale.
    name: String,
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

fn bit(sig: usize) -> u64 {
    if (1..=64).contains(&sig) {
        1 << (sig - 1)
    } else {
        0
    }
}

/// Whether delivering `sig` with action `handler` starts a job-control
/// stop (a stop signal left at its default action).
fn stops_job(sig: usize, handler: usize) -> bool {
    handler == SIG_DFL && matches!(sig, SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU)
}

/// Whether delivering `sig` with action `handler` does anything (runs a
/// handler, stops or ends the process), as the kernel's default actions
/// say.
fn has_effect(sig: usize, handler: usize) -> bool {
    match handler {
        SIG_IGN => false,
        SIG_DFL => !matches!(sig, SIGCHLD | SIGURG | SIGWINCH | SIGCONT),
        _ => true,
    }
}

/// The value of `key=` in a `proc:<pid>/status` line; `name` is the last
/// field and takes the rest of the line (it may contain spaces).
fn status_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let line = line.trim_end_matches('\n');
    if key == "name" {
        return line.split_once(" name=").map(|(_, name)| name);
    }
    line.split(' ')
        .find_map(|field| field.strip_prefix(key)?.strip_prefix('='))
}

impl Inferior {
    /// Starts `path` with `args` (after argv[0]) and holds it at its first
    /// instruction: the child stops itself with `SIGSTOP`, this process
    /// attaches, sends `SIGCONT`, and follows syscall stops to the exit
    /// stop of a successful `fexec`.
    pub fn start(path: &str, args: &[&str]) -> core::result::Result<Inferior, String> {
        let exe = syscall::open(path, O_RDONLY | O_CLOEXEC)
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
            quiet: 0,
            quiet_cont: false,
            interrupt_pending: false,
            name: String::new(),
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
                inferior.name = inferior.status_of("name").unwrap_or_default();
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

    /// One field of `proc:<pid>/status` (`None` if it cannot be read).
    fn status_of(&self, key: &str) -> Option<String> {
        let fd = syscall::open(format!("proc:{}/status", self.pid), O_RDONLY | O_CLOEXEC).ok()?;
        let mut buf = [0u8; 512];
        let n = syscall::read(fd, &mut buf);
        let _ = syscall::close(fd);
        let line = core::str::from_utf8(&buf[..n.ok()?.min(buf.len())]).ok()?;
        status_field(line, key).map(String::from)
    }

    /// After a stop: if the program's name changed, it ran `fexec` (gdb is
    /// not told: `continue` does not see syscalls), so its memory is a new
    /// image and no breakpoint is planted in it any more.
    fn check_exec(&mut self) {
        let Some(name) = self.status_of("name") else {
            return;
        };
        if name != self.name {
            if !self.breakpoints.is_empty() {
                debug!(
                    "{} became {}: forgetting {} breakpoints",
                    self.name,
                    name,
                    self.breakpoints.len()
                );
            }
            self.breakpoints.clear();
            self.name = name;
        }
    }

    /// Whether the process has exited: looks for its exit event (a
    /// `SIGKILL` from another process can end it while it is stopped, with
    /// nobody waiting on the trace handle). Once seen, the exit is the
    /// current stop and the process is reaped.
    pub fn check_gone(&mut self) -> bool {
        if let Stop::Exited(_) = self.stop {
            return true;
        }
        let Ok(events) = self.tracer.read_events() else {
            return false;
        };
        for event in events {
            debug!(
                "event: cause {:#x} a {:#x} b {:#x}",
                event.cause, event.a, event.b
            );
            match event.cause {
                PTRACE_STOP_EXIT => {
                    self.stop = Stop::Exited(event.a);
                    self.breakpoints.clear();
                    self.reap();
                    return true;
                }
                PTRACE_EVENT_CLONE => {
                    // One not claimed is released by the next write.
                    self.let_child_go(event.a, event.b);
                }
                _ => {}
            }
        }
        false
    }

    /// `Err(ESRCH)` once the process is gone.
    fn alive(&self) -> Result<()> {
        match self.stop {
            Stop::Exited(_) => Err(Error::new(ESRCH)),
            _ => Ok(()),
        }
    }

    /// A new process or thread, held for this server: it is claimed (its
    /// `trace` opened, which the contract lets the tracer it is held for
    /// do), and for a process with its own copy of memory the planted
    /// breakpoints are taken out of that copy; then the handle is closed,
    /// which lets it run on, untraced. A thread (`CLONE_VM`) shares the
    /// program's memory, breakpoints included: if it runs into one, it
    /// dies of `SIGTRAP`. If the claim fails, the child is released by the
    /// next write to the trace handle; returns whether it was claimed.
    fn let_child_go(&mut self, child: usize, flags: usize) -> bool {
        let mut handle = match Tracer::attach(child) {
            Ok(handle) => handle,
            Err(e) => {
                debug!("claim child {}: {}", child, describe(e));
                return false;
            }
        };
        if flags & CloneFlags::CLONE_VM.bits() == 0 {
            for (&addr, &orig) in &self.breakpoints {
                let mut byte = [0u8; 1];
                // Only an int3 is taken out: during a step-over the byte at
                // the pc is the original already.
                if handle.read_mem(addr, &mut byte) == Ok(1) && byte[0] == INT3 {
                    if let Err(e) = handle.write_mem(addr, &[orig]) {
                        debug!("child {}: restore {:#x}: {}", child, addr, describe(e));
                    }
                }
            }
        }
        debug!("child {} (flags {:#x}) runs on untraced", child, flags);
        drop(handle);
        true
    }

    /// Writes `op`, then waits until the operation's stop is reached, an
    /// `int3` is hit, or the process exits. With `interruptible`, a Ctrl-C
    /// from gdb (also one that came in with the resume packet) stops the
    /// process with `SIGINT`; see [`Inferior::interrupt`].
    ///
    /// The handle is non-blocking and the wait is on its readiness:
    /// `EVENT_READ` (events unread) and `EVENT_WRITE` (the breakpoint is
    /// reached), together with input from gdb. Events are read before the
    /// reached stop is looked at, as the contract orders them. Nothing is
    /// written while an `int3` may be held, because that would resume it,
    /// except `PTRACE_WAIT` to release a clone child that could not be
    /// claimed when no `int3` was hit.
    fn run(&mut self, op: u8, link: Option<&mut Link>, interruptible: bool) -> Result<Stop> {
        let stop = self.run_until(op, link, interruptible)?;
        if let Stop::Exited(_) = stop {
            return Ok(stop);
        }
        self.check_exec();
        Ok(match stop {
            Stop::Breakpoint { addr, .. } => Stop::Breakpoint {
                addr,
                ours: self.breakpoints.contains_key(&addr),
            },
            other => other,
        })
    }

    fn run_until(
        &mut self,
        mut op: u8,
        mut link: Option<&mut Link>,
        interruptible: bool,
    ) -> Result<Stop> {
        // A signal delivered during a step, to report at its end.
        let mut delivered = None;
        let mut interrupted = false;
        debug!("op {:#x}", op);
        self.tracer.op(op)?;
        loop {
            if interruptible {
                if let Some(link) = link.as_deref_mut() {
                    if link.take_interrupts() > 0 {
                        self.interrupt_pending = true;
                    }
                }
                if self.interrupt_pending && !interrupted {
                    if let Some(new_op) = self.interrupt(op)? {
                        op = new_op;
                        interrupted = true;
                        self.interrupt_pending = false;
                    }
                }
            }
            let ready = self.wait(link.as_deref_mut())?;
            if interruptible && link.as_deref().is_some_and(Link::has_interrupts) {
                // Act on it before blocking again.
                continue;
            }
            if ready.contains(EventFlags::EVENT_READ) {
                let mut hit = None;
                let mut release = false;
                for event in self.tracer.read_events()? {
                    debug!(
                        "event: cause {:#x} a {:#x} b {:#x}",
                        event.cause, event.a, event.b
                    );
                    match event.cause {
                        PTRACE_STOP_EXIT => return Ok(Stop::Exited(event.a)),
                        PTRACE_STOP_BREAKPOINT => hit = Some(event.a as u64),
                        PTRACE_EVENT_CLONE => release |= !self.let_child_go(event.a, event.b),
                        PTRACE_STOP_SIGNAL => {
                            if let Some(sig) = self.signal_delivered(event.a, event.b) {
                                delivered = Some(sig);
                            }
                        }
                        _ => {}
                    }
                }
                if let Some(addr) = hit {
                    return Ok(Stop::Breakpoint { addr, ours: false });
                }
                if release {
                    // A child that could not be claimed is released by a
                    // write; this one resumes nothing (no int3 is held).
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
                if info.cause == 0 {
                    // Not held (any more): nothing reached yet.
                    continue;
                }
                if info.cause == PTRACE_STOP_SIGNAL {
                    let sig = info.signal as usize;
                    let handler = info.handler as usize;
                    if self.take_quiet(sig) {
                        // Deliver it (a default stop signal is discarded,
                        // see `resume`) and go on toward the same stop.
                        let discard = if stops_job(sig, handler) {
                            PTRACE_SYSEMU
                        } else {
                            0
                        };
                        self.tracer.op((op & !PTRACE_SYSEMU) | discard)?;
                        continue;
                    }
                    return Ok(Stop::Signal { sig, handler });
                }
                return Ok(match delivered {
                    Some(sig) => Stop::Delivered(sig),
                    None => Stop::Step,
                });
            }
        }
    }

    /// Whether a signal stop or event for `sig` is one this server caused
    /// (gdb's `C sig` with a new signal, or its own `SIGCONT`): it is then
    /// passed on without a report, and forgotten.
    fn take_quiet(&mut self, sig: usize) -> bool {
        if self.quiet & bit(sig) != 0 {
            self.quiet &= !bit(sig);
            return true;
        }
        if sig == SIGCONT && self.quiet_cont {
            self.quiet_cont = false;
            return true;
        }
        false
    }

    /// A signal event: the kernel is delivering `sig` (action `handler`)
    /// while the operation is not `PTRACE_SIGNAL` (a single step). A stop
    /// signal at its default action has put the process in a job-control
    /// stop, which would hang the step (only `SIGCONT` or `SIGKILL` end
    /// it): it is ended with `SIGCONT` at once (on this one-CPU kernel the
    /// event is read only after the stop has begun). Returns the signal if
    /// it is to be reported at the end of the step.
    fn signal_delivered(&mut self, sig: usize, handler: usize) -> Option<usize> {
        let quiet = self.take_quiet(sig);
        if stops_job(sig, handler) {
            debug!("signal {} stopped {}: SIGCONT", sig, self.pid);
            if syscall::kill(self.pid, SIGCONT).is_ok() {
                self.quiet_cont = true;
            }
        }
        (!quiet && has_effect(sig, handler)).then_some(sig)
    }

    /// Acts on a Ctrl-C from gdb while the process runs under `op`: a
    /// job-control stop is ended first (`SIGCONT`); then the process gets
    /// `SIGINT` and stops at it. During a step the operation is changed to
    /// `PTRACE_SIGNAL` first (a step over a blocking system call would
    /// never end by itself), unless the step has ended already (then the
    /// interrupt stays pending: the step's stop satisfies it, or a
    /// `continue` that follows is interrupted at once). Returns the
    /// operation now in force, or `None` when nothing was done.
    fn interrupt(&mut self, op: u8) -> Result<Option<u8>> {
        if self.status_of("state").as_deref() == Some("stopped") {
            debug!("{} is in a job-control stop: SIGCONT", self.pid);
            syscall::kill(self.pid, SIGCONT)?;
            self.quiet_cont = true;
        }
        if op & !PTRACE_SYSEMU != PTRACE_SIGNAL {
            if self.tracer.stop()?.cause != 0 {
                return Ok(None);
            }
            debug!("interrupt: stop at the next signal");
            self.tracer.op(PTRACE_SIGNAL)?;
        }
        debug!("interrupt: SIGINT to {}", self.pid);
        syscall::kill(self.pid, SIGINT)?;
        Ok(Some(PTRACE_SIGNAL))
    }

    /// Blocks until the trace handle or the link is ready; returns the
    /// trace handle's readiness. Input from gdb is queued on the link,
    /// interrupt requests included.
    fn wait(&mut self, link: Option<&mut Link>) -> Result<EventFlags> {
        let mut buf = [0u8; EVENT_SIZE * 4];
        let n = match syscall::read(self.queue, &mut buf) {
            Ok(n) => n,
            Err(e) if e.errno == EINTR => return Ok(EventFlags::empty()),
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
        match link {
            Some(link) if link_ready => link.fill()?,
            // Input from gdb with nobody to take it would spin here.
            None if link_ready && self.link_watched => return Err(Error::new(EINVAL)),
            _ => {}
        }
        Ok(trace)
    }

    /// Resumes as gdb asked (`signal`: a kernel signal to deliver), and
    /// returns the next stop, which is also kept in `self.stop`.
    ///
    /// At a signal stop, the signal is delivered if gdb passes that same
    /// signal and discarded otherwise; another signal is sent with `kill`
    /// and its stop passed on. A stop signal at its default action is
    /// always discarded: the program is stopped under gdb already, and a
    /// job-control stop would hang the session. A breakpoint planted at
    /// `rip` is stepped over first (removed, one step, planted again).
    /// When the process turns out to be gone, the stop is its exit.
    pub fn resume(&mut self, how: Resume, signal: Option<usize>, link: &mut Link) -> Result<Stop> {
        let result = self.resume_inner(how, signal, link);
        // An injected signal that was not delivered (blocked) is not
        // passed silently later; a Ctrl-C is answered by this stop.
        self.quiet = 0;
        self.interrupt_pending = false;
        let stop = match result {
            Ok(stop) => stop,
            Err(e) if self.check_gone() => {
                debug!("resume: {} (the process is gone)", describe(e));
                self.stop
            }
            Err(e) => return Err(e),
        };
        self.stopped(stop)
    }

    fn resume_inner(
        &mut self,
        how: Resume,
        signal: Option<usize>,
        link: &mut Link,
    ) -> Result<Stop> {
        if self.check_gone() {
            return Ok(self.stop);
        }
        let (mut discard, inject) = match (self.stop, signal) {
            (Stop::Signal { sig: held, handler }, Some(sig)) if held == sig => {
                if stops_job(held, handler) {
                    debug!("discarding stop signal {}", held);
                }
                (stops_job(held, handler), None)
            }
            (Stop::Signal { .. }, other) => (true, other),
            // Delivered already: passing it again would deliver it twice.
            (Stop::Delivered(held), Some(sig)) if held == sig => (false, None),
            (_, other) => (false, other),
        };
        if let Some(sig) = inject {
            syscall::kill(self.pid, sig)?;
            self.quiet |= bit(sig);
        }
        let sysemu = |discard: bool| if discard { PTRACE_SYSEMU } else { 0 };

        let rip = self.tracer.regs()?.rip as u64;
        if let Some(&orig) = self.breakpoints.get(&rip) {
            if self.restore_byte(rip, orig)? {
                let stepped = self.run(PTRACE_SINGLESTEP | sysemu(discard), Some(link), true);
                discard = false;
                // Not after an exit, nor into a new image (`fexec`).
                if !matches!(stepped, Ok(Stop::Exited(_))) && self.breakpoints.contains_key(&rip) {
                    self.tracer.write_mem(rip, &[INT3])?;
                }
                let stepped = stepped?;
                if how == Resume::Step || stepped != Stop::Step {
                    return Ok(stepped);
                }
            }
        }
        match how {
            Resume::Step => self.run(PTRACE_SINGLESTEP | sysemu(discard), Some(link), true),
            Resume::Continue => self.run(PTRACE_SIGNAL | sysemu(discard), Some(link), true),
        }
    }

    /// Records a stop. At an `int3` that is not ours `rip` is moved past
    /// it, as on hardware, so that going on does not run it again.
    fn stopped(&mut self, stop: Stop) -> Result<Stop> {
        self.stop = stop;
        match stop {
            Stop::Exited(_) => {
                self.breakpoints.clear();
                self.reap();
            }
            Stop::Breakpoint { addr, ours: false } => {
                let mut regs = self.tracer.regs()?;
                regs.rip = addr as usize + 1;
                self.tracer.set_regs(&regs)?;
            }
            _ => {}
        }
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
        self.alive()?;
        let mut regs = self.tracer.regs()?;
        regs.rip = pc as usize;
        self.tracer.set_regs(&regs)
    }

    /// All three register files.
    pub fn registers(&mut self) -> Result<Registers> {
        self.alive()?;
        Ok(Registers {
            int: self.tracer.regs()?,
            float: self.tracer.float_regs()?,
            env: self.tracer.env_regs()?,
        })
    }

    /// Writes back the register files in `files`.
    pub fn set_registers(&mut self, regs: &Registers, files: &[File]) -> Result<()> {
        self.alive()?;
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
        self.alive()?;
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
    /// and keeps the newly written byte as its original. A write that
    /// stops short (an unmapped page) fails with `EFAULT`, with the
    /// breakpoints in the part written planted again.
    pub fn write_memory(&mut self, addr: u64, data: &[u8]) -> Result<()> {
        self.alive()?;
        if data.is_empty() {
            return Ok(());
        }
        let written = self.tracer.write_mem(addr, data)?.min(data.len());
        let end = addr.saturating_add(written as u64);
        let inside: Vec<u64> = self.breakpoints.range(addr..end).map(|(&a, _)| a).collect();
        let mut result = Ok(());
        for at in inside {
            self.breakpoints.insert(at, data[(at - addr) as usize]);
            if let Err(e) = self.tracer.write_mem(at, &[INT3]) {
                result = Err(e);
            }
        }
        if written != data.len() {
            return Err(Error::new(EFAULT));
        }
        result
    }

    /// Whether a breakpoint is planted at `addr`.
    pub fn is_planted(&self, addr: u64) -> bool {
        self.breakpoints.contains_key(&addr)
    }

    /// `result`, or `Ok` if the process turns out to be gone: once it is,
    /// there is nothing to plant a breakpoint in or remove it from.
    fn unless_gone(&mut self, result: Result<()>) -> Result<()> {
        match result {
            Err(_) if self.check_gone() => Ok(()),
            other => other,
        }
    }

    /// Plants an `int3` at `addr` (again: nothing to do).
    pub fn insert_breakpoint(&mut self, addr: u64) -> Result<()> {
        let result = self.insert_inner(addr);
        self.unless_gone(result)
    }

    fn insert_inner(&mut self, addr: u64) -> Result<()> {
        self.alive()?;
        let mut orig = [0u8; 1];
        if self.tracer.read_mem(addr, &mut orig)? != 1 {
            return Err(Error::new(EFAULT));
        }
        if self.breakpoints.contains_key(&addr) {
            if orig[0] == INT3 {
                return Ok(());
            }
            // Stale (the memory was replaced): plant it afresh.
            self.breakpoints.remove(&addr);
        }
        if self.tracer.write_mem(addr, &[INT3])? != 1 {
            return Err(Error::new(EFAULT));
        }
        self.breakpoints.insert(addr, orig[0]);
        Ok(())
    }

    /// Puts the original byte back (not planted: nothing to do).
    pub fn remove_breakpoint(&mut self, addr: u64) -> Result<()> {
        let Some(&orig) = self.breakpoints.get(&addr) else {
            return Ok(());
        };
        let result = self.alive().and_then(|_| self.restore_byte(addr, orig));
        match self.unless_gone(result.map(|_| ())) {
            Ok(()) => {
                self.breakpoints.remove(&addr);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Writes `orig` back at `addr` if the `int3` is still there; returns
    /// whether it was. If it is not (the program replaced its memory with
    /// `fexec`, or wrote there itself), the breakpoint is forgotten and
    /// nothing is written.
    fn restore_byte(&mut self, addr: u64, orig: u8) -> Result<bool> {
        let mut byte = [0u8; 1];
        if self.tracer.read_mem(addr, &mut byte)? != 1 {
            return Err(Error::new(EFAULT));
        }
        if byte[0] != INT3 {
            debug!("no int3 at {:#x} any more: forgotten", addr);
            self.breakpoints.remove(&addr);
            return Ok(false);
        }
        if self.tracer.write_mem(addr, &[orig])? != 1 {
            return Err(Error::new(EFAULT));
        }
        Ok(true)
    }

    /// Takes every planted breakpoint out (best effort: on every way out,
    /// the program must not be left with `int3`s it would die of).
    fn unplant_all(&mut self) {
        let planted: Vec<(u64, u8)> = self.breakpoints.iter().map(|(&a, &b)| (a, b)).collect();
        for (addr, orig) in planted {
            if let Err(e) = self.restore_byte(addr, orig) {
                debug!("restore {:#x}: {}", addr, describe(e));
            }
        }
        self.breakpoints.clear();
    }

    /// Kills the process; returns its wait status.
    pub fn kill(mut self) -> Result<usize> {
        if self.check_gone() {
            if let Stop::Exited(status) = self.stop {
                return Ok(status);
            }
        }
        self.breakpoints.clear();
        syscall::kill(self.pid, SIGKILL)?;
        self.reaped = true;
        rt::process::wait(self.pid)
    }

    /// Removes every breakpoint and detaches; the process runs on. A
    /// signal it is held at is discarded (it is resumed with
    /// `PTRACE_CONT | PTRACE_SYSEMU` before the handle is closed), since
    /// gdb would have passed it with `C` if it wanted it delivered. Waits
    /// for the process to end and returns its wait status.
    pub fn detach(mut self) -> Result<usize> {
        if self.check_gone() {
            if let Stop::Exited(status) = self.stop {
                return Ok(status);
            }
        }
        self.unplant_all();
        if let Stop::Signal { .. } = self.stop {
            if let Err(e) = self.tracer.op(PTRACE_CONT | PTRACE_SYSEMU) {
                debug!("discard the held signal: {}", describe(e));
            }
        }
        let pid = self.pid;
        self.reaped = true;
        drop(self);
        rt::process::wait(pid)
    }
}

impl Drop for Inferior {
    /// Every way out (an I/O error on the link, a failed detach) leaves
    /// the program without our `int3`s; dropping the tracer then detaches.
    fn drop(&mut self) {
        if !matches!(self.stop, Stop::Exited(_)) {
            self.unplant_all();
        }
        let _ = syscall::close(self.queue);
    }
}
