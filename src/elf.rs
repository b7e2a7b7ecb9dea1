//! Loading static ELF executables into a fresh address space. Every header
//! field that could make the loader misbehave is checked first: a malformed
//! image is `ENOEXEC`, never a panic. W^X: no user page is ever writable
//! and executable at once, so an image that would need one (a segment
//! both writable and executable, or a writable and an executable segment
//! sharing a page) is refused too.

use elf::abi::{EM_X86_64, ET_EXEC, PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use elf::ElfBytes;

use crate::memory::paging::{AddressSpace, MapError, UserAccess, USER_END};
use crate::memory::PAGE_SIZE;

#[derive(Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Not a loadable x86_64 static executable.
    Malformed,
    /// It would need a page both writable and executable.
    WritableAndExecutable,
    OutOfMemory,
}

impl From<MapError> for LoadError {
    fn from(e: MapError) -> Self {
        match e {
            MapError::OutOfMemory => LoadError::OutOfMemory,
            _ => LoadError::Malformed,
        }
    }
}

/// Lowest address a segment may use (page 0 stays unmapped).
const MIN_ADDR: u64 = PAGE_SIZE;
/// Largest segment a program may ask for (its pages are all mapped at
/// load time).
const MAX_SEGMENT: u64 = 64 << 20;
/// Segments must lie below the stack area.
const MAX_ADDR: u64 = USER_END - (1 << 32);

/// Maps the image's `PT_LOAD` segments into `space`; returns the entry
/// point.
pub fn load(image: &[u8], space: &mut AddressSpace) -> Result<u64, LoadError> {
    let file = ElfBytes::<LittleEndian>::minimal_parse(image).map_err(|_| LoadError::Malformed)?;
    let header = &file.ehdr;
    if header.class != elf::file::Class::ELF64
        || header.e_machine != EM_X86_64
        || header.e_type != ET_EXEC
    {
        return Err(LoadError::Malformed);
    }
    let segments = file.segments().ok_or(LoadError::Malformed)?;
    let mut loaded = 0;
    let mut entry_mapped = false;
    for ph in segments.iter().filter(|ph| ph.p_type == PT_LOAD) {
        if ph.p_memsz == 0 {
            continue;
        }
        let end = ph
            .p_vaddr
            .checked_add(ph.p_memsz)
            .ok_or(LoadError::Malformed)?;
        let file_end = ph
            .p_offset
            .checked_add(ph.p_filesz)
            .ok_or(LoadError::Malformed)?;
        if ph.p_filesz > ph.p_memsz
            || ph.p_memsz > MAX_SEGMENT
            || ph.p_vaddr < MIN_ADDR
            || end > MAX_ADDR
            || file_end > image.len() as u64
            || (ph.p_align > 1 && ph.p_vaddr % PAGE_SIZE != ph.p_offset % PAGE_SIZE)
        {
            return Err(LoadError::Malformed);
        }
        let access = segment_access(ph.p_flags)?;
        let first = ph.p_vaddr & !(PAGE_SIZE - 1);
        let mut page = first;
        while page < end {
            match space.translate(page) {
                // A page shared with the previous segment gets both
                // accesses, unless that would make it writable and
                // executable.
                Some(t) => space.protect(page, page_access(t.access | access)?)?,
                None => {
                    space.map_zeroed(page, access)?;
                }
            }
            page += PAGE_SIZE;
        }
        let data = &image[ph.p_offset as usize..file_end as usize];
        if space.write(ph.p_vaddr, data, true) != data.len() {
            return Err(LoadError::Malformed);
        }
        if (ph.p_vaddr..end).contains(&header.e_entry) && ph.p_flags & PF_X != 0 {
            entry_mapped = true;
        }
        loaded += 1;
    }
    if loaded == 0 || !entry_mapped {
        return Err(LoadError::Malformed);
    }
    Ok(header.e_entry)
}

/// The user access a `PT_LOAD` segment's flags ask for.
fn segment_access(p_flags: u32) -> Result<UserAccess, LoadError> {
    let mut access = UserAccess::empty();
    if p_flags & PF_W != 0 {
        access |= UserAccess::WRITE;
    }
    if p_flags & PF_X != 0 {
        access |= UserAccess::EXEC;
    }
    page_access(access)
}

/// `access` if a page may have it: never writable and executable at once.
fn page_access(access: UserAccess) -> Result<UserAccess, LoadError> {
    if access.contains(UserAccess::WRITE | UserAccess::EXEC) {
        Err(LoadError::WritableAndExecutable)
    } else {
        Ok(access)
    }
}
