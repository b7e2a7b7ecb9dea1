//! The memory-mapping calls: `fmap` (and the old `fmap` without an
//! address), `funmap` (and the old whole-region `funmap`), `mprotect`.
//! They check the request's form here (`EINVAL` for what is malformed,
//! `EPERM` for writable and executable at once) and leave the rest to
//! `memory::mapping`.

use alloc::sync::Arc;
use core::mem::size_of;

use syscall::data::{Map, OldMap};
use syscall::error::*;
use syscall::flag::MapFlags;

use super::usermem;
use crate::context;
use crate::memory::mapping::{self, MapRequest, Prot, Source, HEAP_PER_REGION};
use crate::memory::PAGE_SIZE;

/// The descriptor Redox passes for anonymous memory.
const ANONYMOUS: usize = !0;
/// Heap admitted for every call: new regions (a split or two) and B-tree
/// nodes (`fmap` adds its frame list).
const CALL_HEAP: usize = 4096;

fn space() -> Result<context::SpaceRef> {
    context::current()
        .lock()
        .space
        .clone()
        .ok_or(Error::new(EFAULT))
}

/// The protection in `flags`: `EPERM` for write and execute together. Any
/// access implies read on x86.
fn prot_of(flags: MapFlags) -> Result<Prot> {
    let w = flags.contains(MapFlags::PROT_WRITE);
    let x = flags.contains(MapFlags::PROT_EXEC);
    if w && x {
        return Err(Error::new(EPERM));
    }
    let mut prot = Prot::empty();
    if flags.contains(MapFlags::PROT_READ) || w || x {
        prot |= Prot::READ;
    }
    if w {
        prot |= Prot::WRITE;
    }
    if x {
        prot |= Prot::EXEC;
    }
    Ok(prot)
}

/// `len` rounded up to whole pages: `EINVAL` for 0 or past the address
/// space.
fn page_len(len: usize) -> Result<u64> {
    if len == 0 {
        return Err(Error::new(EINVAL));
    }
    let len = (len as u64)
        .checked_add(PAGE_SIZE - 1)
        .ok_or(Error::new(EINVAL))?
        & !(PAGE_SIZE - 1);
    if len > mapping::MAP_END {
        return Err(Error::new(EINVAL));
    }
    Ok(len)
}

fn aligned(addr: usize) -> Result<u64> {
    if !(addr as u64).is_multiple_of(PAGE_SIZE) {
        return Err(Error::new(EINVAL));
    }
    Ok(addr as u64)
}

/// `fmap(fd, &Map, size_of::<Map>())`.
pub fn fmap(fd: usize, map_ptr: usize, map_len: usize) -> Result<usize> {
    if map_len != size_of::<Map>() {
        return Err(Error::new(EINVAL));
    }
    let bytes = usermem::copy_in(map_ptr, map_len)?;
    // The length was checked above, so every word is there.
    let word = |i: usize| usermem::le_u64(&bytes, i).unwrap_or(0) as usize;
    // `Map` is offset, size, flags, address: four words.
    do_fmap(fd, word(0), word(1), word(2), word(3))
}

/// The old `fmap(fd, &OldMap, size_of::<OldMap>())`: no address, so the
/// kernel chooses one (`MAP_FIXED` is `EINVAL`).
pub fn fmap_old(fd: usize, map_ptr: usize, map_len: usize) -> Result<usize> {
    if map_len != size_of::<OldMap>() {
        return Err(Error::new(EINVAL));
    }
    let bytes = usermem::copy_in(map_ptr, map_len)?;
    // The length was checked above, so every word is there.
    let word = |i: usize| usermem::le_u64(&bytes, i).unwrap_or(0) as usize;
    if word(2) & MapFlags::MAP_FIXED.bits() != 0 {
        return Err(Error::new(EINVAL));
    }
    do_fmap(fd, word(0), word(1), word(2), 0)
}

fn do_fmap(fd: usize, offset: usize, size: usize, flags: usize, address: usize) -> Result<usize> {
    let flags = MapFlags::from_bits(flags).ok_or(Error::new(EINVAL))?;
    let shared = flags.contains(MapFlags::MAP_SHARED);
    if shared == flags.contains(MapFlags::MAP_PRIVATE) {
        return Err(Error::new(EINVAL));
    }
    let prot = prot_of(flags)?;
    let len = page_len(size)?;
    let addr = aligned(address)?;
    let offset = aligned(offset)?;
    offset.checked_add(len).ok_or(Error::new(EINVAL))?;
    let fixed = flags.contains(MapFlags::MAP_FIXED);
    let noreplace = flags.contains(MapFlags::MAP_FIXED_NOREPLACE);
    if fixed && addr == 0 {
        return Err(Error::new(EINVAL));
    }
    let mut heap = CALL_HEAP;
    let source_file = if fd == ANONYMOUS {
        if offset != 0 {
            return Err(Error::new(EINVAL));
        }
        None
    } else {
        let description = context::current().lock().files.lock().get(fd)?;
        if !description.readable() {
            return Err(Error::new(EACCES));
        }
        let data = description.handle.image().map_err(|_| Error::new(ENODEV))?;
        // A shared mapping of a file that cannot change is a copy that
        // must stay read-only.
        if shared && prot.contains(Prot::WRITE) {
            return Err(Error::new(EACCES));
        }
        let path = description.handle.path();
        heap += path.len() + HEAP_PER_REGION;
        Some((data, path))
    };
    // The list of the new frames (kept as the shared memory's frame list
    // for `MAP_SHARED` anonymous memory).
    heap += (len / PAGE_SIZE) as usize * size_of::<u64>();
    crate::memory::heap::admit(heap)?;
    let source = match &source_file {
        None => Source::Anon,
        Some((data, path)) => {
            let path = path.strip_prefix("file:").unwrap_or(path);
            Source::File {
                data,
                offset,
                path: Arc::from(path),
            }
        }
    };
    let space = space()?;
    let mut space = space.lock();
    let start = mapping::map(
        &mut space,
        MapRequest {
            addr,
            len,
            prot,
            shared,
            fixed,
            noreplace,
            source,
        },
    )?;
    Ok(start as usize)
}

/// `funmap(addr, len)`.
pub fn funmap(addr: usize, len: usize) -> Result<usize> {
    let addr = aligned(addr)?;
    let len = page_len(len)?;
    if addr
        .checked_add(len)
        .is_none_or(|end| end > mapping::MAP_END)
    {
        return Err(Error::new(EINVAL));
    }
    crate::memory::heap::admit(CALL_HEAP)?;
    let space = space()?;
    mapping::unmap(&mut space.lock(), addr, len)?;
    Ok(0)
}

/// The old `funmap(addr)`: the whole region starting at `addr`.
pub fn funmap_old(addr: usize) -> Result<usize> {
    let addr = aligned(addr)?;
    let space = space()?;
    mapping::unmap_region_at(&mut space.lock(), addr)?;
    Ok(0)
}

/// `mprotect(addr, len, flags)`: only `PROT_*` bits.
pub fn mprotect(addr: usize, len: usize, flags: usize) -> Result<usize> {
    let flags = MapFlags::from_bits(flags).ok_or(Error::new(EINVAL))?;
    let prot_bits = MapFlags::PROT_READ | MapFlags::PROT_WRITE | MapFlags::PROT_EXEC;
    if !prot_bits.contains(flags) {
        return Err(Error::new(EINVAL));
    }
    let prot = prot_of(flags)?;
    let addr = aligned(addr)?;
    let len = page_len(len)?;
    if addr
        .checked_add(len)
        .is_none_or(|end| end > mapping::MAP_END)
    {
        return Err(Error::new(EINVAL));
    }
    crate::memory::heap::admit(CALL_HEAP)?;
    let space = space()?;
    mapping::protect(&mut space.lock(), addr, len, prot)?;
    Ok(0)
}
