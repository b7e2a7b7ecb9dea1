//! Hardening tests for the tracing interface: death at every stop (the
//! tracer killed, with and without `O_EXCL`, or `SIGKILL` to the held
//! process, for each stop kind), and the security matrix cases that no
//! other program covers (`matrix_case_N_...`; `docs/security.md` maps
//! every case to its test).
//!
//! Must run as pid 1 (`init=/bin/test-ptrace-death`): the death cases reap
//! the tracees their killed tracers leave behind. The matrix checks run each
//! in its own forked child with a deadline. `test-ptrace-death NAME...`
//! runs only the named checks.
#![no_std]
#![no_main]

extern crate alloc;

mod death;
#[allow(dead_code)]
#[path = "../../test-ptrace-attach/src/harness.rs"]
mod harness;
mod matrix;

use alloc::format;
use alloc::string::String;

use rt::process::sleep_ms;
use rt::test::Ctx;
use rt::Tests;
use syscall::flag::O_RDONLY;

rt::entry!(main);

/// `frames_free` and `heap_used` from `sys:memory`.
pub fn memory() -> Result<(u64, u64), String> {
    let fd = syscall::open("sys:memory", O_RDONLY).ctx("open sys:memory")?;
    let mut buf = [0u8; 256];
    let n = rt::io::read(fd, &mut buf);
    let _ = syscall::close(fd);
    let n = n.ctx("read sys:memory")?;
    let text =
        core::str::from_utf8(&buf[..n]).map_err(|_| String::from("sys:memory: not UTF-8"))?;
    let value = |key: &str| -> Option<u64> {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
    };
    match (value("frames_free"), value("heap_used")) {
        (Some(f), Some(h)) => Ok((f, h)),
        _ => Err(format!("sys:memory: cannot parse {text:?}")),
    }
}

/// `sys:memory` is back at `before` (a few short naps allowed for frees
/// that happen after a reaped process's last switch).
pub fn expect_memory_back(before: (u64, u64)) -> Result<(), String> {
    let mut after = memory()?;
    for _ in 0..10 {
        if after == before {
            return Ok(());
        }
        let _ = sleep_ms(5);
        after = memory()?;
    }
    Err(format!(
        "leak: sys:memory (frames_free, heap_used) before {before:?}, after reaping {after:?}"
    ))
}

fn main(args: &[&str]) -> i32 {
    if args.len() == 3 && args[1] == "--exec-loop" {
        return matrix::exec_loop(args[2]);
    }
    let only = &args[1.min(args.len())..];
    let wanted = |name: &str| only.is_empty() || only.contains(&name);
    let mut t = Tests::new();
    // Warm-up: the first case once more without the leak check, so that
    // lazily grown kernel tables (our descriptor table, the scheduler's)
    // reach their steady size before the first baseline.
    t.check(
        "death_warm_up_without_leak_check",
        death::run_case(death::Stop::Attach, death::Death::Tracer, false),
    );
    for &(name, stop, how) in death::CASES {
        if wanted(name) {
            t.check(name, death::run_case(stop, how, true));
            harness::reap_orphans();
        }
    }
    for &(name, check, deadline) in matrix::TESTS {
        if wanted(name) {
            t.check(name, harness::timed(deadline, check));
            harness::reap_orphans();
        }
    }
    t.finish()
}
