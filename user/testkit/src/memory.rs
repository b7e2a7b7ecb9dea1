//! `sys:memory` baselines and leak checks: free frames and kernel heap
//! bytes in use, before and after.

use alloc::format;
use alloc::string::String;

use rt::process::sleep_ms;
use rt::test::Ctx;
use syscall::flag::O_RDONLY;

use crate::Check;

/// `frames_free` and `heap_used` from `sys:memory`, read with one `read`
/// at offset 0 (the kernel renders the text afresh for every read). Uses
/// the heap only to report an error.
pub fn memory() -> Result<(u64, u64), String> {
    let fd = syscall::open("sys:memory", O_RDONLY).ctx("open sys:memory")?;
    let mut buf = [0u8; 256];
    let n = rt::io::read(fd, &mut buf);
    let _ = syscall::close(fd);
    let n = n.ctx("read sys:memory")?;
    let text = buf
        .get(..n)
        .and_then(|b| core::str::from_utf8(b).ok())
        .ok_or_else(|| String::from("sys:memory: not UTF-8"))?;
    let value = |key: &str| -> Option<u64> {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
    };
    match (value("frames_free"), value("heap_used")) {
        (Some(f), Some(h)) => Ok((f, h)),
        _ => Err(format!("sys:memory: cannot parse {text:?}")),
    }
}

/// Checks that `sys:memory` is back at `before` after `what`. A reaped
/// process's last pages are freed after its last switch, so a few short
/// naps are allowed before the difference counts as a leak.
pub fn expect_memory_back(before: (u64, u64), what: &str) -> Check {
    let mut after = memory()?;
    for _ in 0..10 {
        if after == before {
            return Ok(());
        }
        let _ = sleep_ms(20);
        after = memory()?;
    }
    Err(format!(
        "leak after {what}: sys:memory (frames_free, heap_used) before {before:?}, after {after:?}"
    ))
}
