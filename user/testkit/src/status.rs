//! `proc:<pid>/status`: the line (`pid=... state=... tracer=...`), its
//! fields, and polls until a process reaches a state.

use alloc::format;
use alloc::string::{String, ToString};

use rt::process::{now_ms, sleep_ms};
use rt::test::Ctx;
use syscall::flag::{O_CLOEXEC, O_RDONLY};

use crate::timeout::WAIT_MS;
use crate::Check;

/// Our pid.
pub fn me() -> usize {
    syscall::getpid().unwrap_or(0)
}

/// `proc:<pid>/status`, the whole line.
pub fn status_line(pid: usize) -> Result<String, String> {
    let fd = syscall::open(format!("proc:{pid}/status"), O_RDONLY | O_CLOEXEC)
        .ctx(&format!("open proc:{pid}/status"))?;
    let mut buf = [0u8; 512];
    let n = rt::io::read(fd, &mut buf);
    let _ = syscall::close(fd);
    let n = n.ctx("read status")?;
    let line = buf
        .get(..n)
        .and_then(|b| core::str::from_utf8(b).ok())
        .ok_or_else(|| String::from("status is not UTF-8"))?;
    Ok(line.to_string())
}

/// The value of `key=` in a status line.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// The `state=` word of `proc:<pid>/status`.
pub fn proc_state(pid: usize) -> Result<String, String> {
    let line = status_line(pid)?;
    field(&line, "state")
        .map(String::from)
        .ok_or_else(|| format!("no state= in {line:?}"))
}

/// The `state=` and `tracer=` of `pid`.
pub fn state_of(pid: usize) -> Result<(String, usize), String> {
    let line = status_line(pid)?;
    let state = field(&line, "state").ok_or(format!("no state= in {line:?}"))?;
    let tracer = field(&line, "tracer")
        .and_then(|t| t.parse().ok())
        .ok_or(format!("no tracer= in {line:?}"))?;
    Ok((state.to_string(), tracer))
}

/// Checks `state=held tracer=<tracer>`.
pub fn expect_held_by(pid: usize, tracer: usize) -> Check {
    let line = status_line(pid)?;
    let (state, by) = state_of(pid)?;
    if state == "held" && by == tracer {
        Ok(())
    } else {
        Err(format!(
            "pid {pid}: expected state=held tracer={tracer}, got {:?}",
            line.trim_end()
        ))
    }
}

/// Polls `status` every millisecond until `pid` is neither held nor
/// traced (`tracer=0`).
pub fn wait_untraced(pid: usize, timeout_ms: u64) -> Check {
    let deadline = now_ms() + timeout_ms;
    loop {
        let (state, tracer) = state_of(pid)?;
        if state != "held" && tracer == 0 {
            return Ok(());
        }
        if now_ms() >= deadline {
            return Err(format!(
                "pid {pid} still state={state} tracer={tracer} after {timeout_ms} ms"
            ));
        }
        let _ = sleep_ms(1);
    }
}

/// Polls `status` every millisecond until `state=` is `state`.
pub fn wait_for_state(pid: usize, state: &str, timeout_ms: u64) -> Check {
    let deadline = now_ms() + timeout_ms;
    loop {
        let now = proc_state(pid)?;
        if now == state {
            return Ok(());
        }
        if now_ms() >= deadline {
            return Err(format!(
                "pid {pid} not {state} after {timeout_ms} ms (state={now})"
            ));
        }
        let _ = sleep_ms(1);
    }
}

/// [`wait_for_state`] for [`WAIT_MS`].
pub fn wait_state(pid: usize, state: &str) -> Check {
    wait_for_state(pid, state, WAIT_MS)
}
