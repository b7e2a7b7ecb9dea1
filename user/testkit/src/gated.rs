//! Gated spawn-and-attach: fork a tracee that waits on a pipe until the
//! tracer has attached, run it from `int3` to `int3`, and always kill and
//! reap it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use rt::errno::describe;
use rt::process::{fork_with, waitpid};
use rt::test::Ctx;
use syscall::flag::{WaitFlags, O_EXCL, SIGKILL};
use tracer::{
    IntRegisters, PtraceEvent, Stopped, Tracer, PTRACE_CONT, PTRACE_STOP_BREAKPOINT,
    PTRACE_STOP_EXIT, PTRACE_STOP_SIGNAL, PTRACE_WAIT,
};

/// A forked tracee with its tracing session. Dropping it closes the
/// session (an `O_EXCL` one, so a tracee still alive is killed) and reaps
/// the child.
pub struct Tracee {
    pub pid: usize,
    tracer: Option<Tracer>,
    reaped: bool,
}

/// Forks a child that blocks until the tracer has attached, then runs
/// `body` and exits with its value.
pub fn start(body: impl FnOnce() -> i32) -> Result<Tracee, String> {
    start_flags(O_EXCL, body)
}

/// Like [`start`] with the given `trace` open flags.
pub fn start_flags(flags: usize, body: impl FnOnce() -> i32) -> Result<Tracee, String> {
    let (go_rd, go_wr) = rt::io::pipe(0).ctx("pipe")?;
    let pid = fork_with(move || {
        let _ = syscall::close(go_wr);
        let mut byte = [0u8; 1];
        let got = rt::io::read(go_rd, &mut byte);
        let _ = syscall::close(go_rd);
        if got != Ok(1) {
            // The tracer gave up: never reach an int3 untraced.
            return 100;
        }
        body()
    });
    let _ = syscall::close(go_rd);
    let pid = match pid {
        Ok(pid) => pid,
        Err(e) => {
            let _ = syscall::close(go_wr);
            return Err(format!("fork: {}", describe(&e)));
        }
    };
    let tracer = match Tracer::attach_flags(pid, flags) {
        Ok(t) => t,
        Err(e) => {
            // The child reads end of file and exits without running `body`.
            let _ = syscall::close(go_wr);
            let _ = syscall::kill(pid, SIGKILL);
            let _ = waitpid(pid, WaitFlags::empty());
            return Err(format!("attach to {}: {}", pid, describe(&e)));
        }
    };
    let tracee = Tracee {
        pid,
        tracer: Some(tracer),
        reaped: false,
    };
    let sent = syscall::write(go_wr, &[1]);
    let _ = syscall::close(go_wr);
    sent.ctx("write the go byte")?;
    Ok(tracee)
}

/// How a run ended.
#[derive(Debug)]
pub enum Halt {
    /// Held at an `int3` at this address.
    Break(u64),
    /// Exited with this wait status.
    Exited(usize),
}

impl Tracee {
    pub fn t(&mut self) -> &mut Tracer {
        self.tracer.as_mut().expect("the session is open")
    }

    /// Writes `op` (which sets no breakpoint, e.g. `PTRACE_CONT`) and waits
    /// for the next `int3` event or the exit event; other events (signals)
    /// are passed over.
    pub fn run(&mut self, op: u8) -> Result<Halt, String> {
        let mut seen: Vec<PtraceEvent> = Vec::new();
        let t = self.t();
        let mut reached = t.op(op).ctx("write op")?;
        loop {
            if reached == 1 {
                let stop = t.stop().ctx("read stop")?;
                return Err(format!(
                    "op {:#x}: unexpected breakpoint reached (stop cause {:#x} at {:#x})",
                    op, stop.cause, stop.addr
                ));
            }
            let events = t.read_events().ctx("read events")?;
            for e in &events {
                if e.cause == PTRACE_STOP_BREAKPOINT {
                    return Ok(Halt::Break(e.a as u64));
                }
                if e.cause == PTRACE_STOP_EXIT {
                    return Ok(Halt::Exited(e.a));
                }
            }
            seen.extend_from_slice(&events);
            if seen.len() > 64 {
                return Err(format!("too many events: {:?}", &seen[..4]));
            }
            reached = t.op(PTRACE_WAIT).ctx("write PTRACE_WAIT")?;
        }
    }

    /// Continues to the `int3` at `addr` and checks the event, `stop` and
    /// `rip` all name it.
    pub fn cont_to(&mut self, addr: u64) -> Result<IntRegisters, String> {
        match self.run(PTRACE_CONT)? {
            Halt::Break(a) if a == addr => {}
            Halt::Break(a) => {
                return Err(format!(
                    "expected the int3 at {:#x}, got one at {:#x}",
                    addr, a
                ))
            }
            Halt::Exited(status) => {
                return Err(format!(
                    "expected the int3 at {:#x}, the tracee {}",
                    addr,
                    rt::process::describe(status)
                ))
            }
        }
        let stop = self.t().stop().ctx("read stop")?;
        rt::ensure!(
            stop.cause == PTRACE_STOP_BREAKPOINT && stop.addr == addr,
            "stop at the int3 at {:#x}: cause {:#x} addr {:#x}",
            addr,
            stop.cause,
            stop.addr
        );
        let regs = self.t().regs().ctx("read regs/int")?;
        rt::ensure!(
            regs.rip as u64 == addr,
            "rip at the int3: expected {:#x}, got {:#x}",
            addr,
            regs.rip
        );
        Ok(regs)
    }

    /// Moves rip past the one-byte `int3` the tracee is held at.
    pub fn skip_int3(&mut self) -> Result<(), String> {
        let mut regs = self.t().regs().ctx("read regs/int")?;
        regs.rip += 1;
        self.t().set_regs(&regs).ctx("write regs/int (rip + 1)")
    }

    /// Continues until the tracee exits; returns its wait status.
    pub fn cont_to_exit(&mut self) -> Result<usize, String> {
        match self.run(PTRACE_CONT)? {
            Halt::Exited(status) => Ok(status),
            Halt::Break(a) => Err(format!("expected the exit, got an int3 at {:#x}", a)),
        }
    }

    /// From an `int3` stop: skips it, runs to the exit and expects status 0.
    pub fn finish(mut self) -> Result<(), String> {
        self.skip_int3()?;
        let status = self.cont_to_exit()?;
        rt::test::expect_exit("tracee", status, 0)
    }

    /// Reads exactly `N` bytes of tracee memory.
    pub fn peek<const N: usize>(&mut self, addr: u64) -> Result<[u8; N], String> {
        let mut buf = [0u8; N];
        let n = self
            .t()
            .read_mem(addr, &mut buf)
            .ctx(&format!("read mem at {:#x}", addr))?;
        rt::ensure!(n == N, "read mem at {:#x}: {} of {} bytes", addr, n, N);
        Ok(buf)
    }

    /// Reads `N` qwords of tracee memory.
    pub fn peek_u64s<const N: usize>(&mut self, addr: u64) -> Result<[u64; N], String> {
        let mut out = [0u64; N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = u64::from_le_bytes(self.peek::<8>(addr + 8 * i as u64)?);
        }
        Ok(out)
    }

    /// Continues to the next `int3` and returns the registers there
    /// (`rip` on the `int3` byte).
    pub fn cont_to_int3(&mut self) -> Result<IntRegisters, String> {
        let t = self.t();
        let (stopped, events) = t.resume_collect(PTRACE_CONT).ctx("PTRACE_CONT")?;
        match stopped {
            Stopped::Breakpoint(_) => t.regs().ctx("read regs/int"),
            other => Err(format!(
                "expected an int3 stop, got {:?} (events {:?})",
                other, events
            )),
        }
    }

    /// Writes `regs` with `rip` moved past the `int3` it points at.
    pub fn set_past_int3(&mut self, regs: &IntRegisters) -> Result<(), String> {
        let mut r = *regs;
        r.rip += 1;
        self.t().set_regs(&r).ctx("write regs/int")
    }

    /// Resumes with `op` until the tracee exits; returns the signals it was
    /// reported (signal events) and its wait status.
    pub fn run_to_exit(&mut self, op: u8) -> Result<(Vec<usize>, usize), String> {
        let (stopped, events) = self.t().resume_collect(op).ctx("resume")?;
        let signals = signals_of(&events);
        match stopped {
            Stopped::Exited(status) => Ok((signals, status)),
            other => Err(format!(
                "expected the exit, got {:?} (events {:?})",
                other, events
            )),
        }
    }

    /// Closes the session (killing the tracee if alive) and reaps it;
    /// returns the wait status.
    pub fn close_and_reap(&mut self) -> Result<usize, String> {
        drop(self.tracer.take());
        self.reaped = true;
        waitpid(self.pid, WaitFlags::empty())
            .map(|(_, s)| s)
            .ctx("waitpid")
    }
}

impl Drop for Tracee {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // Without O_EXCL closing the session would only detach: make sure
        // the child cannot outlive the test (harmless if it has exited).
        let _ = syscall::kill(self.pid, SIGKILL);
        let _ = self.close_and_reap();
    }
}

/// The signal numbers of the signal events among `events`.
pub fn signals_of(events: &[PtraceEvent]) -> Vec<usize> {
    events
        .iter()
        .filter(|e| e.cause == PTRACE_STOP_SIGNAL)
        .map(|e| e.a)
        .collect()
}
