//! Small schemes: `null:` (reads end at once, writes vanish), `zero:`
//! (reads give zeros) and `sys:` (kernel counters: `sys:memory`, and the
//! resource limits in force: `sys:limits`).

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;

use syscall::data::Stat;
use syscall::error::*;
use syscall::flag::EventFlags;

use super::{fill_stat, Caller, Handle, Scheme, MODE_CHR, MODE_FILE};

pub struct NullScheme;
pub struct ZeroScheme;
pub struct SysScheme;

struct Null;
struct Zero;

impl Scheme for NullScheme {
    fn open(&self, _path: &str, _flags: usize, _caller: Caller) -> Result<Arc<dyn Handle>> {
        Ok(Arc::new(Null))
    }
}

impl Scheme for ZeroScheme {
    fn open(&self, _path: &str, _flags: usize, _caller: Caller) -> Result<Arc<dyn Handle>> {
        Ok(Arc::new(Zero))
    }
}

impl Handle for Null {
    fn read(&self, _buf: &mut [u8], _pos: &mut u64, _nonblock: bool) -> Result<usize> {
        Ok(0)
    }
    fn write(&self, buf: &[u8], _pos: &mut u64, _nonblock: bool) -> Result<usize> {
        Ok(buf.len())
    }
    fn path(&self) -> String {
        String::from("null:")
    }
    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_CHR, 0);
        Ok(())
    }
    fn readiness(&self) -> EventFlags {
        EventFlags::EVENT_READ | EventFlags::EVENT_WRITE
    }
}

impl Handle for Zero {
    fn read(&self, buf: &mut [u8], _pos: &mut u64, _nonblock: bool) -> Result<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
    fn write(&self, buf: &[u8], _pos: &mut u64, _nonblock: bool) -> Result<usize> {
        Ok(buf.len())
    }
    fn path(&self) -> String {
        String::from("zero:")
    }
    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_CHR, 0);
        Ok(())
    }
    fn readiness(&self) -> EventFlags {
        EventFlags::EVENT_READ | EventFlags::EVENT_WRITE
    }
}

impl Scheme for SysScheme {
    fn open(&self, path: &str, _flags: usize, _caller: Caller) -> Result<Arc<dyn Handle>> {
        match path.trim_start_matches('/') {
            "memory" => Ok(Arc::new(TextFile {
                path: "sys:memory",
                render: memory_text,
            })),
            "limits" => Ok(Arc::new(TextFile {
                path: "sys:limits",
                render: limits_text,
            })),
            _ => Err(Error::new(ENOENT)),
        }
    }
}

/// Every limit of docs/design.md "Resource limits", one `key=value` a
/// line, and the caller's use of the per-user pipe limit.
fn limits_text() -> String {
    use crate::memory::heap;
    let uid = crate::context::current().lock().creds.uid;
    let (tmpfs_bytes_used, tmpfs_nodes_used) = super::tmpfs::usage();
    format!(
        "heap_size={}\nheap_reserve={}\nheap_free={}\nopen_files={}\n\
         pipe_capacity={}\npipe_bytes_per_user={}\npipe_bytes_used={}\n\
         event_per_queue={}\nevent_per_process={}\ncontexts={}\n\
         contexts_per_user={}\nnested_signals={}\nfexec_args={}\n\
         fexec_arg_bytes={}\ntransfer={}\ntmpfs_bytes={}\n\
         tmpfs_bytes_used={}\ntmpfs_nodes={}\ntmpfs_nodes_used={}\n\
         futex_waiters={}\nfutex_waiting={}\nmap_bytes={}\n\
         map_count={}\n",
        heap::size(),
        heap::reserve(),
        heap::free_bytes(),
        super::MAX_FILES,
        super::pipe::PIPE_CAPACITY,
        super::pipe::user_pipe_limit(),
        super::pipe::user_pipe_bytes(uid),
        super::event::MAX_PER_QUEUE,
        super::event::MAX_PER_PROCESS,
        crate::context::max_contexts(),
        crate::context::max_contexts_per_user(),
        crate::context::signal::MAX_NESTED,
        crate::process::MAX_ARGS,
        crate::process::MAX_ARG_BYTES,
        crate::syscall::usermem::MAX_TRANSFER,
        super::tmpfs::max_bytes(),
        tmpfs_bytes_used,
        super::tmpfs::MAX_NODES,
        tmpfs_nodes_used,
        crate::syscall::futex::max_waiters(),
        crate::syscall::futex::waiters(),
        crate::memory::mapping::MAX_MAPPED_BYTES,
        crate::memory::mapping::MAX_REGIONS,
    )
}

fn memory_text() -> String {
    format!(
        "frames_free={} heap_used={}\n",
        crate::memory::frame::free_count(),
        crate::memory::heap::used_bytes()
    )
}

/// A read-only text file whose content is rendered when read at offset 0
/// and then read through like a file.
struct TextFile {
    path: &'static str,
    render: fn() -> String,
}

impl Handle for TextFile {
    fn read(&self, buf: &mut [u8], pos: &mut u64, _nonblock: bool) -> Result<usize> {
        let text = (self.render)();
        Ok(read_at(text.as_bytes(), buf, pos))
    }
    fn seek(&self, pos: u64, offset: isize, whence: usize) -> Result<u64> {
        seek_in((self.render)().len() as u64, pos, offset, whence)
    }
    fn path(&self) -> String {
        String::from(self.path)
    }
    fn stat(&self, stat: &mut Stat) -> Result<()> {
        fill_stat(stat, MODE_FILE, (self.render)().len() as u64);
        Ok(())
    }
}

/// Copies from `data` at `*pos` into `buf`, advancing `*pos`.
pub fn read_at(data: &[u8], buf: &mut [u8], pos: &mut u64) -> usize {
    let start = (*pos).min(data.len() as u64) as usize;
    let rest = data.get(start..).unwrap_or_default();
    let mut n = 0;
    for (dst, &src) in buf.iter_mut().zip(rest) {
        *dst = src;
        n += 1;
    }
    *pos += n as u64;
    n
}

/// `lseek` arithmetic for an object of `size` bytes.
pub fn seek_in(size: u64, pos: u64, offset: isize, whence: usize) -> Result<u64> {
    let base = match whence {
        syscall::flag::SEEK_SET => 0i128,
        syscall::flag::SEEK_CUR => pos as i128,
        syscall::flag::SEEK_END => size as i128,
        _ => return Err(Error::new(EINVAL)),
    };
    let new = base + offset as i128;
    if new < 0 || new > i64::MAX as i128 {
        return Err(Error::new(EINVAL));
    }
    Ok(new as u64)
}
