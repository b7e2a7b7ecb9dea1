//! `file:`: the read-only init filesystem built into the kernel image. It
//! holds every user program as `/bin/<name>` (see `build.rs`); its
//! directories (`/`, `/bin`) list their entries. Every change is `EROFS`
//! (`/tmp`, where the writable `tmpfs` is mounted, is routed away before).

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use syscall::data::{Stat, StatVfs};
use syscall::error::*;
use syscall::flag::{EventFlags, O_ACCMODE, O_CREAT, O_DIRECTORY, O_RDONLY};

use super::misc::{read_at, seek_in};
use super::{fill_stat, Caller, Handle, Scheme, MODE_DIR, MODE_FILE};

mod files {
    include!(concat!(env!("OUT_DIR"), "/initfs.rs"));
}

pub struct InitFs;

impl Scheme for InitFs {
    fn open(&self, path: &str, flags: usize, _caller: Caller) -> Result<Arc<dyn Handle>> {
        let wanted = path.trim_matches('/');
        let writing = flags & O_ACCMODE != O_RDONLY && flags & O_ACCMODE != 0;
        if let Some(listing) = directory(wanted)? {
            if writing {
                return Err(Error::new(EISDIR));
            }
            return Ok(Arc::new(InitDir {
                path: format!("file:/{}", wanted),
                listing,
            }));
        }
        let Some(&(name, data)) = files::FILES.iter().find(|(p, _)| *p == wanted) else {
            return Err(Error::new(if flags & O_CREAT != 0 {
                EROFS
            } else {
                ENOENT
            }));
        };
        if flags & O_DIRECTORY != 0 {
            return Err(Error::new(ENOTDIR));
        }
        if writing {
            return Err(Error::new(EROFS));
        }
        Ok(Arc::new(InitFile { name, data }))
    }
}

/// The listing of directory `dir` (`""` for the root, which also shows
/// the `tmp` mount), or None if no file is below it.
fn directory(dir: &str) -> Result<Option<String>> {
    let mut names: Vec<&str> = Vec::new();
    for (path, _) in files::FILES {
        let below = if dir.is_empty() {
            Some(*path)
        } else {
            path.strip_prefix(dir).and_then(|p| p.strip_prefix('/'))
        };
        if let Some(rest) = below {
            let name = rest.split('/').next().unwrap_or(rest);
            if !names.contains(&name) {
                names.try_reserve(1).map_err(|_| Error::new(ENOMEM))?;
                names.push(name);
            }
        }
    }
    if names.is_empty() && !dir.is_empty() {
        return Ok(None);
    }
    if dir.is_empty() {
        names.push("tmp");
    }
    names.sort_unstable();
    Ok(Some(names.join("\n")))
}

/// A directory of the init filesystem, its listing taken at open.
struct InitDir {
    path: String,
    listing: String,
}

impl Handle for InitDir {
    fn read(&self, buf: &mut [u8], pos: &mut u64, _nonblock: bool) -> Result<usize> {
        Ok(read_at(self.listing.as_bytes(), buf, pos))
    }
    fn seek(&self, pos: u64, offset: isize, whence: usize) -> Result<u64> {
        seek_in(self.listing.len() as u64, pos, offset, whence)
    }
    fn path(&self) -> String {
        self.path.clone()
    }
    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_DIR, self.listing.len() as u64);
        Ok(())
    }
    fn truncate(&self, _len: u64) -> Result<()> {
        Err(Error::new(EISDIR))
    }
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    fn statvfs(&self, st: &mut StatVfs) -> Result<()> {
        read_only_statvfs(st);
        Ok(())
    }
    fn chmod(&self, _mode: u16, _caller: Caller) -> Result<()> {
        Err(Error::new(EROFS))
    }
    fn chown(&self, _uid: u32, _gid: u32, _caller: Caller) -> Result<()> {
        Err(Error::new(EROFS))
    }
    fn utimens(&self, _times: &[(u64, u32)], _caller: Caller) -> Result<()> {
        Err(Error::new(EROFS))
    }
    fn rename(&self, _to: &str, _caller: Caller) -> Result<()> {
        Err(Error::new(EROFS))
    }
}

/// `fstatvfs` of the init filesystem: its size, nothing free.
fn read_only_statvfs(st: &mut StatVfs) {
    let total: usize = files::FILES.iter().map(|(_, d)| d.len()).sum();
    *st = StatVfs {
        f_bsize: 4096,
        f_blocks: total.div_ceil(4096) as u64,
        f_bfree: 0,
        f_bavail: 0,
    };
}

struct InitFile {
    name: &'static str,
    data: &'static [u8],
}

impl Handle for InitFile {
    fn read(&self, buf: &mut [u8], pos: &mut u64, _nonblock: bool) -> Result<usize> {
        Ok(read_at(self.data, buf, pos))
    }

    fn seek(&self, pos: u64, offset: isize, whence: usize) -> Result<u64> {
        seek_in(self.data.len() as u64, pos, offset, whence)
    }

    fn path(&self) -> String {
        format!("file:/{}", self.name)
    }

    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_FILE, self.data.len() as u64);
        Ok(())
    }

    fn readiness(&self) -> EventFlags {
        EventFlags::EVENT_READ
    }

    fn image(&self) -> Result<Cow<'static, [u8]>> {
        Ok(Cow::Borrowed(self.data))
    }

    fn truncate(&self, _len: u64) -> Result<()> {
        Err(Error::new(EROFS))
    }
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    fn statvfs(&self, st: &mut StatVfs) -> Result<()> {
        read_only_statvfs(st);
        Ok(())
    }
    fn chmod(&self, _mode: u16, _caller: Caller) -> Result<()> {
        Err(Error::new(EROFS))
    }
    fn chown(&self, _uid: u32, _gid: u32, _caller: Caller) -> Result<()> {
        Err(Error::new(EROFS))
    }
    fn utimens(&self, _times: &[(u64, u32)], _caller: Caller) -> Result<()> {
        Err(Error::new(EROFS))
    }
    fn rename(&self, _to: &str, _caller: Caller) -> Result<()> {
        Err(Error::new(EROFS))
    }
}
