//! Descriptor calls: open, close, read, write, lseek, dup, dup2, fcntl,
//! fpath, fstat, pipe2.

use alloc::sync::Arc;

use syscall::data::Stat;
use syscall::error::*;
use syscall::flag::*;

use super::usermem::{check_writable, copy_in, copy_out, read_str, MAX_TRANSFER};
use crate::context;
use crate::scheme::{self, Description};

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

pub fn open(path: usize, len: usize, flags: usize) -> Result<usize> {
    let path = read_str(path, len)?;
    let (pid, creds) = {
        let ctx = context::current();
        let c = ctx.lock();
        (c.pid, c.creds)
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
    let n = d.handle.write(&data, &mut pos, d.nonblocking())?;
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
