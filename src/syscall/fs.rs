//! Descriptor and path calls: open, close, read, write, lseek, dup, dup2,
//! fcntl, fpath, fstat, pipe2; the file-system calls (ftruncate, fsync,
//! fstatvfs, fchmod, fchown, futimens, frename, link, unlink, rmdir); and
//! the per-process working directory and mask (chdir, getcwd, umask), with
//! relative paths resolved against the working directory.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use syscall::data::{Stat, StatVfs};
use syscall::error::*;
use syscall::flag::*;

use super::usermem::{self, check_writable, copy_in, copy_out, read_str, MAX_TRANSFER};
use crate::context;
use crate::context::{Creds, Pid};
use crate::scheme::{self, tmpfs, Caller, Description, Route};

/// Heap a call that makes a descriptor may allocate: the object, its
/// description and the table's growth (paths are admitted as they are
/// copied in).
const NEW_FD_HEAP: usize = 4096;

fn files() -> crate::context::FilesRef {
    context::current().lock().files.clone()
}

fn description(fd: usize) -> Result<Arc<Description>> {
    files().lock().get(fd)
}

/// The caller's working directory and umask (shared with `CLONE_FS`
/// siblings).
fn fs_state() -> context::FsRef {
    context::current().lock().fs.clone()
}

/// The caller's pid and credentials.
fn caller() -> Caller {
    let ctx = context::current();
    let c = ctx.lock();
    Caller {
        pid: c.pid,
        creds: c.creds,
    }
}

/// Longest canonical path.
const MAX_PATH: usize = 4096;

/// `path` made canonical: a `file:` path (with or without the scheme)
/// becomes absolute against the working directory, with `.` and `..`
/// resolved; other schemes' paths are left as they are. `ENOENT` for an
/// empty path, `ENAMETOOLONG` past 4096 bytes.
pub fn canonical(path: &str) -> Result<String> {
    if path.is_empty() {
        return Err(Error::new(ENOENT));
    }
    // The copies below: the path, the working directory, their join.
    crate::memory::heap::admit(4 * MAX_PATH)?;
    let out = match path.split_once(':') {
        Some(("file", rest)) => format!("file:{}", tmpfs::normalize(rest)),
        Some(_) => String::from(path),
        None => {
            let cwd = fs_state().lock().cwd.clone();
            let (scheme, base) = cwd.split_once(':').unwrap_or(("file", &cwd));
            if path.starts_with('/') {
                format!("{scheme}:{}", tmpfs::normalize(path))
            } else {
                format!("{scheme}:{}", tmpfs::normalize(&format!("{base}/{path}")))
            }
        }
    };
    if out.len() > MAX_PATH {
        return Err(Error::new(ENAMETOOLONG));
    }
    Ok(out)
}

/// A path argument, canonical.
fn path_arg(addr: usize, len: usize) -> Result<String> {
    canonical(&read_str(addr, len)?)
}

pub fn open(path: usize, len: usize, flags: usize) -> Result<usize> {
    let path = path_arg(path, len)?;
    let (pid, creds) = {
        let ctx = context::current();
        let c = ctx.lock();
        (c.pid, c.creds)
    };
    let umask = fs_state().lock().umask;
    // The mode of a new node (the low bits) loses the mask's bits.
    let flags = if flags & O_CREAT != 0 {
        flags & !(umask as usize & 0o777)
    } else {
        flags
    };
    let table = files();
    if !table.lock().has_room() {
        return Err(Error::new(EMFILE));
    }
    crate::memory::heap::admit(NEW_FD_HEAP)?;
    let description = scheme::open(&path, flags, creds, pid)?;
    let fd = table.lock().insert(description, flags & O_CLOEXEC != 0);
    fd
}

pub fn close(fd: usize) -> Result<usize> {
    let description = files().lock().remove(fd)?;
    // The object closes when its last description goes, outside the lock.
    drop(description);
    Ok(0)
}

pub fn read(fd: usize, buf: usize, len: usize) -> Result<usize> {
    let d = description(fd)?;
    if !d.readable() {
        return Err(Error::new(EBADF));
    }
    let len = len.min(MAX_TRANSFER);
    check_writable(buf, len)?;
    let mut data = super::usermem::buffer(len)?;
    let mut pos = *d.pos.lock();
    let n = d.handle.read(&mut data, &mut pos, d.nonblocking())?;
    *d.pos.lock() = pos;
    copy_out(buf, data.get(..n).ok_or(Error::new(EIO))?)?;
    Ok(n)
}

pub fn write(fd: usize, buf: usize, len: usize) -> Result<usize> {
    let d = description(fd)?;
    if !d.writable() {
        return Err(Error::new(EBADF));
    }
    let data = copy_in(buf, len.min(MAX_TRANSFER))?;
    let mut pos = *d.pos.lock();
    let n = if d.flags.load(core::sync::atomic::Ordering::Relaxed) & O_APPEND != 0 {
        d.handle.append(&data, &mut pos, d.nonblocking())?
    } else {
        d.handle.write(&data, &mut pos, d.nonblocking())?
    };
    *d.pos.lock() = pos;
    Ok(n)
}

pub fn lseek(fd: usize, offset: isize, whence: usize) -> Result<usize> {
    let d = description(fd)?;
    let mut pos = d.pos.lock();
    let new = d.handle.seek(*pos, offset, whence)?;
    *pos = new;
    Ok(new as usize)
}

pub fn dup(fd: usize, buf: usize, len: usize) -> Result<usize> {
    let d = description(fd)?;
    let table = files();
    if !table.lock().has_room() {
        return Err(Error::new(EMFILE));
    }
    crate::memory::heap::admit(NEW_FD_HEAP)?;
    let new = related(&d, buf, len)?;
    let fd = table.lock().insert(new, false);
    fd
}

/// `dup`'s description: the same one for an empty `buf`, else a related
/// handle the object opens (`proc:` siblings).
fn related(d: &Arc<Description>, buf: usize, len: usize) -> Result<Arc<Description>> {
    if len == 0 {
        return Ok(d.clone());
    }
    let name = copy_in(buf, len.min(4096))?;
    let (pid, creds) = {
        let ctx = context::current();
        let c = ctx.lock();
        (c.pid, c.creds)
    };
    let flags = d.flags.load(core::sync::atomic::Ordering::Relaxed);
    let handle = d.handle.dup(&name, flags, scheme::Caller { pid, creds })?;
    Ok(Description::new(handle, flags))
}

pub fn dup2(fd: usize, newfd: usize, buf: usize, len: usize) -> Result<usize> {
    let d = description(fd)?;
    if fd == newfd && len == 0 {
        return Ok(newfd);
    }
    if newfd >= crate::scheme::MAX_FILES {
        return Err(Error::new(EBADF));
    }
    crate::memory::heap::admit(NEW_FD_HEAP)?;
    let new = related(&d, buf, len)?;
    let old = files().lock().insert_at(newfd, new, false)?;
    drop(old);
    Ok(newfd)
}

pub fn fcntl(fd: usize, cmd: usize, arg: usize) -> Result<usize> {
    let table = files();
    let d = table.lock().get(fd)?;
    match cmd {
        F_DUPFD => {
            crate::memory::heap::admit(NEW_FD_HEAP)?;
            let mut t = table.lock();
            for candidate in arg..crate::scheme::MAX_FILES {
                if t.get(candidate).is_err() {
                    t.insert_at(candidate, d, false)?;
                    return Ok(candidate);
                }
            }
            Err(Error::new(EMFILE))
        }
        F_GETFD => Ok(table.lock().cloexec(fd)? as usize),
        F_SETFD => {
            table.lock().set_cloexec(fd, arg & 1 != 0)?;
            Ok(0)
        }
        F_GETFL => Ok(d.flags.load(core::sync::atomic::Ordering::Relaxed)),
        F_SETFL => {
            let changeable = O_NONBLOCK | O_APPEND;
            let flags = &d.flags;
            let old = flags.load(core::sync::atomic::Ordering::Relaxed);
            flags.store(
                (old & !changeable) | (arg & changeable),
                core::sync::atomic::Ordering::Relaxed,
            );
            Ok(0)
        }
        _ => Err(Error::new(EINVAL)),
    }
}

pub fn fpath(fd: usize, buf: usize, len: usize) -> Result<usize> {
    let d = description(fd)?;
    let path = d.handle.path();
    let n = path.len().min(len);
    copy_out(buf, path.as_bytes().get(..n).ok_or(Error::new(EIO))?)?;
    Ok(n)
}

pub fn fstat(fd: usize, buf: usize, len: usize) -> Result<usize> {
    let d = description(fd)?;
    if len < core::mem::size_of::<Stat>() {
        return Err(Error::new(EINVAL));
    }
    let mut stat = Stat::default();
    d.handle.stat(&mut stat)?;
    copy_out(buf, &stat)?;
    Ok(0)
}

pub fn pipe2(fds: usize, flags: usize) -> Result<usize> {
    if flags & !(O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Error::new(EINVAL));
    }
    check_writable(fds, 16)?;
    crate::memory::heap::admit(NEW_FD_HEAP)?;
    let (uid, table) = {
        let ctx = context::current();
        let c = ctx.lock();
        (c.creds.uid, c.files.clone())
    };
    {
        // Both ends or neither: check for two free slots first.
        let t = table.lock();
        if t.free_slots() < 2 {
            return Err(Error::new(EMFILE));
        }
    }
    let (read_end, write_end) = scheme::pipe::new_pipe(uid);
    let nonblock = flags & O_NONBLOCK;
    let r = Description::new(read_end, O_RDONLY | nonblock);
    let w = Description::new(write_end, O_WRONLY | nonblock);
    let cloexec = flags & O_CLOEXEC != 0;
    let mut t = table.lock();
    let rfd = t.insert(r, cloexec)?;
    let wfd = match t.insert(w, cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = t.remove(rfd);
            return Err(e);
        }
    };
    drop(t);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&(rfd as u64).to_le_bytes());
    out[8..].copy_from_slice(&(wfd as u64).to_le_bytes());
    copy_out(fds, &out)?;
    Ok(0)
}

/// `ftruncate(fd, len)`: `EBADF` unless open for writing.
pub fn ftruncate(fd: usize, len: usize) -> Result<usize> {
    let d = description(fd)?;
    if !d.writable() {
        return Err(Error::new(EBADF));
    }
    if len > isize::MAX as usize {
        return Err(Error::new(EINVAL));
    }
    d.handle.truncate(len as u64)?;
    Ok(0)
}

pub fn fsync(fd: usize) -> Result<usize> {
    description(fd)?.handle.sync()?;
    Ok(0)
}

pub fn fstatvfs(fd: usize, buf: usize, len: usize) -> Result<usize> {
    let d = description(fd)?;
    if len < core::mem::size_of::<StatVfs>() {
        return Err(Error::new(EINVAL));
    }
    check_writable(buf, core::mem::size_of::<StatVfs>())?;
    let mut st = StatVfs::default();
    d.handle.statvfs(&mut st)?;
    copy_out(buf, &st)?;
    Ok(0)
}

pub fn fchmod(fd: usize, mode: usize) -> Result<usize> {
    let d = description(fd)?;
    if mode > 0o7777 {
        return Err(Error::new(EINVAL));
    }
    d.handle.chmod(mode as u16, caller())?;
    Ok(0)
}

/// `fchown(fd, uid, gid)`; `u32::MAX` (`-1`) leaves an id as it is.
pub fn fchown(fd: usize, uid: usize, gid: usize) -> Result<usize> {
    let d = description(fd)?;
    let uid = u32::try_from(uid).map_err(|_| Error::new(EINVAL))?;
    let gid = u32::try_from(gid).map_err(|_| Error::new(EINVAL))?;
    d.handle.chown(uid, gid, caller())?;
    Ok(0)
}

/// `futimens(fd, times, bytes)`: 0, 1 or 2 `TimeSpec`s (access, then
/// modification time; none: both now).
pub fn futimens(fd: usize, buf: usize, len: usize) -> Result<usize> {
    const SPEC: usize = usermem::TIMESPEC_SIZE;
    let d = description(fd)?;
    if !len.is_multiple_of(SPEC) || len > 2 * SPEC {
        return Err(Error::new(EINVAL));
    }
    let raw = copy_in(buf, len)?;
    let times = raw
        .chunks_exact(SPEC)
        .map(usermem::parse_timespec)
        .collect::<Result<Vec<_>>>()?;
    d.handle.utimens(&times, caller())?;
    Ok(0)
}

/// `frename(fd, path)`: moves the object `fd` names to `path`.
pub fn frename(fd: usize, path: usize, len: usize) -> Result<usize> {
    let d = description(fd)?;
    let to = path_arg(path, len)?;
    d.handle.rename(&to, caller())?;
    Ok(0)
}

/// `unlink(path)`: `EROFS` in `file:` outside `/tmp`, `ENOENT` for other
/// schemes (a Redox scheme without `unlink`).
pub fn unlink(path: usize, len: usize) -> Result<usize> {
    let path = path_arg(path, len)?;
    match scheme::route(&path)? {
        Route::Tmp(sub) => tmpfs::unlink(&sub, &caller().creds)?,
        Route::InitFs(_) => return Err(Error::new(EROFS)),
        Route::Other(..) => return Err(Error::new(ENOENT)),
    }
    Ok(0)
}

/// `chmod(path, mode)` (deprecated in redox_syscall for `fchmod`): as
/// `fchmod` on the node `path` names; `EROFS` in `file:` outside `/tmp`,
/// `ENOENT` for other schemes.
pub fn chmod(path: usize, len: usize, mode: usize) -> Result<usize> {
    let path = path_arg(path, len)?;
    if mode > 0o7777 {
        return Err(Error::new(EINVAL));
    }
    crate::memory::heap::admit(NEW_FD_HEAP)?;
    let caller = caller();
    match scheme::route(&path)? {
        Route::Tmp(sub) => {
            use crate::scheme::Scheme;
            let handle = tmpfs::TmpFs.open(&sub, O_STAT, caller)?;
            handle.chmod(mode as u16, caller)?;
        }
        Route::InitFs(_) => return Err(Error::new(EROFS)),
        Route::Other(..) => return Err(Error::new(ENOENT)),
    }
    Ok(0)
}

/// `rmdir(path)`: as `unlink`.
pub fn rmdir(path: usize, len: usize) -> Result<usize> {
    let path = path_arg(path, len)?;
    match scheme::route(&path)? {
        Route::Tmp(sub) => tmpfs::rmdir(&sub, &caller().creds)?,
        Route::InitFs(_) => return Err(Error::new(EROFS)),
        Route::Other(..) => return Err(Error::new(ENOENT)),
    }
    Ok(0)
}

/// `link(old, old_len, new, new_len)` (the `SYS_ARG_PATH` convention: each
/// path a pointer and a length): a new name for a file. `EXDEV` across
/// file systems, `EROFS` for two names outside `/tmp`.
pub fn link(old: usize, old_len: usize, new: usize, new_len: usize) -> Result<usize> {
    let old = path_arg(old, old_len)?;
    let new = path_arg(new, new_len)?;
    match (scheme::route(&old)?, scheme::route(&new)?) {
        (Route::Tmp(old), Route::Tmp(new)) => tmpfs::link(&old, &new, &caller().creds)?,
        (Route::InitFs(_), Route::InitFs(_)) => return Err(Error::new(EROFS)),
        _ => return Err(Error::new(EXDEV)),
    }
    Ok(0)
}

/// `chdir(path)`: the working directory becomes `path` if it is a
/// directory the caller may search.
pub fn chdir(path: usize, len: usize) -> Result<usize> {
    let path = path_arg(path, len)?;
    let Caller { pid, creds } = caller();
    match scheme::route(&path)? {
        Route::Tmp(sub) => tmpfs::check_dir(&sub, &creds)?,
        _ => check_other_dir(&path, creds, pid)?,
    }
    fs_state().lock().cwd = path;
    Ok(0)
}

/// A directory outside `/tmp`: opens as one and says so in `fstat`.
fn check_other_dir(path: &str, creds: Creds, pid: Pid) -> Result<()> {
    let d = scheme::open(path, O_RDONLY | O_DIRECTORY, creds, pid)?;
    let mut stat = Stat::default();
    d.handle.stat(&mut stat)?;
    if stat.st_mode & MODE_TYPE != MODE_DIR {
        return Err(Error::new(ENOTDIR));
    }
    Ok(())
}

/// `getcwd(buf)`: copies as much of the working directory as fits and
/// returns the count (Redox's kernel: a result equal to the buffer's
/// length may be cut short).
pub fn getcwd(buf: usize, len: usize) -> Result<usize> {
    let cwd = fs_state().lock().cwd.clone();
    let bytes = cwd.as_bytes();
    let shown = bytes.get(..len).unwrap_or(bytes);
    copy_out(buf, shown)?;
    Ok(shown.len())
}

/// `umask(mask)`: sets the mask (`0o777` bits), returns the old one.
pub fn umask(mask: usize) -> Result<usize> {
    let fs = fs_state();
    let mut f = fs.lock();
    let old = f.umask;
    f.umask = (mask & 0o777) as u16;
    Ok(old as usize)
}
