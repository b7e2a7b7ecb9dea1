//! `strace [-f] [-e trace=NAME,...] PROGRAM ARGS...`: runs PROGRAM under the
//! `proc:` tracing interface and prints every system call it makes (one
//! line each, on stderr), the signals it gets and how it ends.
//!
//! Start-up: PROGRAM is opened here, then a child is forked that stops
//! itself (`kill(getpid(), SIGSTOP)`); once `waitpid(WUNTRACED)` sees the
//! stop, strace attaches (`proc:<pid>/trace`, non-blocking), sends
//! `SIGCONT` and sets `PTRACE_SYSCALL`; the child then calls `fexec`.
//! Everything before that `fexec` entry (the `kill` exit, the `SIGCONT`
//! event) is strace's own set-up and is not printed.
//!
//! The loop: every tracee's trace handle is non-blocking and registered
//! with one `event:` queue (data = pid). Reading the queue blocks until
//! some tracee has unread events (`EVENT_READ`) or is held at its
//! breakpoint (`EVENT_WRITE`); that tracee's events are handled first,
//! then `PTRACE_WAIT` tells whether it is held at a stop, which is printed
//! and resumed with `PTRACE_SYSCALL`. strace never blocks on one tracee
//! while another waits for it, so tracees that wait for each other (a
//! parent in `waitpid`, a child still running) cannot deadlock it. Each
//! queue read has room for every tracee, and every ready tracee is served
//! before the next read, so none starves however many are busy. If the
//! queue fails, every handle is closed (detaching the tracees) before
//! strace waits for its child.
//!
//! With `-f`, a `PTRACE_EVENT_CLONE` event makes strace open
//! `proc:<child>/trace` (before its next write to the parent's handle,
//! which would release the child untraced) and add the child to the queue.
#![no_std]
#![no_main]

extern crate alloc;

mod decode;
mod names;
mod output;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use syscall::error::{EAGAIN, ESRCH};
use syscall::flag::{
    wexitstatus, wifsignaled, wifstopped, wtermsig, EventFlags, WaitFlags, F_DUPFD, F_SETFD,
    O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_RDWR, SIGCONT, SIGKILL, SIGSTOP, SIGTRAP,
};
use syscall::number::{
    SYS_CLOSE, SYS_DUP, SYS_DUP2, SYS_EXIT, SYS_FCNTL, SYS_FEXEC, SYS_OPEN, SYS_PIPE2,
    SYS_SIGRETURN,
};
use tracer::{
    StopInfo, Tracer, PTRACE_EVENT_CLONE, PTRACE_STOP_BREAKPOINT, PTRACE_STOP_EXIT,
    PTRACE_STOP_POST_SYSCALL, PTRACE_STOP_PRE_SYSCALL, PTRACE_STOP_SIGNAL, PTRACE_SYSCALL,
    PTRACE_WAIT,
};

use decode::{Context, Memory};
use output::Output;

rt::entry!(main);

/// The size of one `event:` record.
const EVENT_SIZE: usize = 24;
/// Records of room in a queue read beyond one per tracee.
const QUEUE_SLACK: usize = 16;
/// Rounds of "read the events, `PTRACE_WAIT`" for one tracee per turn.
const SERVICE_ROUNDS: usize = 64;

const USAGE: &str = "usage: strace [-f] [-e trace=NAME[,NAME...]] PROGRAM [ARGS...]";

/// What the command line asked for.
struct Options {
    follow: bool,
    /// `-e trace=`: the call numbers to print (`None`: all).
    filter: Option<Vec<usize>>,
    program: String,
    args: Vec<&'static str>,
}

fn usage_error(why: &str) -> i32 {
    rt::eprintln!("strace: {why}");
    rt::eprintln!("{USAGE}");
    2
}

/// Parses `-e` expressions: `trace=open,write`, `open,write`, `trace=all`.
fn parse_filter(expr: &str) -> Result<Option<Vec<usize>>, i32> {
    let list = expr.strip_prefix("trace=").unwrap_or(expr);
    if list == "all" {
        return Ok(None);
    }
    if list.is_empty() || (expr.contains('=') && !expr.starts_with("trace=")) {
        return Err(usage_error(&format!("invalid -e expression '{expr}'")));
    }
    let mut nrs = Vec::new();
    for name in list.split(',') {
        match decode::by_name(name) {
            Some(call) => nrs.push(call.nr),
            None => return Err(usage_error(&format!("invalid system call '{name}'"))),
        }
    }
    Ok(Some(nrs))
}

fn parse_options(args: &'static [&'static str]) -> Result<Options, i32> {
    let mut follow = false;
    let mut filter = None;
    let mut i = 1;
    while i < args.len() {
        let arg = args[i];
        match arg {
            "-f" => follow = true,
            "-h" | "--help" => {
                rt::eprintln!("{USAGE}");
                return Err(0);
            }
            "-e" => {
                i += 1;
                let Some(expr) = args.get(i) else {
                    return Err(usage_error("option requires an argument -- 'e'"));
                };
                filter = parse_filter(expr)?;
            }
            "--" => {
                i += 1;
                break;
            }
            _ if arg.starts_with("-e") => filter = parse_filter(&arg[2..])?,
            _ if arg.starts_with('-') => {
                return Err(usage_error(&format!("invalid option '{arg}'")));
            }
            _ => break,
        }
        i += 1;
    }
    let Some(&program) = args.get(i) else {
        return Err(usage_error("must have PROGRAM to run"));
    };
    // A bare name is a program of /bin; a path (or a scheme path) is used as is.
    let program = if program.contains('/') || program.contains(':') {
        String::from(program)
    } else {
        format!("/bin/{program}")
    };
    Ok(Options {
        follow,
        filter,
        program,
        args: args[i + 1..].to_vec(),
    })
}

impl Memory for Tracer {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> usize {
        self.read_mem(addr, buf).unwrap_or(0)
    }
}

/// One traced process.
struct Tracee {
    tracer: Tracer,
    /// False until the initial child's `fexec` entry: its stops before
    /// that are strace's own set-up.
    started: bool,
    /// Paths of descriptors seen opened (to show `fexec`'s file).
    fds: BTreeMap<usize, String>,
    /// Which of those descriptors are close-on-exec: a successful `fexec`
    /// closes them.
    cloexec: BTreeSet<usize>,
}

/// The tracing loop's state.
struct Strace {
    follow: bool,
    filter: Option<Vec<usize>>,
    /// The `event:` queue every trace handle is registered with.
    queue: usize,
    tracees: BTreeMap<usize, Tracee>,
    out: Output,
    initial: usize,
    initial_status: Option<usize>,
}

/// Registers `fd` with the `event:` queue for both readiness kinds; the
/// event's data is the pid.
fn register(queue: usize, fd: usize, pid: usize) -> syscall::Result<usize> {
    let mut record = [0u8; 24];
    record[..8].copy_from_slice(&fd.to_le_bytes());
    let flags = (EventFlags::EVENT_READ | EventFlags::EVENT_WRITE).bits();
    record[8..16].copy_from_slice(&flags.to_le_bytes());
    record[16..].copy_from_slice(&pid.to_le_bytes());
    syscall::write(queue, &record)
}

impl Strace {
    fn shown(&self, nr: usize) -> bool {
        self.filter.as_ref().is_none_or(|list| list.contains(&nr))
    }

    /// Runs until every tracee is gone, or reading the queue fails.
    ///
    /// Fairness: the queue reports ready handles in registration order, as
    /// many as the buffer holds. The buffer has room for every tracee (one
    /// registration each), so each read reports every ready tracee, and all
    /// of them are served (each for at most [`SERVICE_ROUNDS`] rounds)
    /// before the next read: a tracee that is ready waits at most one
    /// round, however many others are busy.
    fn run(&mut self) -> syscall::Result<()> {
        let mut buf = Vec::new();
        while !self.tracees.is_empty() {
            buf.resize((self.tracees.len() + QUEUE_SLACK) * EVENT_SIZE, 0);
            let n = rt::io::read(self.queue, &mut buf)?;
            for record in buf[..n].chunks_exact(EVENT_SIZE) {
                let mut word = [0u8; 8];
                word.copy_from_slice(&record[16..24]);
                self.service(usize::from_le_bytes(word));
            }
        }
        Ok(())
    }

    /// Closes every trace handle: a tracee held at a stop resumes
    /// untraced, so nothing can keep the initial process from ending.
    fn detach_all(&mut self) {
        for pid in core::mem::take(&mut self.tracees).into_keys() {
            self.out.forget(pid);
        }
    }

    /// Handles everything a ready tracee has: its events, then the stop it
    /// is held at (resuming it with `PTRACE_SYSCALL`). A tracee whose events
    /// keep coming is left after [`SERVICE_ROUNDS`] rounds: still ready, it
    /// is reported again by the next queue read, after the others' turn.
    fn service(&mut self, pid: usize) {
        for _ in 0..SERVICE_ROUNDS {
            let Some(tracee) = self.tracees.get_mut(&pid) else {
                return;
            };
            let events = match tracee.tracer.read_events() {
                Ok(events) => events,
                Err(e) => {
                    self.lost(pid, "reading events", e.errno);
                    return;
                }
            };
            let mut exit_status = None;
            for event in events {
                match event.cause {
                    PTRACE_EVENT_CLONE => self.on_clone(pid, event.a),
                    PTRACE_STOP_SIGNAL => self.on_signal(pid, event.a),
                    PTRACE_STOP_BREAKPOINT => self.on_int3(pid, event.a),
                    PTRACE_STOP_EXIT => exit_status = Some(event.a),
                    _ => {}
                }
            }
            if let Some(status) = exit_status {
                self.on_exit(pid, status);
                return;
            }
            let Some(tracee) = self.tracees.get_mut(&pid) else {
                return;
            };
            match tracee.tracer.op(PTRACE_WAIT) {
                // Held at the breakpoint: print the stop, go on.
                Ok(1) => {
                    self.on_stop(pid);
                    if let Some(tracee) = self.tracees.get_mut(&pid) {
                        if let Err(e) = tracee.tracer.op(PTRACE_SYSCALL) {
                            self.lost(pid, "resuming", e.errno);
                        }
                    }
                    return;
                }
                // Events arrived meanwhile: handle them first.
                Ok(_) => continue,
                Err(e) if e.errno == EAGAIN => return,
                Err(e) => {
                    self.lost(pid, "waiting", e.errno);
                    return;
                }
            }
        }
    }

    /// A trace handle failed: report it and stop following that process.
    fn lost(&mut self, pid: usize, what: &str, errno: i32) {
        if errno != ESRCH {
            rt::eprintln!(
                "strace: pid {pid}: {what} failed: {}",
                names::errno(errno as usize)
            );
        }
        self.out.forget(pid);
        self.tracees.remove(&pid);
    }

    fn on_clone(&mut self, parent: usize, child: usize) {
        if !self.follow {
            // The next write to the parent's handle releases it untraced.
            return;
        }
        let (fds, cloexec) = self
            .tracees
            .get(&parent)
            .map(|t| (t.fds.clone(), t.cloexec.clone()))
            .unwrap_or_default();
        let tracer = match Tracer::attach_flags(child, O_NONBLOCK) {
            Ok(tracer) => tracer,
            Err(e) => {
                rt::eprintln!(
                    "strace: cannot attach to pid {child}: {}",
                    names::errno(e.errno as usize)
                );
                return;
            }
        };
        if let Err(e) = tracer
            .op(PTRACE_SYSCALL)
            .and_then(|_| register(self.queue, tracer.fd(), child))
        {
            rt::eprintln!(
                "strace: cannot follow pid {child}: {}",
                names::errno(e.errno as usize)
            );
            return;
        }
        self.tracees.insert(
            child,
            Tracee {
                tracer,
                started: true,
                fds,
                cloexec,
            },
        );
    }

    fn started(&self, pid: usize) -> bool {
        self.tracees.get(&pid).is_some_and(|t| t.started)
    }

    fn on_signal(&mut self, pid: usize, sig: usize) {
        if self.started(pid) {
            self.out
                .line(pid, &format!("--- {} ---", names::signal(sig)));
        }
    }

    /// An `int3` in the tracee: do what an untraced process gets, a
    /// `SIGTRAP` with `rip` past the `int3`.
    fn on_int3(&mut self, pid: usize, addr: usize) {
        if let Some(tracee) = self.tracees.get_mut(&pid) {
            if let Ok(mut regs) = tracee.tracer.regs() {
                regs.rip = addr + 1;
                let _ = tracee.tracer.set_regs(&regs);
            }
            let _ = syscall::kill(pid, SIGTRAP);
        }
    }

    fn on_exit(&mut self, pid: usize, status: usize) {
        let text = if wifsignaled(status) {
            format!("+++ killed by {} +++", names::signal(wtermsig(status)))
        } else {
            format!("+++ exited with {} +++", wexitstatus(status))
        };
        self.out.abandon(pid);
        self.out.line(pid, &text);
        if pid == self.initial {
            self.initial_status = Some(status);
        }
        // Closing the handle also takes it off the queue.
        self.tracees.remove(&pid);
    }

    fn on_stop(&mut self, pid: usize) {
        let Some(tracee) = self.tracees.get_mut(&pid) else {
            return;
        };
        let info = match tracee.tracer.stop() {
            Ok(info) => info,
            Err(e) => {
                self.lost(pid, "reading the stop", e.errno);
                return;
            }
        };
        match info.cause {
            PTRACE_STOP_PRE_SYSCALL => self.on_entry(pid, &info),
            PTRACE_STOP_POST_SYSCALL => self.on_exit_stop(pid, &info),
            _ => {}
        }
    }

    fn on_entry(&mut self, pid: usize, info: &StopInfo) {
        let nr = info.nr as usize;
        let hidden = !self.shown(nr);
        let Some(tracee) = self.tracees.get_mut(&pid) else {
            return;
        };
        if !tracee.started {
            if nr != SYS_FEXEC {
                return;
            }
            tracee.started = true;
        }
        let name = decode::name(nr);
        let mut head = String::new();
        if !hidden {
            let (entry, exit) = decode::split_args(nr);
            let mut cx = Context {
                mem: &mut tracee.tracer,
                fds: &tracee.fds,
            };
            let args = decode::format_args(entry, &info.args, None, &mut cx);
            head = format!("{name}({args}");
            if !entry.is_empty() && !exit.is_empty() {
                head.push_str(", ");
            }
        }
        if nr == SYS_EXIT || nr == SYS_SIGRETURN {
            // No exit stop follows (unless sigreturn fails): print now.
            if !hidden {
                self.out.line(pid, &format!("{head}) = ?"));
            }
            return;
        }
        self.out.enter(pid, nr, name, head, hidden);
    }

    fn on_exit_stop(&mut self, pid: usize, info: &StopInfo) {
        let nr = info.nr as usize;
        let shown = self.shown(nr);
        let Some(tracee) = self.tracees.get_mut(&pid) else {
            return;
        };
        if !tracee.started {
            return;
        }
        let result = decode::format_ret(nr, &info.args, info.ret);
        match self.out.take(pid, nr) {
            Some(pending) if !pending.hidden => {
                let (_, exit) = decode::split_args(nr);
                let mut cx = Context {
                    mem: &mut tracee.tracer,
                    fds: &tracee.fds,
                };
                let rest = decode::format_args(exit, &info.args, Some(info.ret), &mut cx);
                self.out
                    .finish(pid, pending, &format!("{rest}) = {result}"));
            }
            Some(_) => {}
            None if shown => {
                let name = decode::name(nr);
                self.out
                    .line(pid, &format!("<... {name} resumed>) = {result}"));
            }
            None => {}
        }
        if let Some(tracee) = self.tracees.get_mut(&pid) {
            track_fds(tracee, info);
        }
    }
}

/// Keeps the descriptor-to-path table up to date from successful calls,
/// as the kernel changes the descriptor table: `open`, `close`, plain
/// duplicates (`dup`, `dup2`, `fcntl(F_DUPFD)`: the same file, not
/// close-on-exec), `fcntl(F_SETFD)`, `pipe2` (two new descriptors, no
/// path) and `fexec` (close-on-exec descriptors are gone).
fn track_fds(tracee: &mut Tracee, info: &StopInfo) {
    if decode::errno_of(info.ret).is_some() {
        return;
    }
    let ret = info.ret as usize;
    let a = info.args;
    let fd = a[0] as usize;
    match info.nr as usize {
        SYS_OPEN => {
            let mut bytes = alloc::vec![0u8; (a[1] as usize).min(4096)];
            let n = tracee.tracer.read(a[0], &mut bytes);
            bytes.truncate(n);
            tracee
                .fds
                .insert(ret, String::from_utf8_lossy(&bytes).into_owned());
            tracee.set_cloexec(ret, a[2] as usize & O_CLOEXEC != 0);
        }
        SYS_CLOSE => tracee.forget_fd(fd),
        // dup2 onto itself without a path changes nothing.
        SYS_DUP2 if a[1] == a[0] && a[3] == 0 => {}
        // Only a plain duplicate (no path) is the same file.
        SYS_DUP => tracee.duplicate(fd, ret, a[2] == 0),
        SYS_DUP2 => tracee.duplicate(fd, ret, a[3] == 0),
        SYS_FCNTL => match a[1] as usize {
            F_DUPFD => tracee.duplicate(fd, ret, true),
            F_SETFD => tracee.set_cloexec(fd, a[2] & 1 != 0),
            _ => {}
        },
        SYS_PIPE2 => {
            let mut words = [0u8; 16];
            if tracee.tracer.read(a[0], &mut words) == 16 {
                for pair in words.chunks_exact(8) {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(pair);
                    tracee.forget_fd(u64::from_le_bytes(word) as usize);
                }
            }
        }
        SYS_FEXEC => {
            for fd in core::mem::take(&mut tracee.cloexec) {
                tracee.fds.remove(&fd);
            }
        }
        _ => {}
    }
}

impl Tracee {
    fn forget_fd(&mut self, fd: usize) {
        self.fds.remove(&fd);
        self.cloexec.remove(&fd);
    }

    fn set_cloexec(&mut self, fd: usize, on: bool) {
        if on {
            self.cloexec.insert(fd);
        } else {
            self.cloexec.remove(&fd);
        }
    }

    /// `new` now refers to what `old` does (`same`), or to something else
    /// (a `dup` with a path); it is never close-on-exec.
    fn duplicate(&mut self, old: usize, new: usize, same: bool) {
        let path = self.fds.get(&old).cloned().filter(|_| same);
        self.forget_fd(new);
        if let Some(path) = path {
            self.fds.insert(new, path);
        }
    }
}

/// Forks the child that will run `program`: it stops itself, and once
/// resumed by the tracer calls `fexec` (nothing else in between).
fn start_child(prog_fd: usize, argv: &[&str]) -> syscall::Result<usize> {
    let args: Vec<[usize; 2]> = argv
        .iter()
        .map(|s| [s.as_ptr() as usize, s.len()])
        .collect();
    let env: Vec<[usize; 2]> = rt::env()
        .iter()
        .map(|s| [s.as_ptr() as usize, s.len()])
        .collect();
    let pid = rt::process::fork()?;
    if pid == 0 {
        let me = syscall::getpid().unwrap_or(0);
        let _ = syscall::kill(me, SIGSTOP);
        let err = match syscall::fexec(prog_fd, &args, &env) {
            Ok(_) => syscall::Error::new(syscall::error::EIO),
            Err(e) => e,
        };
        rt::eprintln!("strace: exec {}: {}", argv[0], err.text());
        rt::process::exit(127);
    }
    Ok(pid)
}

fn main(_args: &[&str]) -> i32 {
    let opts = match parse_options(rt::args()) {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    let prog_fd = match syscall::open(&opts.program, O_RDONLY | O_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            rt::eprintln!("strace: Can't stat '{}': {}", opts.program, e.text());
            return 1;
        }
    };
    let mut argv: Vec<&str> = Vec::with_capacity(opts.args.len() + 1);
    argv.push(&opts.program);
    argv.extend_from_slice(&opts.args);

    let pid = match start_child(prog_fd, &argv) {
        Ok(pid) => pid,
        Err(e) => {
            rt::eprintln!("strace: fork: {}", e.text());
            return 1;
        }
    };
    let _ = syscall::close(prog_fd);
    match rt::process::waitpid(pid, WaitFlags::WUNTRACED) {
        Ok((_, status)) if wifstopped(status) => {}
        Ok((_, status)) => {
            rt::eprintln!(
                "strace: child {pid} {} before it could be traced",
                rt::process::describe(status)
            );
            return 1;
        }
        Err(e) => {
            rt::eprintln!("strace: waitpid: {}", e.text());
            return 1;
        }
    }
    let tracer = match Tracer::attach_flags(pid, O_NONBLOCK) {
        Ok(tracer) => tracer,
        Err(e) => {
            rt::eprintln!("strace: attach to pid {pid}: {}", e.text());
            let _ = syscall::kill(pid, SIGKILL);
            let _ = rt::process::wait(pid);
            return 1;
        }
    };
    let queue = match syscall::open("event:", O_RDWR | O_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            rt::eprintln!("strace: open event:: {}", e.text());
            let _ = syscall::kill(pid, SIGKILL);
            return 1;
        }
    };
    let _ = syscall::kill(pid, SIGCONT);
    if let Err(e) = tracer
        .op(PTRACE_SYSCALL)
        .and_then(|_| register(queue, tracer.fd(), pid))
    {
        rt::eprintln!("strace: starting pid {pid}: {}", e.text());
        let _ = syscall::kill(pid, SIGKILL);
        return 1;
    }
    let mut fds = BTreeMap::new();
    fds.insert(prog_fd, opts.program.clone());
    let mut cloexec = BTreeSet::new();
    cloexec.insert(prog_fd);
    let mut strace = Strace {
        follow: opts.follow,
        filter: opts.filter,
        queue,
        tracees: BTreeMap::new(),
        out: Output::new(opts.follow, pid),
        initial: pid,
        initial_status: None,
    };
    strace.tracees.insert(
        pid,
        Tracee {
            tracer,
            started: false,
            fds,
            cloexec,
        },
    );
    if let Err(e) = strace.run() {
        rt::eprintln!(
            "strace: reading event: failed: {}",
            names::errno(e.errno as usize)
        );
    }
    // However the loop ended, no handle of ours may hold a tracee while we
    // wait for the initial process.
    strace.detach_all();
    let status = match rt::process::wait(pid) {
        Ok(status) => strace.initial_status.unwrap_or(status),
        Err(_) => strace.initial_status.unwrap_or(0),
    };
    rt::process::exit_code(status)
}
