//! The tracer side's scaffolding: fork a tracee that waits on a pipe until
//! the tracer has attached (`O_EXCL`), and always kill and reap it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use rt::errno::describe;
use rt::process::{fork_with, waitpid};
use rt::test::Ctx;
use syscall::flag::{WaitFlags, O_EXCL, SIGKILL};
use tracer::{IntRegisters, PtraceEvent, Stopped, Tracer, PTRACE_CONT, PTRACE_STOP_SIGNAL};

pub struct Tracee {
    pub pid: usize,
    pub t: Tracer,
}

/// Forks a child that blocks until the tracer has attached, then runs
/// `body` and exits with its value.
pub fn start(body: impl FnOnce() -> i32) -> Result<Tracee, String> {
    let (go_rd, go_wr) = rt::io::pipe(0).ctx("pipe")?;
    let pid = fork_with(move || {
        let _ = syscall::close(go_wr);
        let mut byte = [0u8; 1];
        let got = rt::io::read(go_rd, &mut byte);
        let _ = syscall::close(go_rd);
        if got != Ok(1) {
            return 100;
        }
        body()
    });
    let _ = syscall::close(go_rd);
    let pid = pid.map_err(|e| format!("fork: {}", describe(&e)))?;
    let t = match Tracer::attach_flags(pid, O_EXCL) {
        Ok(t) => t,
        Err(e) => {
            let _ = syscall::close(go_wr);
            let _ = syscall::kill(pid, SIGKILL);
            let _ = waitpid(pid, WaitFlags::empty());
            return Err(format!("attach to {}: {}", pid, describe(&e)));
        }
    };
    let tracee = Tracee { pid, t };
    let sent = syscall::write(go_wr, &[1]);
    let _ = syscall::close(go_wr);
    sent.ctx("write the go byte")?;
    Ok(tracee)
}

impl Tracee {
    /// Continues to the next `int3` and returns the registers there
    /// (`rip` on the `int3` byte).
    pub fn cont_to_int3(&mut self) -> Result<IntRegisters, String> {
        let (stopped, events) = self.t.resume_collect(PTRACE_CONT).ctx("PTRACE_CONT")?;
        match stopped {
            Stopped::Breakpoint(_) => self.t.regs().ctx("read regs/int"),
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
        self.t.set_regs(&r).ctx("write regs/int")
    }

    /// Resumes with `op` until the tracee exits; returns the signals it was
    /// reported (signal events) and its wait status.
    pub fn run_to_exit(&mut self, op: u8) -> Result<(Vec<usize>, usize), String> {
        let (stopped, events) = self.t.resume_collect(op).ctx("resume")?;
        let signals = signals_of(&events);
        match stopped {
            Stopped::Exited(status) => Ok((signals, status)),
            other => Err(format!(
                "expected the exit, got {:?} (events {:?})",
                other, events
            )),
        }
    }
}

pub fn signals_of(events: &[PtraceEvent]) -> Vec<usize> {
    events
        .iter()
        .filter(|e| e.cause == PTRACE_STOP_SIGNAL)
        .map(|e| e.a)
        .collect()
}

impl Drop for Tracee {
    fn drop(&mut self) {
        let _ = syscall::kill(self.pid, SIGKILL);
        let _ = waitpid(self.pid, WaitFlags::empty());
    }
}

/// Runs `body` in a forked child (untraced) and returns its wait status.
pub fn run_child(body: impl FnOnce() -> i32) -> Result<usize, String> {
    let pid = fork_with(body).ctx("fork")?;
    waitpid(pid, WaitFlags::empty())
        .map(|(_, s)| s)
        .ctx("waitpid")
}
