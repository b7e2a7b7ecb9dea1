//! `fuzz [--seed N] [--ops M]`: drives M random operations against the
//! kernel's `proc:` interface and system calls from seed N, then ends every
//! session, reaps every child and checks that `sys:memory` is back to its
//! baseline. See `docs/fuzzing.md`.
//!
//! Each operation is one of: a `trace` write or read, a register file read
//! or write, a `mem` seek with a read or write, a `dup` or `close`, an
//! I/O call on a collected handle, an open of a (often malformed) `proc:`
//! path, or a change to the tracee (signal, kill, detach, non-blocking
//! switch). A sacrificial child makes random raw system calls meanwhile
//! (`syschild`). Tracees and sacrificial children that die are replaced.
#![no_std]
#![no_main]

extern crate alloc;

mod handles;
mod procs;
mod rng;
mod syschild;
mod target;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use syscall::error::{Error, EAGAIN, EBUSY, ESRCH};
use syscall::flag::{wexitstatus, wifexited, wifsignaled, wtermsig, SIGKILL};

use procs::Memory;
use rng::Rng;

rt::entry!(main);

/// Random system calls per sacrificial child.
const CALLS_PER_CHILD: usize = 200;
/// A sacrificial child still alive after this many of the fuzzer's
/// operations is killed (it blocked, stopped or spins) and replaced.
const CHILD_OPS: u64 = 256;

/// Operation kinds, for the tallies.
const KINDS: [&str; 14] = [
    "trace-write",
    "trace-read",
    "regs-read",
    "regs-write",
    "mem",
    "dup",
    "close",
    "handle-io",
    "proc-open",
    "signal",
    "kill-tracee",
    "detach",
    "nonblock",
    "event",
];

/// The pids the fuzzer has seen (for the final sweep).
#[derive(Default)]
pub struct Pids {
    pub first: Option<usize>,
    pub max: usize,
}

impl Pids {
    pub fn note(&mut self, pid: usize) {
        if self.first.is_none() {
            self.first = Some(pid);
        }
        self.max = self.max.max(pid);
    }
}

/// The sacrificial child and what became of its predecessors.
#[derive(Default)]
struct SysChildren {
    pid: Option<usize>,
    born: u64,
    spawned: usize,
    finished: usize,
    exited_early: usize,
    died_by_signal: usize,
    killed_by_fuzzer: usize,
    refused: usize,
}

struct Fuzzer {
    rng: Rng,
    me: usize,
    target: target::Target,
    pool: handles::Pool,
    sys: SysChildren,
    pids: Pids,
    orphans: usize,
    sweeps: usize,
    /// Per kind: calls, successes, and errors by errno.
    counts: [(u64, u64); KINDS.len()],
    errors: BTreeMap<(usize, i32), u64>,
    big: Vec<u8>,
}

impl Fuzzer {
    fn new(seed: u64) -> Fuzzer {
        Fuzzer {
            rng: Rng::new(seed),
            me: syscall::getpid().unwrap_or(0),
            target: target::Target::default(),
            pool: handles::Pool::default(),
            sys: SysChildren::default(),
            pids: Pids::default(),
            orphans: 0,
            sweeps: 0,
            counts: [(0, 0); KINDS.len()],
            errors: BTreeMap::new(),
            big: vec![0u8; 10_000],
        }
    }

    /// Reaps every child that has ended: the tracee, the sacrificial
    /// child, and orphans handed to pid 1.
    fn reap(&mut self) {
        while let Some(r) = procs::reap_one() {
            self.pids.note(r.pid);
            if Some(r.pid) == self.target.pid {
                self.target.gone();
            } else if Some(r.pid) == self.sys.pid {
                self.sys.pid = None;
                if wifexited(r.status) && wexitstatus(r.status) == 0 {
                    self.sys.finished += 1;
                } else if wifexited(r.status) {
                    self.sys.exited_early += 1;
                } else if wifsignaled(r.status)
                    && wtermsig(r.status) == SIGKILL
                    && self.sys.born == u64::MAX
                {
                    self.sys.killed_by_fuzzer += 1;
                } else {
                    self.sys.died_by_signal += 1;
                }
            } else {
                self.orphans += 1;
            }
        }
    }

    /// Keeps one sacrificial child running; kills one that has had its
    /// time (counted in the fuzzer's operations).
    fn tend_child(&mut self, op: u64) {
        match self.sys.pid {
            Some(pid) if self.sys.born != u64::MAX && op - self.sys.born > CHILD_OPS => {
                let _ = syscall::kill(pid, SIGKILL);
                // Marks it as killed by the fuzzer when it is reaped.
                self.sys.born = u64::MAX;
            }
            Some(_) => {}
            None => {
                let seed = self.rng.fork_seed();
                let me = self.me;
                match rt::process::fork() {
                    Ok(0) => syschild::run(seed, CALLS_PER_CHILD, me),
                    Ok(pid) => {
                        self.pids.note(pid);
                        self.sys.pid = Some(pid);
                        self.sys.born = op;
                        self.sys.spawned += 1;
                        // Let it run first: until it has closed its
                        // copies of the fuzzer's handles, a session it
                        // holds a copy of outlives the fuzzer's close.
                        let _ = syscall::sched_yield();
                    }
                    Err(e) => {
                        self.sys.refused += 1;
                        if e.errno == EAGAIN {
                            self.sweep_strays();
                        }
                    }
                }
            }
        }
    }

    /// When the kernel refuses new processes: kills every process the
    /// fuzzer did not start itself and does not use (leftovers of
    /// sacrificial children and tainted tracees). Only as pid 1, where
    /// every other process is the fuzzer's.
    fn sweep_strays(&mut self) {
        let Some(first) = self.pids.first else { return };
        if self.me != 1 {
            return;
        }
        self.sweeps += 1;
        for pid in first..=self.pids.max + 64 {
            if Some(pid) != self.target.pid && Some(pid) != self.sys.pid && pid != self.me {
                let _ = syscall::kill(pid, SIGKILL);
            }
        }
    }

    fn record(&mut self, kind: usize, r: Result<usize, Error>) {
        self.counts[kind].0 += 1;
        match r {
            Ok(_) => self.counts[kind].1 += 1,
            Err(e) => *self.errors.entry((kind, e.errno)).or_insert(0) += 1,
        }
    }

    /// One random operation.
    fn step(&mut self, op: u64) {
        if op.is_multiple_of(8) {
            self.reap();
            self.tend_child(op);
        }
        if self.target.pid.is_none() {
            if let Err(e) = self.target.ensure_tracee(&mut self.pids) {
                if e.errno == EAGAIN {
                    self.sweep_strays();
                }
            }
        }
        // A tainted tracee is replaced now and then, so that clean ones
        // (which blocking operations need) keep coming.
        if self.target.tainted && self.rng.one_in(64) {
            let _ = self.target.kill();
        }
        let rng = &mut self.rng;
        let big = &mut self.big[..];
        let mut roll = rng.below(100);
        if self.pool.is_empty() && (71..=82).contains(&roll) {
            // Nothing to close or use yet: collect a handle instead.
            roll = if rng.one_in(2) { 65 } else { 83 };
        }
        let (kind, r) = match roll {
            0..=21 => (0, self.target.trace_write(rng)),
            22..=31 => (1, self.target.trace_read(rng, big)),
            32..=40 => (2, self.target.regs_read(rng, big)),
            41..=50 => (3, self.target.regs_write(rng)),
            51..=61 => (4, self.target.mem_op(rng, big)),
            62..=64 => (13, self.target.event_op(rng, big)),
            65..=70 => {
                let session = self.target.fds();
                (5, self.pool.dup(rng, &session))
            }
            71..=75 => {
                if rng.one_in(3) {
                    self.target.close_file(rng);
                }
                (6, self.pool.close_one(rng))
            }
            76..=82 => {
                let gen2 = self
                    .target
                    .session
                    .as_ref()
                    .filter(|s| s.gen2)
                    .map(|s| s.trace);
                (7, self.pool.io(rng, big, gen2))
            }
            83..=92 => {
                let known = [
                    self.me,
                    self.target.pid.unwrap_or(0),
                    self.sys.pid.unwrap_or(0),
                    self.pids.max,
                    1,
                ];
                (8, self.pool.open_path(rng, &known))
            }
            93..=95 => (9, self.target.signal(rng)),
            96 => (10, self.target.kill()),
            97 | 98 => {
                self.target.close_session();
                (11, Ok(0))
            }
            _ => (12, self.target.set_nonblocking()),
        };
        match &r {
            // The tracee is gone: reap it now, so the next operation gets
            // a new one.
            Err(e) if e.errno == ESRCH && (kind <= 4 || kind == 13) => self.reap(),
            // Its session lives on through a collected copy of the handle
            // (or a collected handle attached to it): drop them now and
            // then.
            Err(e) if e.errno == EBUSY && kind <= 4 && self.rng.one_in(4) => self.pool.clear(),
            _ => {}
        }
        self.record(kind, r);
    }

    /// Ends every session, closes every handle, kills and reaps every
    /// process the fuzzer started (and, as pid 1, every orphan).
    fn cleanup(&mut self) {
        self.pool.clear();
        self.target.close_session();
        let _ = self.target.kill();
        if let Some(pid) = self.sys.pid {
            let _ = syscall::kill(pid, SIGKILL);
            self.sys.born = u64::MAX;
        }
        // Pids the fuzzer never saw (children its children reaped) may lie
        // above the highest one it saw: the range grows until no child is
        // left.
        let mut margin = 512;
        loop {
            if self.me == 1 {
                if let Some(first) = self.pids.first {
                    procs::kill_range(first, self.pids.max + margin, self.me);
                }
            }
            let mut left = false;
            for _ in 0..100 {
                match rt::process::waitpid(0, syscall::flag::WaitFlags::WNOHANG) {
                    Ok((0, _)) => {
                        left = true;
                        let _ = rt::process::sleep_ms(1);
                    }
                    Ok((pid, _)) => {
                        self.pids.note(pid);
                        if Some(pid) == self.target.pid {
                            self.target.gone();
                        } else if Some(pid) == self.sys.pid {
                            self.sys.pid = None;
                            self.sys.killed_by_fuzzer += 1;
                        } else {
                            self.orphans += 1;
                        }
                    }
                    Err(_) => {
                        left = false;
                        break;
                    }
                }
            }
            if !left {
                break;
            }
            margin += 512;
        }
        self.target.gone();
        self.sys.pid = None;
    }

    fn report(&self) {
        for (kind, name) in KINDS.iter().enumerate() {
            let (calls, ok) = self.counts[kind];
            let mut line = format!("fuzz: {name:<12} {calls:>8} calls {ok:>8} ok");
            for ((k, errno), n) in &self.errors {
                if *k == kind {
                    line += &format!(" {}={n}", rt::errno_name(*errno));
                }
            }
            rt::println!("{}", line);
        }
        let t = &self.target;
        rt::println!(
            "fuzz: tracees {} (sessions {}, O_EXCL {}, int3 step-overs {}); pool opens {}",
            t.spawned,
            t.attached,
            t.exclusive,
            t.fixups,
            self.pool.opened
        );
        let s = &self.sys;
        rt::println!(
            "fuzz: syscall children {} ({} calls each): finished {}, exited early {}, died by signal {}, killed by the fuzzer {}, fork refused {}",
            s.spawned,
            CALLS_PER_CHILD,
            s.finished,
            s.exited_early,
            s.died_by_signal,
            s.killed_by_fuzzer,
            s.refused
        );
        rt::println!(
            "fuzz: orphans reaped {}, stray sweeps {}, highest pid {}",
            self.orphans,
            self.sweeps,
            self.pids.max
        );
    }
}

/// `--seed N --ops M`.
fn parse(args: &[&str]) -> Result<(u64, u64), String> {
    let mut seed = 1;
    let mut ops = 10_000;
    let mut i = 1;
    while i < args.len() {
        let value = args
            .get(i + 1)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("{} needs a number", args[i]))?;
        match args[i] {
            "--seed" => seed = value,
            "--ops" => ops = value,
            other => return Err(format!("unknown argument {other:?}")),
        }
        i += 2;
    }
    Ok((seed, ops))
}

/// The memory counters once deferred frees have settled: read again
/// (after a short sleep) until they match `want` or five tries pass.
fn settled(want: Option<Memory>) -> Result<Memory, String> {
    let mut m = procs::memory()?;
    for _ in 0..5 {
        if Some(m) == want {
            break;
        }
        let _ = rt::process::sleep_ms(20);
        m = procs::memory()?;
    }
    Ok(m)
}

/// A fresh trace session after the run: attach to a new child, run it to
/// a syscall stop, detach, kill and reap it.
fn fresh_session() -> Result<(), String> {
    let pid = rt::process::fork_with(|| loop {
        let _ = syscall::sched_yield();
    })
    .map_err(|e| format!("fork: {}", rt::errno::describe(&e)))?;
    let result = (|| {
        let mut t = tracer::Tracer::attach(pid)
            .map_err(|e| format!("attach: {}", rt::errno::describe(&e)))?;
        match t.resume(tracer::PTRACE_SYSCALL, |_| {}) {
            // An entry stop, or the exit stop of the call the child was
            // in when it was attached.
            Ok(tracer::Stopped::Reached(stop))
                if stop.cause == tracer::PTRACE_STOP_PRE_SYSCALL
                    || stop.cause == tracer::PTRACE_STOP_POST_SYSCALL => {}
            other => return Err(format!("PTRACE_SYSCALL: {other:?}")),
        }
        t.detach()
            .map_err(|e| format!("detach: {}", rt::errno::describe(&e)))
    })();
    let _ = syscall::kill(pid, SIGKILL);
    let _ = rt::process::wait(pid);
    result
}

fn main(args: &[&str]) -> i32 {
    let (seed, ops) = match parse(args) {
        Ok(v) => v,
        Err(e) => {
            rt::eprintln!("fuzz: {e}; usage: fuzz [--seed N] [--ops M]");
            return 2;
        }
    };
    let warmup = (ops / 5).min(5000);
    rt::println!("fuzz: seed={seed} ops={ops} warm-up={warmup}");
    let mut t = rt::Tests::new();
    let start = match procs::memory() {
        Ok(m) => m,
        Err(e) => {
            t.check("sys:memory readable", Err(e));
            return t.finish();
        }
    };
    rt::println!("fuzz: memory at start: {start}");
    // The fuzzer's own descriptor table keeps the size it once needed:
    // make it larger now than the fuzzer ever needs (it holds at most
    // about 40 descriptors), so that it cannot grow between the baseline
    // and the end.
    if let Ok(fd) = syscall::dup2(0, procs::FD_LIMIT - 1, &[]) {
        let _ = syscall::close(fd);
    }
    let mut f = Fuzzer::new(seed);
    let began = rt::process::now_ms();
    for op in 0..warmup {
        f.step(op);
    }
    f.cleanup();
    let (contexts, why) = procs::saturate();
    rt::println!(
        "fuzz: high-water marks raised with {contexts} more contexts (then {})",
        rt::errno_name(why)
    );
    let baseline = settled(None);
    let baseline = match baseline {
        Ok(m) => m,
        Err(e) => {
            t.check("sys:memory readable", Err(e));
            return t.finish();
        }
    };
    rt::println!("fuzz: memory baseline after the warm-up and clean-up: {baseline}");
    let every = (ops / 10).max(1000);
    for op in warmup..ops {
        f.step(op);
        if (op + 1) % every == 0 {
            rt::println!(
                "fuzz: {} ops done, {} ms",
                op + 1,
                rt::process::now_ms() - began
            );
        }
    }
    f.cleanup();
    let after = settled(Some(baseline));
    let elapsed = rt::process::now_ms() - began;
    rt::println!("fuzz: seed={seed} ops={ops} done in {elapsed} ms");
    f.report();
    t.check(
        "memory after the run equals the baseline",
        match after {
            Ok(after) => {
                rt::println!("fuzz: memory before: {baseline}");
                rt::println!("fuzz: memory after:  {after}");
                if after == baseline {
                    Ok(())
                } else {
                    Err(format!(
                        "leak: before {baseline}, after {after} (frames {:+}, heap bytes {:+})",
                        after.frames_free as i64 - baseline.frames_free as i64,
                        after.heap_used as i64 - baseline.heap_used as i64
                    ))
                }
            }
            Err(e) => Err(e),
        },
    );
    t.check(
        "every operation kind ran",
        match f.counts.iter().position(|c| c.0 == 0) {
            Some(k) if ops >= 1000 => Err(format!("no {} operation ran", KINDS[k])),
            _ => Ok(()),
        },
    );
    t.run("a fresh trace session works after the run", fresh_session);
    t.finish()
}
