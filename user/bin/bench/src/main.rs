//! Micro-benchmarks in guest time (CLOCK_MONOTONIC): the cost of a null
//! system call, of a context switch (pipe ping-pong between two
//! processes), and of a system call under tracing (what ptrace adds).
//! Prints one `bench NAME: N ns/op (M ops)` line each.
#![no_std]
#![no_main]

extern crate alloc;

use rt::println;
use syscall::flag::{WaitFlags, SIGCONT, SIGSTOP};
use tracer::{Stopped, Tracer, PTRACE_CONT, PTRACE_SYSCALL};

rt::entry!(main);

fn now_ns() -> u64 {
    let mut ts = syscall::TimeSpec::default();
    let _ = syscall::clock_gettime(syscall::flag::CLOCK_MONOTONIC, &mut ts);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn report(name: &str, ops: u64, ns: u64) {
    println!("bench {}: {} ns/op ({} ops)", name, ns / ops.max(1), ops);
}

fn null_syscall(ops: u64) -> u64 {
    let start = now_ns();
    for _ in 0..ops {
        let _ = syscall::getpid();
    }
    now_ns() - start
}

/// One byte back and forth between two processes: each round trip is two
/// context switches.
fn ping_pong(rounds: u64) -> Result<u64, syscall::Error> {
    let (to_child_r, to_child_w) = rt::io::pipe(0)?;
    let (to_parent_r, to_parent_w) = rt::io::pipe(0)?;
    let child = rt::process::fork_with(|| {
        let mut b = [0u8; 1];
        for _ in 0..rounds {
            if syscall::read(to_child_r, &mut b) != Ok(1)
                || syscall::write(to_parent_w, &b).is_err()
            {
                return 1;
            }
        }
        0
    })?;
    let mut b = [7u8; 1];
    let start = now_ns();
    for _ in 0..rounds {
        syscall::write(to_child_w, &b)?;
        syscall::read(to_parent_r, &mut b)?;
    }
    let elapsed = now_ns() - start;
    rt::process::wait(child)?;
    for fd in [to_child_r, to_child_w, to_parent_r, to_parent_w] {
        let _ = syscall::close(fd);
    }
    Ok(elapsed)
}

/// A traced child makes `ops` getpid calls; the tracer times the whole run
/// while driving it with `op`.
fn traced_getpid(ops: u64, op: u8) -> Result<u64, syscall::Error> {
    let child = rt::process::fork_with(|| {
        let _ = syscall::kill(syscall::getpid().unwrap_or(0), SIGSTOP);
        for _ in 0..ops {
            let _ = syscall::getpid();
        }
        0
    })?;
    rt::process::waitpid(child, WaitFlags::WUNTRACED)?;
    let mut t = Tracer::attach(child)?;
    syscall::kill(child, SIGCONT)?;
    let start = now_ns();
    while let Stopped::Reached(_) = t.resume(op, |_| {})? {}
    let elapsed = now_ns() - start;
    drop(t);
    rt::process::wait(child)?;
    Ok(elapsed)
}

fn main(_args: &[&str]) -> i32 {
    let ops = 100_000;
    report("null syscall (getpid)", ops, null_syscall(ops));
    match ping_pong(10_000) {
        Ok(ns) => report("context switch (pipe ping-pong, per switch)", 20_000, ns),
        Err(e) => println!("bench ping-pong failed: {:?}", e),
    }
    let traced = 2_000;
    match traced_getpid(traced, PTRACE_CONT) {
        Ok(ns) => report("getpid, traced with PTRACE_CONT (no stops)", traced, ns),
        Err(e) => println!("bench traced failed: {:?}", e),
    }
    match traced_getpid(traced, PTRACE_SYSCALL) {
        Ok(ns) => report(
            "getpid, traced with PTRACE_SYSCALL (2 stops each)",
            traced,
            ns,
        ),
        Err(e) => println!("bench traced failed: {:?}", e),
    }
    0
}
