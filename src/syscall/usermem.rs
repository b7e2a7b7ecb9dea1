//! Copying to and from the current process's memory. Every user pointer is
//! checked page by page against the address space (present, user, and
//! writable for stores) before a byte moves: a bad pointer is `EFAULT`,
//! never a kernel fault.

use alloc::string::String;
use alloc::vec::Vec;

use syscall::error::*;

use crate::context;
use crate::memory::paging::USER_END;

/// Largest single transfer (reads and writes return short past it): the
/// kernel buffers a transfer, and blocked readers must not be able to use
/// up the heap.
pub const MAX_TRANSFER: usize = 64 * 1024;

const SMALL_BUFFER: usize = 256;

/// A zeroed kernel buffer, or `ENOMEM` (never a panic) when the heap has
/// no room for it above its reserve. Buffers of at most `SMALL_BUFFER`
/// bytes (a ptrace operation, a signal action, a time) skip the check, so
/// detaching and the like work with the heap full: one per context at a
/// time is a few pages in all, well inside the reserve.
pub fn buffer(len: usize) -> Result<Vec<u8>> {
    if len > SMALL_BUFFER {
        crate::memory::heap::admit(len)?;
    }
    let mut buf = Vec::new();
    buf.try_reserve_exact(len).map_err(|_| Error::new(ENOMEM))?;
    buf.resize(len, 0);
    Ok(buf)
}

fn check_range(addr: usize, len: usize) -> Result<()> {
    let end = addr.checked_add(len).ok_or(Error::new(EFAULT))?;
    if end as u64 > USER_END {
        return Err(Error::new(EFAULT));
    }
    Ok(())
}

/// Copies `len` bytes from user address `addr`.
pub fn copy_in(addr: usize, len: usize) -> Result<Vec<u8>> {
    check_range(addr, len)?;
    let mut buf = buffer(len)?;
    if len == 0 {
        return Ok(buf);
    }
    let space = context::current()
        .lock()
        .space
        .clone()
        .ok_or(Error::new(EFAULT))?;
    if space.lock().read(addr as u64, &mut buf) != len {
        return Err(Error::new(EFAULT));
    }
    Ok(buf)
}

/// Copies `data` to user address `addr` (which must be writable).
pub fn copy_out(addr: usize, data: &[u8]) -> Result<()> {
    check_range(addr, data.len())?;
    if data.is_empty() {
        return Ok(());
    }
    let space = context::current()
        .lock()
        .space
        .clone()
        .ok_or(Error::new(EFAULT))?;
    if space.lock().write(addr as u64, data, false) != data.len() {
        return Err(Error::new(EFAULT));
    }
    Ok(())
}

/// Checks that `len` bytes at `addr` are writable user memory, before a
/// call whose side effects must not happen if the copy-out would fail.
pub fn check_writable(addr: usize, len: usize) -> Result<()> {
    check_range(addr, len)?;
    if len == 0 {
        return Ok(());
    }
    let space = context::current()
        .lock()
        .space
        .clone()
        .ok_or(Error::new(EFAULT))?;
    let space = space.lock();
    let mut page = addr as u64 & !0xFFF;
    while page < (addr + len) as u64 {
        match space.translate(page) {
            Some(t) if t.access.contains(crate::memory::paging::UserAccess::WRITE) => {}
            _ => return Err(Error::new(EFAULT)),
        }
        page += 0x1000;
    }
    Ok(())
}

pub fn read_u64(addr: usize) -> Result<u64> {
    let b = copy_in(addr, 8)?;
    let mut w = [0u8; 8];
    w.copy_from_slice(&b);
    Ok(u64::from_le_bytes(w))
}

/// A path or other string argument: UTF-8 or `EINVAL`.
pub fn read_str(addr: usize, len: usize) -> Result<String> {
    if len > 4096 {
        return Err(Error::new(ENAMETOOLONG));
    }
    let bytes = copy_in(addr, len)?;
    String::from_utf8(bytes).map_err(|_| Error::new(EINVAL))
}

/// The little-endian 64-bit word number `index` of `bytes`, if it is
/// all there (records copied in from user space are parsed with this).
pub fn le_u64(bytes: &[u8], index: usize) -> Option<u64> {
    let start = index.checked_mul(8)?;
    let word = bytes.get(start..)?.first_chunk::<8>()?;
    Some(u64::from_le_bytes(*word))
}

/// Size of `redox_syscall`'s `TimeSpec`: seconds (`i64`), nanoseconds
/// (`i32`), padding.
pub const TIMESPEC_SIZE: usize = core::mem::size_of::<syscall::data::TimeSpec>();

/// A `TimeSpec` record as (seconds, nanoseconds): `EINVAL` for negative
/// seconds or nanoseconds outside `0..1_000_000_000`; `EFAULT` if the
/// record is cut short.
pub fn parse_timespec(record: &[u8]) -> Result<(u64, u32)> {
    let sec = le_u64(record, 0).ok_or(Error::new(EFAULT))? as i64;
    let nsec = record
        .get(8..)
        .and_then(|r| r.first_chunk::<4>())
        .map(|w| i32::from_le_bytes(*w))
        .ok_or(Error::new(EFAULT))?;
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Error::new(EINVAL));
    }
    Ok((sec as u64, nsec as u32))
}

/// The `TimeSpec` at user address `addr` as a duration in nanoseconds
/// (saturating: a huge one is "for ever"); errors as [`parse_timespec`].
pub fn read_duration_ns(addr: usize) -> Result<u64> {
    let (sec, nsec) = parse_timespec(&copy_in(addr, TIMESPEC_SIZE)?)?;
    Ok(sec
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(nsec)))
}
