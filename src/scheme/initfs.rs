//! `file:`: the read-only init filesystem built into the kernel image. It
//! holds every user program as `/bin/<name>` (see `build.rs`).

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;

use syscall::data::Stat;
use syscall::error::*;
use syscall::flag::{EventFlags, O_ACCMODE, O_CREAT, O_RDONLY};

use super::misc::{read_at, seek_in};
use super::{fill_stat, Caller, Handle, Scheme, MODE_FILE};

mod files {
    include!(concat!(env!("OUT_DIR"), "/initfs.rs"));
}

pub struct InitFs;

impl Scheme for InitFs {
    fn open(&self, path: &str, flags: usize, _caller: Caller) -> Result<Arc<dyn Handle>> {
        let wanted = path.trim_start_matches('/');
        let Some(&(name, data)) = files::FILES.iter().find(|(p, _)| *p == wanted) else {
            return Err(Error::new(if flags & O_CREAT != 0 {
                EROFS
            } else {
                ENOENT
            }));
        };
        if flags & O_ACCMODE != O_RDONLY && flags & O_ACCMODE != 0 {
            return Err(Error::new(EROFS));
        }
        Ok(Arc::new(InitFile { name, data }))
    }
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
}
