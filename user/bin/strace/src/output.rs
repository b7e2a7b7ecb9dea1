//! strace's output: one whole line per `write` on fd 2, the `[pid N] `
//! prefixes, and the pairing of syscall entries with their exits across
//! every tracee (`<unfinished ...>` / `<... NAME resumed>`).
//!
//! A call is remembered at its entry stop and printed whole at its exit
//! stop. Lines are never printed in pieces (the console also carries the
//! tracees' own output), so the chronology strace users know is rebuilt
//! here: before any line is printed, every call that entered earlier and
//! has not finished yet is printed as `NAME(args <unfinished ...>` (in
//! entry order), and its exit later as `<... NAME resumed>rest) = result`.
//! A call that finishes with nothing printed since its entry is one line.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// A call seen at its entry stop whose exit has not been printed.
#[derive(Debug)]
pub struct Pending {
    pub nr: usize,
    pub name: String,
    /// `NAME(` and the arguments known at entry (ending with `, ` when more
    /// follow at exit).
    pub head: String,
    /// Filtered out by `-e trace=`: kept only to pair stops.
    pub hidden: bool,
    /// The `<unfinished ...>` line has been printed.
    announced: bool,
    /// Entry order over all tracees.
    seq: u64,
}

/// The output state shared by every tracee.
pub struct Output {
    follow: bool,
    initial: usize,
    seq: u64,
    /// Per pid, the calls entered and not yet exited, innermost last (a
    /// signal handler's calls sit above the call it interrupted).
    stacks: BTreeMap<usize, Vec<Pending>>,
}

impl Output {
    /// `follow`: `-f` was given; `initial`: the pid whose lines carry no
    /// prefix.
    pub fn new(follow: bool, initial: usize) -> Output {
        Output {
            follow,
            initial,
            seq: 0,
            stacks: BTreeMap::new(),
        }
    }

    /// `[pid N] ` for every process but the first one (only with `-f`).
    fn prefix(&self, pid: usize) -> String {
        if self.follow && pid != self.initial {
            format!("[pid {pid}] ")
        } else {
            String::new()
        }
    }

    fn emit(text: &str) {
        let mut line = String::with_capacity(text.len() + 1);
        line.push_str(text);
        line.push('\n');
        let _ = rt::io::write_all(2, line.as_bytes());
    }

    /// Remembers a call at its entry stop.
    pub fn enter(&mut self, pid: usize, nr: usize, name: String, head: String, hidden: bool) {
        self.seq += 1;
        let pending = Pending {
            nr,
            name,
            head,
            hidden,
            announced: false,
            seq: self.seq,
        };
        self.stacks.entry(pid).or_default().push(pending);
    }

    /// Takes the innermost pending call `nr` of `pid` at its exit stop.
    /// Calls entered above it never returned (a handler that did not come
    /// back): they are dropped. `None` if `nr` was not entered.
    pub fn take(&mut self, pid: usize, nr: usize) -> Option<Pending> {
        let stack = self.stacks.get_mut(&pid)?;
        let at = stack.iter().rposition(|p| p.nr == nr)?;
        let pending = stack.remove(at);
        stack.truncate(at);
        Some(pending)
    }

    /// Forgets the pending calls of a process that is gone.
    pub fn forget(&mut self, pid: usize) {
        self.stacks.remove(&pid);
    }

    /// A process ended inside calls that will never return (killed while
    /// blocked): each is ended, innermost first, as strace does:
    /// `NAME(args <unfinished ...>) = ?`, or `<... NAME resumed>
    /// <unfinished ...>) = ?` if it was already cut.
    ///
    /// As in [`Output::finish`], a shown call of another process that
    /// entered after the first of these and is still open was "printed"
    /// after it: these calls are then cut too, so that every call is
    /// announced in entry order.
    pub fn abandon(&mut self, pid: usize) {
        let Some(first) = self
            .stacks
            .get(&pid)
            .and_then(|stack| stack.iter().filter(|p| !p.hidden).map(|p| p.seq).min())
        else {
            self.stacks.remove(&pid);
            return;
        };
        let later_open = self
            .stacks
            .iter()
            .filter(|(&other, _)| other != pid)
            .flat_map(|(_, stack)| stack)
            .any(|p| !p.hidden && !p.announced && p.seq > first);
        if later_open {
            // Announces this process's calls too, in entry order.
            self.announce_open(None);
        }
        let stack = self.stacks.remove(&pid).unwrap_or_default();
        self.announce_open(None);
        let prefix = self.prefix(pid);
        for pending in stack.iter().rev().filter(|p| !p.hidden) {
            if pending.announced {
                Self::emit(&format!(
                    "{prefix}<... {} resumed> <unfinished ...>) = ?",
                    pending.name
                ));
            } else {
                let space = Self::separator(&pending.head);
                Self::emit(&format!(
                    "{prefix}{}{space}<unfinished ...>) = ?",
                    pending.head
                ));
            }
        }
    }

    /// What goes between a call's entry part and `<unfinished ...>`.
    fn separator(head: &str) -> &'static str {
        if head.ends_with(' ') || head.ends_with('(') {
            ""
        } else {
            " "
        }
    }

    /// Prints `<unfinished ...>` for every shown call still open, in entry
    /// order, `extra` (a call being completed, already off its stack)
    /// included.
    fn announce_open(&mut self, extra: Option<(usize, &mut Pending)>) {
        let mut open: Vec<(u64, usize)> = self
            .stacks
            .iter()
            .flat_map(|(&pid, stack)| {
                stack
                    .iter()
                    .filter(|p| !p.hidden && !p.announced)
                    .map(move |p| (p.seq, pid))
            })
            .collect();
        let mut extra = extra;
        if let Some((pid, pending)) = extra.as_mut() {
            open.push((pending.seq, *pid));
        }
        open.sort_unstable();
        for (seq, pid) in open {
            let prefix = self.prefix(pid);
            let pending = match extra.as_mut() {
                Some((_, p)) if p.seq == seq => &mut **p,
                _ => match self
                    .stacks
                    .get_mut(&pid)
                    .and_then(|s| s.iter_mut().find(|p| p.seq == seq))
                {
                    Some(p) => p,
                    None => continue,
                },
            };
            let space = Self::separator(&pending.head);
            Self::emit(&format!("{prefix}{}{space}<unfinished ...>", pending.head));
            pending.announced = true;
        }
    }

    /// Prints a line that completes no call (a signal, an exit, a call
    /// that does not return) for `pid`.
    pub fn line(&mut self, pid: usize, text: &str) {
        self.announce_open(None);
        let prefix = self.prefix(pid);
        Self::emit(&format!("{prefix}{text}"));
    }

    /// Prints the exit of `pending` (taken with [`Output::take`]); `tail`
    /// is the rest of the line after the entry part: the arguments known
    /// at exit, `) = ` and the result.
    pub fn finish(&mut self, pid: usize, mut pending: Pending, tail: &str) {
        if pending.hidden {
            return;
        }
        // A call entered later and still open was "printed" after this
        // one's entry: this one is cut too.
        let later_open = self
            .stacks
            .values()
            .flatten()
            .any(|p| !p.hidden && !p.announced && p.seq > pending.seq);
        if later_open && !pending.announced {
            self.announce_open(Some((pid, &mut pending)));
        } else {
            self.announce_open(None);
        }
        let prefix = self.prefix(pid);
        if pending.announced {
            Self::emit(&format!("{prefix}<... {} resumed>{tail}", pending.name));
        } else {
            Self::emit(&format!("{prefix}{}{tail}", pending.head));
        }
    }
}
