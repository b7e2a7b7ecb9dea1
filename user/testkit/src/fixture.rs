//! Child fixtures: a forked child that is always killed and reaped
//! ([`Kid`]), a pipe gate a child blocks on until the parent opens it
//! ([`Gate`]), and a child body that naps forever.

use alloc::format;
use alloc::string::String;

use rt::ensure;
use rt::process::{self, sleep_ms, wait_timeout};
use rt::test::Ctx;
use syscall::flag::{WaitFlags, SIGKILL};

use crate::status::proc_state;
use crate::timeout::WAIT_MS;
use crate::Check;

pub use rt::test::in_child;

/// A child process that is killed and reaped when dropped, unless it was
/// reaped already.
pub struct Kid {
    pub pid: usize,
    reaped: bool,
}

impl Kid {
    /// Takes charge of the child `pid` (forked some other way).
    pub fn new(pid: usize) -> Kid {
        Kid { pid, reaped: false }
    }

    /// Forks a child running `f`; it exits with `f`'s value.
    pub fn spawn(f: impl FnOnce() -> i32) -> Result<Kid, String> {
        let pid = process::fork_with(f).ctx("clone")?;
        Ok(Kid::new(pid))
    }

    /// Forks a child that blocks until `gate` lets it pass (or its write
    /// end closes), then exits with `code`.
    pub fn at_gate(gate: &Gate, code: i32) -> Result<Kid, String> {
        let rd = gate.rd;
        Kid::spawn(move || {
            let mut b = [0u8; 1];
            let _ = rt::io::read(rd, &mut b);
            code
        })
    }

    /// Forks a child that runs `body` with the [`Park`] descriptors (the
    /// gate's write end closed in the child); `body` ends in
    /// [`Park::park`] or returns a code of its own early. Returns once the
    /// child has reported ready.
    pub fn parked(gate: &Gate, body: impl FnOnce(Park) -> i32) -> Result<Kid, String> {
        let ready = Gate::new()?;
        let (gate_rd, gate_wr, ready_wr) = (gate.rd, gate.wr, ready.wr);
        let kid = Kid::spawn(move || {
            let _ = syscall::close(gate_wr);
            body(Park { ready_wr, gate_rd })
        })?;
        ensure!(ready.pass() == b'r', "child {} never got ready", kid.pid);
        Ok(kid)
    }

    /// Like [`Kid::spawn`], with `clone` flags (`CLONE_FILES` to share
    /// this process's descriptor table); `CLONE_VM` is refused, since the
    /// child runs on a copy of this stack.
    pub fn spawn_flags(
        flags: syscall::flag::CloneFlags,
        f: impl FnOnce() -> i32,
    ) -> Result<Kid, String> {
        if flags.contains(syscall::flag::CloneFlags::CLONE_VM) {
            return Err(String::from("Kid::spawn_flags: CLONE_VM is not supported"));
        }
        // SAFETY: without CLONE_VM the child gets its own copy of memory, so
        // both sides may keep running on the same stack.
        let pid = unsafe { syscall::clone(flags) }.ctx("clone")?;
        if pid == 0 {
            let code = f();
            process::exit((code & 0xff) as usize);
        }
        Ok(Kid::new(pid))
    }

    /// Waits up to `timeout_ms` for the child to end; returns its status.
    pub fn wait(&mut self, timeout_ms: u64) -> Result<usize, String> {
        match wait_timeout(self.pid, WaitFlags::empty(), timeout_ms)
            .ctx(&format!("waitpid({})", self.pid))?
        {
            Some(status) => {
                self.reaped = true;
                Ok(status)
            }
            None => Err(format!(
                "child {} did not end within {} ms (state {})",
                self.pid,
                timeout_ms,
                proc_state(self.pid).unwrap_or_else(|e| e)
            )),
        }
    }

    /// [`Kid::wait`] for [`WAIT_MS`].
    pub fn reap(&mut self) -> Result<usize, String> {
        self.wait(WAIT_MS)
    }

    /// Kills the child with `SIGKILL` and reaps it.
    pub fn kill(&mut self) {
        if !self.reaped {
            let _ = syscall::kill(self.pid, SIGKILL);
            if let Ok(Some(_)) = wait_timeout(self.pid, WaitFlags::empty(), WAIT_MS) {
                self.reaped = true;
            }
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A pipe a child blocks on: it reads one byte (or end of file) from
/// `rd`; the parent releases it by writing to `wr`.
pub struct Gate {
    pub rd: usize,
    pub wr: usize,
}

impl Gate {
    /// A fresh gate (both ends inherited by children forked later).
    pub fn new() -> Result<Gate, String> {
        let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
        Ok(Gate { rd, wr })
    }

    /// In the child: blocks until one byte arrives (or the pipe closes);
    /// returns the byte (0 at end of file).
    pub fn pass(&self) -> u8 {
        let mut b = [0u8; 1];
        match rt::io::read(self.rd, &mut b) {
            Ok(1) => b[0],
            _ => 0,
        }
    }

    /// In the parent: lets one `pass` through.
    pub fn open(&self) -> Check {
        rt::io::write_all(self.wr, b"g").ctx("write gate")
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = syscall::close(self.rd);
        let _ = syscall::close(self.wr);
    }
}

/// The child side of [`Kid::parked`]: where it reports ready, and the
/// gate it then waits on until end of file.
#[derive(Clone, Copy)]
pub struct Park {
    pub ready_wr: usize,
    pub gate_rd: usize,
}

impl Park {
    /// Reports ready, then blocks until end of file on the gate; returns 0
    /// (the child's exit code).
    pub fn park(self) -> i32 {
        let _ = rt::io::write_all(self.ready_wr, b"r");
        let mut b = [0u8; 1];
        while let Ok(1) = rt::io::read(self.gate_rd, &mut b) {}
        0
    }
}

/// Never returns: sleeps in short naps (a tracee with a syscall every
/// millisecond or so).
pub fn nap_forever() -> ! {
    loop {
        let _ = sleep_ms(1);
    }
}

/// Runs `body` in a forked child (untraced) and returns its wait status.
pub fn run_child(body: impl FnOnce() -> i32) -> Result<usize, String> {
    let mut kid = Kid::spawn(body)?;
    kid.reap()
}
