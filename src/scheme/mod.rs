//! Schemes (the `name:` namespaces: `debug:`, `serial2:`, `file:`, `pipe:`, `event:`,
//! `null:`, `zero:`, `proc:`, `sys:`; `file:/tmp` is the writable `tmpfs`
//! mounted inside `file:`), open file descriptions and the
//! per-process descriptor table. Every scheme implements `Scheme::open`,
//! which returns a `Handle`; the descriptor table maps descriptor numbers to
//! shared descriptions (a handle plus its status flags).

// User input flows through here: no unwrap, no unchecked indexing
// (each exception is a local `#[allow]` with its reason).
#![warn(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod debug;
pub mod event;
pub mod initfs;
pub mod misc;
pub mod pipe;
pub mod proc;
pub mod tmpfs;

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use syscall::data::{Stat, StatVfs};
use syscall::error::*;
use syscall::flag::{EventFlags, O_ACCMODE, O_APPEND, O_NONBLOCK};

use crate::context::{Creds, Pid};

/// Most descriptors one process may have open.
pub const MAX_FILES: usize = 1024;

/// Who is opening something (for permission checks).
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    pub pid: Pid,
    pub creds: Creds,
}

/// A namespace that can open handles.
pub trait Scheme: Sync {
    /// Opens `path` (the part after `name:`). `flags` carries the access mode
    /// and `O_*` flags.
    fn open(&self, path: &str, flags: usize, caller: Caller) -> Result<Arc<dyn Handle>>;
}

/// An open object. Operations that do not apply fail with the errno a Unix
/// kernel would give.
pub trait Handle: Send + Sync {
    /// Reads at the description's offset `*pos` (advanced by the handle for
    /// seekable objects); may block unless `nonblock`.
    fn read(&self, _buf: &mut [u8], _pos: &mut u64, _nonblock: bool) -> Result<usize> {
        Err(Error::new(EBADF))
    }
    fn write(&self, _buf: &[u8], _pos: &mut u64, _nonblock: bool) -> Result<usize> {
        Err(Error::new(EBADF))
    }
    /// `write` through a description with `O_APPEND`: files write at their
    /// end (and leave `*pos` after it); other objects as `write`.
    fn append(&self, buf: &[u8], pos: &mut u64, nonblock: bool) -> Result<usize> {
        self.write(buf, pos, nonblock)
    }
    /// The new offset for `lseek`, given the current one.
    fn seek(&self, _pos: u64, _offset: isize, _whence: usize) -> Result<u64> {
        Err(Error::new(ESPIPE))
    }
    /// `scheme:path` of the object.
    fn path(&self) -> String;
    fn stat(&self, stat: &mut Stat) -> Result<()>;
    /// `dup(fd, buf)` with a non-empty `buf`: a related handle.
    fn dup(&self, _buf: &[u8], _flags: usize, _caller: Caller) -> Result<Arc<dyn Handle>> {
        Err(Error::new(EINVAL))
    }
    /// Which of `EVENT_READ`/`EVENT_WRITE` would not block now.
    fn readiness(&self) -> EventFlags {
        EventFlags::empty()
    }
    /// Whether this is an `event:` queue (queues cannot watch queues: that
    /// would let a queue poll itself).
    fn is_event_queue(&self) -> bool {
        false
    }
    /// The whole file, for `fexec` (borrowed when it lives in the kernel
    /// image).
    fn image(&self) -> Result<Cow<'static, [u8]>> {
        Err(Error::new(ENOEXEC))
    }
    /// `ftruncate` (the description is open for writing). Objects that
    /// are not files: `EBADF`, as a Redox scheme without it answers.
    fn truncate(&self, _len: u64) -> Result<()> {
        Err(Error::new(EBADF))
    }
    /// `fsync`.
    fn sync(&self) -> Result<()> {
        Err(Error::new(EBADF))
    }
    /// `fstatvfs`.
    fn statvfs(&self, _st: &mut StatVfs) -> Result<()> {
        Err(Error::new(EBADF))
    }
    /// `fchmod` (`mode`: the permission bits).
    fn chmod(&self, _mode: u16, _caller: Caller) -> Result<()> {
        Err(Error::new(EBADF))
    }
    /// `fchown` (`u32::MAX`: leave as it is).
    fn chown(&self, _uid: u32, _gid: u32, _caller: Caller) -> Result<()> {
        Err(Error::new(EBADF))
    }
    /// `futimens` with 0 (now), 1 (access) or 2 (access, modification)
    /// times as (seconds, nanoseconds).
    fn utimens(&self, _times: &[(u64, u32)], _caller: Caller) -> Result<()> {
        Err(Error::new(EBADF))
    }
    /// `frename` to `to`, a canonical `scheme:path`.
    fn rename(&self, _to: &str, _caller: Caller) -> Result<()> {
        Err(Error::new(EBADF))
    }
}

/// An open file description: shared by `dup`, `fork` and `CLONE_FILES`.
pub struct Description {
    pub handle: Arc<dyn Handle>,
    /// `O_ACCMODE`, `O_NONBLOCK` and `O_APPEND` bits.
    pub flags: AtomicUsize,
    pub pos: crate::sync::Mutex<u64, { crate::sync::class::OFFSET }>,
}

impl Description {
    pub fn new(handle: Arc<dyn Handle>, flags: usize) -> Arc<Description> {
        Arc::new(Description {
            handle,
            flags: AtomicUsize::new(flags & (O_ACCMODE | O_NONBLOCK | O_APPEND)),
            pos: crate::sync::Mutex::new(0),
        })
    }

    pub fn nonblocking(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & O_NONBLOCK != 0
    }

    pub fn readable(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & syscall::flag::O_RDONLY != 0
    }

    pub fn writable(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & syscall::flag::O_WRONLY != 0
    }
}

#[derive(Clone)]
struct Slot {
    description: Arc<Description>,
    cloexec: bool,
}

/// A process's descriptor table. Its slot vector grows fallibly (`ENOMEM`)
/// up to `MAX_FILES` (`EMFILE`).
#[derive(Default)]
pub struct FileTable {
    slots: Vec<Option<Slot>>,
    /// `event:` registrations this process made that still exist (each
    /// registration holds a clone and gives its count back when dropped).
    event_registrations: Arc<AtomicUsize>,
}

impl FileTable {
    pub fn new() -> FileTable {
        FileTable::default()
    }

    /// A copy of the table (fork): the same descriptions, its own count of
    /// `event:` registrations. `ENOMEM` instead of a failed allocation.
    pub fn try_clone(&self) -> Result<FileTable> {
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(self.slots.len())
            .map_err(|_| Error::new(ENOMEM))?;
        slots.extend(self.slots.iter().cloned());
        Ok(FileTable {
            slots,
            event_registrations: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The counter of `event:` registrations this table's process holds.
    pub fn event_registrations(&self) -> Arc<AtomicUsize> {
        self.event_registrations.clone()
    }

    pub fn get(&self, fd: usize) -> Result<Arc<Description>> {
        self.slots
            .get(fd)
            .and_then(|s| s.as_ref())
            .map(|s| s.description.clone())
            .ok_or(Error::new(EBADF))
    }

    /// Whether `insert` would find a slot (checked before opening, so a
    /// failed `open` has no side effects).
    pub fn has_room(&self) -> bool {
        self.slots.len() < MAX_FILES || self.slots.iter().any(|s| s.is_none())
    }

    /// How many more descriptors `insert` would accept.
    pub fn free_slots(&self) -> usize {
        let empty = self.slots.iter().filter(|s| s.is_none()).count();
        empty + MAX_FILES.saturating_sub(self.slots.len())
    }

    /// Puts `description` in the lowest free slot.
    pub fn insert(&mut self, description: Arc<Description>, cloexec: bool) -> Result<usize> {
        let slot = Some(Slot {
            description,
            cloexec,
        });
        if let Some((fd, free)) = self.slots.iter_mut().enumerate().find(|(_, s)| s.is_none()) {
            *free = slot;
            return Ok(fd);
        }
        if self.slots.len() >= MAX_FILES {
            return Err(Error::new(EMFILE));
        }
        self.slots.try_reserve(1).map_err(|_| Error::new(ENOMEM))?;
        self.slots.push(slot);
        Ok(self.slots.len() - 1)
    }

    /// Puts `description` at `fd`, returning what was there.
    pub fn insert_at(
        &mut self,
        fd: usize,
        description: Arc<Description>,
        cloexec: bool,
    ) -> Result<Option<Arc<Description>>> {
        if fd >= MAX_FILES {
            return Err(Error::new(EBADF));
        }
        if self.slots.len() <= fd {
            self.slots
                .try_reserve(fd + 1 - self.slots.len())
                .map_err(|_| Error::new(ENOMEM))?;
            self.slots.resize(fd + 1, None);
        }
        let old = self
            .slots
            .get_mut(fd)
            .ok_or(Error::new(EBADF))?
            .replace(Slot {
                description,
                cloexec,
            });
        Ok(old.map(|s| s.description))
    }

    pub fn remove(&mut self, fd: usize) -> Result<Arc<Description>> {
        let slot = self
            .slots
            .get_mut(fd)
            .and_then(|s| s.take())
            .ok_or(Error::new(EBADF))?;
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        Ok(slot.description)
    }

    pub fn cloexec(&self, fd: usize) -> Result<bool> {
        self.slots
            .get(fd)
            .and_then(|s| s.as_ref())
            .map(|s| s.cloexec)
            .ok_or(Error::new(EBADF))
    }

    pub fn set_cloexec(&mut self, fd: usize, cloexec: bool) -> Result<()> {
        let slot = self
            .slots
            .get_mut(fd)
            .and_then(|s| s.as_mut())
            .ok_or(Error::new(EBADF))?;
        slot.cloexec = cloexec;
        Ok(())
    }

    /// The table `fexec` leaves: the same descriptions minus `O_CLOEXEC`
    /// ones (and the same process, so the same registration count).
    pub fn without_cloexec(&self) -> Result<FileTable> {
        let mut table = self.try_clone()?;
        table.event_registrations = self.event_registrations.clone();
        for slot in table.slots.iter_mut() {
            if slot.as_ref().is_some_and(|s| s.cloexec) {
                *slot = None;
            }
        }
        while matches!(table.slots.last(), Some(None)) {
            table.slots.pop();
        }
        Ok(table)
    }
}

/// What a blocking read or write that found nothing to do checks before it
/// sleeps: `EAGAIN` for a non-blocking description, `EINTR` when a signal
/// is waiting. `Ok` means: go to sleep, then look again.
pub fn may_block(nonblock: bool) -> Result<()> {
    if nonblock {
        return Err(Error::new(EAGAIN));
    }
    if crate::context::signal::current_has_pending() {
        return Err(Error::new(EINTR));
    }
    Ok(())
}

fn scheme_named(name: &str) -> Option<&'static dyn Scheme> {
    Some(match name {
        "debug" => &debug::DebugScheme,
        "serial2" => &debug::Serial2Scheme,
        "file" => &initfs::InitFs,
        "pipe" => &pipe::PipeScheme,
        "event" => &event::EventScheme,
        "null" => &misc::NullScheme,
        "zero" => &misc::ZeroScheme,
        "sys" => &misc::SysScheme,
        "proc" => &proc::ProcScheme,
        _ => return None,
    })
}

/// Where a path leads.
pub enum Route {
    /// Inside the `tmpfs` mount: the path below it (`""` for its root,
    /// `"a/b"` below).
    Tmp(String),
    /// `file:` outside the mount (the read-only init filesystem): the
    /// normalised absolute path.
    InitFs(String),
    /// Another scheme and the rest of the path, as given.
    Other(&'static dyn Scheme, String),
}

/// Splits `path` (`scheme:rest`; no scheme means `file:`) and routes
/// `file:` paths (normalised: `.` and `..` resolved) to the mount they are
/// in.
pub fn route(path: &str) -> Result<Route> {
    let (scheme, rest) = match path.split_once(':') {
        Some((scheme, rest)) => (scheme, rest),
        None => ("file", path),
    };
    if scheme == "file" {
        let normal = tmpfs::normalize(rest);
        return Ok(match tmpfs::inside(&normal) {
            Some(sub) => Route::Tmp(String::from(sub)),
            None => Route::InitFs(normal),
        });
    }
    let scheme = scheme_named(scheme).ok_or(Error::new(ENOENT))?;
    Ok(Route::Other(scheme, String::from(rest)))
}

/// Opens `path` (`scheme:rest`; no scheme means `file:`).
pub fn open(path: &str, flags: usize, creds: Creds, pid: Pid) -> Result<Arc<Description>> {
    let caller = Caller { pid, creds };
    let handle = match route(path)? {
        Route::Tmp(sub) => tmpfs::TmpFs.open(&sub, flags, caller)?,
        Route::InitFs(path) => initfs::InitFs.open(&path, flags, caller)?,
        Route::Other(scheme, rest) => scheme.open(&rest, flags, caller)?,
    };
    Ok(Description::new(handle, flags))
}

/// A `Stat` with the given mode and size, everything else zero.
pub fn fill_stat(stat: &mut Stat, mode: u16, size: u64) {
    *stat = Stat::default();
    stat.st_mode = mode;
    stat.st_size = size;
    stat.st_blksize = 4096;
    stat.st_nlink = 1;
}

pub const MODE_CHR: u16 = 0o020000 | 0o666;
pub const MODE_FIFO: u16 = 0o010000 | 0o600;
pub const MODE_FILE: u16 = 0o100000 | 0o555;
pub const MODE_DIR: u16 = 0o040000 | 0o555;
