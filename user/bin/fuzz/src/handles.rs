//! Handles the fuzzer collects and drops at random: `dup` of the session's
//! files under sibling names, random names and no name; `proc:` paths,
//! well-formed and malformed, opened with random flags. A pool handle is
//! read, sought, `fstat`ed, `fpath`ed and closed, never written: writes go
//! through the session's own files only, so that the fuzzer knows when the
//! tracee may have been changed (see `target`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use syscall::data::Stat;
use syscall::error::{Error, Result, EINVAL};
use syscall::flag::{F_GETFL, O_CLOEXEC, O_EXCL, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY};

use crate::rng::Rng;

/// At most this many pool handles at once (keeps the descriptor table,
/// which never shrinks, at the size the warm-up reached).
const MAX: usize = 24;

const NAMES: [&str; 16] = [
    "trace",
    "regs/int",
    "regs/float",
    "regs/env",
    "regs/debug",
    "mem",
    "stop",
    "status",
    "syscalls",
    "",
    "regs",
    "regs/",
    "/trace",
    "../1/trace",
    "trace/",
    "bogus",
];

#[derive(Default)]
pub struct Pool {
    fds: Vec<usize>,
    /// Opens that succeeded (handles the fuzzer then held).
    pub opened: usize,
}

/// A name for `dup` or a path's file part.
fn name(rng: &mut Rng) -> Vec<u8> {
    match rng.below(5) {
        0..=2 => rng.pick(&NAMES).as_bytes().to_vec(),
        3 => {
            let len = rng.below(12) as usize;
            rng.bytes(len)
        }
        _ => {
            const ALPHABET: &[u8] = b"0123456789/abcdefgilmnorstuvx.";
            let len = rng.below(16) as usize;
            (0..len).map(|_| *rng.pick(ALPHABET)).collect()
        }
    }
}

/// A pid for a `proc:` path: ours, the tracee's, the sacrificial
/// child's, edges, or anything.
fn pid_text(rng: &mut Rng, known: &[usize]) -> String {
    match rng.below(11) {
        0..=4 => format!("{}", rng.pick(known)),
        5 => String::from("0"),
        6 => format!("{}", u64::MAX - rng.below(3)),
        7 => String::from("99999999999999999999999999"),
        8 => format!("-{}", rng.below(5)),
        9 => format!("{}", rng.below(2_000)),
        _ => format!("{}", rng.next()),
    }
}

/// A path under `proc:`, often malformed.
pub fn path(rng: &mut Rng, known: &[usize]) -> Vec<u8> {
    let pid = pid_text(rng, known);
    let mut p: Vec<u8> = match rng.below(20) {
        0 => format!("proc:{pid}/").into_bytes(),
        1 => format!("proc:{pid}").into_bytes(),
        2 => b"proc:".to_vec(),
        3 => b"proc:/".to_vec(),
        4 => format!("proc:/{pid}/trace").into_bytes(),
        5 => format!("proc:{pid}//mem").into_bytes(),
        6 => format!("proc: {pid}/status").into_bytes(),
        7 => format!("proc:+{pid}/stop").into_bytes(),
        8 => format!("proc:{pid}/trace\0").into_bytes(),
        9 => {
            let len = rng.below(24) as usize;
            let mut v = b"proc:".to_vec();
            v.extend(rng.bytes(len));
            v
        }
        10 => {
            let len = rng.below(24) as usize;
            rng.bytes(len)
        }
        _ => {
            let mut v = format!("proc:{pid}/").into_bytes();
            v.extend(name(rng));
            v
        }
    };
    if rng.one_in(16) {
        p.truncate(rng.below(p.len() as u64 + 1) as usize);
    }
    p
}

/// `open` with a raw call: the path may be any bytes, not only UTF-8.
fn open_raw(path: &[u8], flags: usize) -> Result<usize> {
    // SAFETY: the pointer and length describe a live byte slice.
    unsafe {
        syscall::syscall3(
            syscall::number::SYS_OPEN,
            path.as_ptr() as usize,
            path.len(),
            flags,
        )
    }
}

impl Pool {
    fn keep(&mut self, fd: usize) {
        if self.fds.len() < MAX {
            self.fds.push(fd);
        } else {
            let _ = syscall::close(fd);
        }
    }

    /// Opens a random `proc:` path with random flags.
    pub fn open_path(&mut self, rng: &mut Rng, known: &[usize]) -> Result<usize> {
        let p = path(rng, known);
        let mut flags = *rng.pick(&[O_RDONLY, O_WRONLY, O_RDWR, O_RDWR, 0]) | O_CLOEXEC;
        if rng.one_in(3) {
            flags |= O_NONBLOCK;
        }
        if rng.one_in(8) {
            flags |= O_EXCL;
        }
        if rng.one_in(32) {
            flags |= rng.next() as usize & !(O_NONBLOCK | O_EXCL);
        }
        let fd = open_raw(&p, flags)?;
        self.opened += 1;
        self.keep(fd);
        Ok(fd)
    }

    /// `dup` of a session file or pool handle, with a random name.
    pub fn dup(&mut self, rng: &mut Rng, session: &[usize]) -> Result<usize> {
        let from = if !session.is_empty() && (self.fds.is_empty() || rng.one_in(2)) {
            *rng.pick(session)
        } else if !self.fds.is_empty() {
            *rng.pick(&self.fds)
        } else {
            return Err(Error::new(EINVAL));
        };
        let n = name(rng);
        let fd = syscall::dup(from, &n)?;
        self.opened += 1;
        self.keep(fd);
        Ok(fd)
    }

    /// Closes a random pool handle.
    pub fn close_one(&mut self, rng: &mut Rng) -> Result<usize> {
        if self.fds.is_empty() {
            return Err(Error::new(EINVAL));
        }
        let i = rng.below(self.fds.len() as u64) as usize;
        let fd = self.fds.swap_remove(i);
        syscall::close(fd)
    }

    /// A read, seek, `fstat`, `fpath` or `fcntl` on a random pool handle.
    /// Reads only on non-blocking handles or handles of a session that
    /// never went to generation 2 (`gen2_trace`: the fuzzer's session
    /// handle when it did), since only generation-2 `trace` reads wait.
    pub fn io(
        &mut self,
        rng: &mut Rng,
        big: &mut [u8],
        gen2_trace: Option<usize>,
    ) -> Result<usize> {
        if self.fds.is_empty() {
            return Err(Error::new(EINVAL));
        }
        let fd = *rng.pick(&self.fds);
        match rng.below(6) {
            0 | 1 => {
                let nonblock = syscall::fcntl(fd, F_GETFL, 0)? & O_NONBLOCK != 0;
                if gen2_trace.is_some() && !nonblock {
                    // A copy of a generation-2 session might wait.
                    return Err(Error::new(EINVAL));
                }
                let len = rng.below(600) as usize;
                syscall::read(fd, &mut big[..len])
            }
            2 => tracer::seek_to(fd, rng.next() >> rng.below(64)).map(|v| v as usize),
            3 => {
                let mut st = Stat::default();
                syscall::fstat(fd, &mut st)
            }
            4 => {
                let len = rng.below(80) as usize;
                syscall::fpath(fd, &mut big[..len])
            }
            _ => syscall::fcntl(fd, F_GETFL, 0),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// Closes every pool handle.
    pub fn clear(&mut self) {
        for fd in self.fds.drain(..) {
            let _ = syscall::close(fd);
        }
    }
}
