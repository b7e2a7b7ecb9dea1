//! The text of `proc:<pid>/status`: exactly one line,
//! `pid=N ppid=N uid=N euid=N gid=N egid=N state=S tracer=N name=PATH\n`.

use alloc::format;
use alloc::string::String;

use crate::path::Pid;
use crate::perm::Creds;

/// The `state=` word.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProcState {
    /// Runnable or running.
    Running,
    /// Waiting in the kernel (not for ptrace or job control).
    Blocked,
    /// Stopped by job control (`SIGSTOP` and friends).
    Stopped,
    /// Held by ptrace at a stop (or held for a tracer after `clone`).
    Held,
    /// Exited, not yet reaped.
    Exited,
}

impl ProcState {
    /// The word written after `state=`.
    pub const fn name(self) -> &'static str {
        match self {
            ProcState::Running => "running",
            ProcState::Blocked => "blocked",
            ProcState::Stopped => "stopped",
            ProcState::Held => "held",
            ProcState::Exited => "exited",
        }
    }
}

/// What the status line says about a process.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ProcStatus<'a> {
    pub pid: Pid,
    pub ppid: Pid,
    pub creds: Creds,
    pub state: ProcState,
    /// The tracer's pid, `0` when untraced.
    pub tracer: Pid,
    /// The program's path.
    pub name: &'a str,
}

/// The status line, newline included. A newline inside `name` is written as
/// `?` so the text stays one line.
pub fn format_status(status: &ProcStatus<'_>) -> String {
    let name: String = status
        .name
        .chars()
        .map(|c| if c == '\n' { '?' } else { c })
        .collect();
    format!(
        "pid={} ppid={} uid={} euid={} gid={} egid={} state={} tracer={} name={}\n",
        status.pid,
        status.ppid,
        status.creds.uid,
        status.creds.euid,
        status.creds.gid,
        status.creds.egid,
        status.state.name(),
        status.tracer,
        name,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_exact_line() {
        let status = ProcStatus {
            pid: 12,
            ppid: 1,
            creds: Creds {
                uid: 1000,
                euid: 0,
                gid: 100,
                egid: 101,
            },
            state: ProcState::Held,
            tracer: 11,
            name: "/bin/hello world",
        };
        assert_eq!(
            format_status(&status),
            "pid=12 ppid=1 uid=1000 euid=0 gid=100 egid=101 state=held tracer=11 name=/bin/hello world\n"
        );
    }

    #[test]
    fn state_words() {
        let words = [
            ProcState::Running,
            ProcState::Blocked,
            ProcState::Stopped,
            ProcState::Held,
            ProcState::Exited,
        ]
        .map(ProcState::name);
        assert_eq!(words, ["running", "blocked", "stopped", "held", "exited"]);
    }

    #[test]
    fn stays_one_line() {
        let status = ProcStatus {
            pid: 2,
            ppid: 1,
            creds: Creds::default(),
            state: ProcState::Running,
            tracer: 0,
            name: "a\nb",
        };
        let line = format_status(&status);
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.ends_with("tracer=0 name=a?b\n"));
    }
}
