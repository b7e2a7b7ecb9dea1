//! Process, credential, signal and time calls.

use alloc::vec::Vec;

use syscall::error::*;
use syscall::flag::*;
use syscall::number::*;

use super::usermem::{check_writable, copy_in, copy_out, le_u64, read_duration_ns, read_u64};
use crate::arch::trap_frame::TrapFrame;
use crate::context::signal::{self, Action, UNBLOCKABLE};
use crate::context::{self, Creds};
use crate::memory::paging::USER_END;
use crate::process::{MAX_ARGS, MAX_ARG_BYTES};

/// `fexec(fd, args, nargs, vars, nvars)`: arguments are `[ptr, len]` pairs.
pub fn fexec(a: [usize; 6], frame: &mut TrapFrame) -> Result<usize> {
    let argv = read_string_list(a[1], a[2])?;
    let envp = read_string_list(a[3], a[4])?;
    if argv
        .iter()
        .chain(envp.iter())
        .map(|s| s.len() + 1)
        .sum::<usize>()
        > MAX_ARG_BYTES
    {
        return Err(Error::new(E2BIG));
    }
    crate::process::fexec(a[0], argv, envp, frame)
}

fn read_string_list(ptr: usize, count: usize) -> Result<Vec<Vec<u8>>> {
    if count > MAX_ARGS {
        return Err(Error::new(E2BIG));
    }
    let table = copy_in(ptr, count.checked_mul(16).ok_or(Error::new(EFAULT))?)?;
    let mut total = 0usize;
    table
        .chunks_exact(16)
        .map(|pair| {
            let word = |i: usize| {
                le_u64(pair, i)
                    .map(|w| w as usize)
                    .ok_or(Error::new(EFAULT))
            };
            let len = word(1)?;
            total = total.saturating_add(len);
            if total > MAX_ARG_BYTES {
                return Err(Error::new(E2BIG));
            }
            copy_in(word(0)?, len)
        })
        .collect()
}

fn creds() -> Creds {
    context::current().lock().creds
}

pub fn getppid() -> Result<usize> {
    Ok(context::current().lock().ppid)
}

pub fn get_id(nr: usize) -> Result<usize> {
    let c = creds();
    Ok(match nr {
        SYS_GETUID => c.uid,
        SYS_GETEUID => c.euid,
        SYS_GETGID => c.gid,
        _ => c.egid,
    } as usize)
}

/// The new (real, effective) pair: `usize::MAX` leaves one unchanged; only
/// root (effective uid 0) may pick ids other than the current two.
fn new_ids(
    real: u32,
    effective: u32,
    new_real: usize,
    new_effective: usize,
    root: bool,
) -> Result<(u32, u32)> {
    let pick = |value: usize, current: u32| -> Result<u32> {
        if value == usize::MAX {
            return Ok(current);
        }
        let value = u32::try_from(value).map_err(|_| Error::new(EINVAL))?;
        if root || value == real || value == effective {
            Ok(value)
        } else {
            Err(Error::new(EPERM))
        }
    };
    Ok((pick(new_real, real)?, pick(new_effective, effective)?))
}

pub fn setreuid(ruid: usize, euid: usize) -> Result<usize> {
    change_creds(|creds| {
        let (uid, euid) = new_ids(creds.uid, creds.euid, ruid, euid, creds.euid == 0)?;
        Ok(Creds { uid, euid, ..creds })
    })
}

pub fn setregid(rgid: usize, egid: usize) -> Result<usize> {
    change_creds(|creds| {
        let (gid, egid) = new_ids(creds.gid, creds.egid, rgid, egid, creds.euid == 0)?;
        Ok(Creds { gid, egid, ..creds })
    })
}

/// Applies a `setreuid`/`setregid`. A call that changes any id marks the
/// process (only root may trace it until its next `fexec`) and revokes the
/// `proc:` handles non-root callers hold on it (ptrace contract v1.2).
fn change_creds(new: impl FnOnce(Creds) -> Result<Creds>) -> Result<usize> {
    let ctx = context::current();
    let changed = {
        let mut c = ctx.lock();
        let creds = new(c.creds)?;
        let changed = creds != c.creds;
        if changed {
            c.creds = creds;
            c.creds_changed = true;
            c.creds_epoch = c.creds_epoch.wrapping_add(1);
        }
        changed
    };
    if changed {
        crate::ptrace::on_creds_changed(context::current_pid());
    }
    Ok(0)
}

pub fn waitpid(pid: usize, status: usize, flags: usize) -> Result<usize> {
    if status != 0 {
        check_writable(status, 8)?;
    }
    let (child, wait_status) = crate::process::waitpid(pid, flags)?;
    if status != 0 && child != 0 {
        copy_out(status, &(wait_status as u64).to_le_bytes())?;
    }
    Ok(child)
}

/// Unix rule: root, or a real or effective uid of the sender equal to the
/// target's real or effective uid.
fn may_signal(sender: Creds, target: Creds) -> bool {
    sender.euid == 0
        || [sender.uid, sender.euid]
            .iter()
            .any(|id| *id == target.uid || *id == target.euid)
}

pub fn kill(pid: usize, sig: usize) -> Result<usize> {
    if sig != 0 && !signal::valid(sig) {
        return Err(Error::new(EINVAL));
    }
    if pid == 0 || pid as isize <= 0 {
        // Process groups are not supported.
        return Err(Error::new(EINVAL));
    }
    let target = context::get(pid).ok_or(Error::new(ESRCH))?;
    let (target_creds, exited) = {
        let t = target.lock();
        (t.creds, matches!(t.state, context::State::Exited(_)))
    };
    if exited || pid == 0 {
        return Err(Error::new(ESRCH));
    }
    if !may_signal(creds(), target_creds) {
        return Err(Error::new(EPERM));
    }
    if sig != 0 {
        signal::send(pid, sig);
    }
    Ok(0)
}

/// `SigAction` as redox_syscall lays it out: handler, mask (two words),
/// flags.
const SIGACTION_SIZE: usize = 32;

/// Word `i` of a record copied in (`EFAULT` if it is short).
fn word(bytes: &[u8], i: usize) -> Result<u64> {
    le_u64(bytes, i).ok_or(Error::new(EFAULT))
}

pub fn sigaction(sig: usize, act: usize, oldact: usize, restorer: usize) -> Result<usize> {
    if !signal::valid(sig) {
        return Err(Error::new(EINVAL));
    }
    if act != 0 && (sig == SIGKILL || sig == SIGSTOP) {
        return Err(Error::new(EINVAL));
    }
    let new = if act != 0 {
        let raw = copy_in(act, SIGACTION_SIZE)?;
        // The kernel returns to these addresses: they must be user ones.
        if word(&raw, 0)? >= USER_END || restorer as u64 >= USER_END {
            return Err(Error::new(EFAULT));
        }
        Some(Action {
            handler: word(&raw, 0)? as usize,
            mask: word(&raw, 1)? & !UNBLOCKABLE,
            flags: word(&raw, 3)? as usize,
            restorer,
        })
    } else {
        None
    };
    if oldact != 0 {
        check_writable(oldact, SIGACTION_SIZE)?;
    }
    let actions = context::current().lock().actions.clone();
    let old = {
        let mut table = actions.lock();
        // `sig` was checked to be a valid signal above.
        let slot = table.0.get_mut(sig).ok_or(Error::new(EINVAL))?;
        let old = *slot;
        if let Some(new) = new {
            *slot = new;
        }
        old
    };
    if oldact != 0 {
        let mut raw = [0u8; SIGACTION_SIZE];
        raw[0..8].copy_from_slice(&(old.handler as u64).to_le_bytes());
        raw[8..16].copy_from_slice(&old.mask.to_le_bytes());
        raw[24..32].copy_from_slice(&(old.flags as u64).to_le_bytes());
        copy_out(oldact, &raw)?;
    }
    Ok(0)
}

pub fn sigprocmask(how: usize, set: usize, oldset: usize) -> Result<usize> {
    let new = if set != 0 { Some(read_u64(set)?) } else { None };
    if oldset != 0 {
        check_writable(oldset, 16)?;
    }
    let ctx = context::current();
    let old = {
        let mut c = ctx.lock();
        let old = c.signals.mask;
        if let Some(set) = new {
            let set = set & !UNBLOCKABLE;
            c.signals.mask = match how {
                SIG_BLOCK => old | set,
                SIG_UNBLOCK => old & !set,
                SIG_SETMASK => set,
                _ => return Err(Error::new(EINVAL)),
            };
        }
        old
    };
    if oldset != 0 {
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&old.to_le_bytes());
        copy_out(oldset, &raw)?;
    }
    Ok(0)
}

fn write_timespec(addr: usize, ns: u64) -> Result<()> {
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&((ns / 1_000_000_000) as i64).to_le_bytes());
    raw[8..12].copy_from_slice(&((ns % 1_000_000_000) as i32).to_le_bytes());
    copy_out(addr, &raw)
}

pub fn nanosleep(req: usize, rem: usize) -> Result<usize> {
    let duration = read_duration_ns(req)?;
    if rem != 0 {
        check_writable(rem, 16)?;
    }
    let deadline = crate::time::monotonic_ns().saturating_add(duration);
    loop {
        let now = crate::time::monotonic_ns();
        if now >= deadline {
            return Ok(0);
        }
        if signal::current_has_pending() {
            if rem != 0 {
                write_timespec(rem, deadline - now)?;
            }
            return Err(Error::new(EINTR));
        }
        {
            let ctx = context::current();
            ctx.lock().wake_at = Some(deadline);
        }
        crate::sched::mark_current_blocked();
        crate::sched::switch_away();
        context::current().lock().wake_at = None;
    }
}

/// `CLOCK_MONOTONIC` counts from boot; `CLOCK_REALTIME` too (there is no
/// real-time clock source), so both give the same value.
pub fn clock_gettime(clock: usize, tp: usize) -> Result<usize> {
    if clock != CLOCK_MONOTONIC && clock != CLOCK_REALTIME {
        return Err(Error::new(EINVAL));
    }
    write_timespec(tp, crate::time::monotonic_ns())?;
    Ok(0)
}
