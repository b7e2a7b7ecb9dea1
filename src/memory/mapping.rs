//! Memory mappings: the list of regions of one address space (a `BTreeMap`
//! from start address to region), and the operations `fmap`, `funmap` and
//! `mprotect` perform on it and on the page tables together. The list owns
//! the frames of `MAP_SHARED` regions (`SharedFrames`, shared by `fork`
//! and freed when the last region using them goes); every other frame is
//! owned by the page tables (`memory::paging`). It is also what
//! `proc:<pid>/maps` shows.
//!
//! Every operation either completes or fails with nothing changed: frames
//! and page tables are taken first (fallibly, released on failure), and
//! the heap the list may need is admitted by the caller.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;

use bitflags::bitflags;
use syscall::error::*;

use super::frame::{self, Frame};
use super::paging::{AddressSpace, UserAccess};
use super::PAGE_SIZE;

/// Lowest address a mapping may start at (the null page stays unmapped).
pub const MAP_MIN: u64 = PAGE_SIZE;
/// End of the area mappings may use: the top of the initial stack.
pub const MAP_END: u64 = crate::process::STACK_TOP;
/// Where the search for a free range starts when no usable hint is given.
pub const MAP_SEARCH_BASE: u64 = 0x0000_0010_0000_0000;
/// Most regions one address space may have (`sys:limits` `map_count`).
pub const MAX_REGIONS: usize = 1024;
/// Most bytes one address space may have mapped, image and stack included
/// (`sys:limits` `map_bytes`).
pub const MAX_MAPPED_BYTES: u64 = 1 << 30;
/// Kernel heap one region costs at most (its share of a B-tree node and of
/// a name): what `fork` admits per region, and `fmap` for a new one.
pub const HEAP_PER_REGION: usize = 256;

bitflags! {
    /// What a region allows. On x86 a page that allows anything can be
    /// read, so `WRITE` or `EXEC` always comes with `READ`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Prot: u8 {
        const READ = 1;
        const WRITE = 2;
        const EXEC = 4;
    }
}

impl Prot {
    /// The page access, `None` being `PROT_NONE`.
    pub fn access(self) -> Option<UserAccess> {
        if self.is_empty() {
            return None;
        }
        let mut access = UserAccess::empty();
        if self.contains(Prot::WRITE) {
            access |= UserAccess::WRITE;
        }
        if self.contains(Prot::EXEC) {
            access |= UserAccess::EXEC;
        }
        Some(access)
    }

    fn of_access(access: UserAccess) -> Prot {
        let mut prot = Prot::READ;
        if access.contains(UserAccess::WRITE) {
            prot |= Prot::WRITE;
        }
        if access.contains(UserAccess::EXEC) {
            prot |= Prot::EXEC;
        }
        prot
    }
}

/// The frames of a `MAP_SHARED` anonymous mapping: every region that maps
/// part of it holds an `Arc`; the last one to go frees them.
pub struct SharedFrames {
    frames: Vec<Frame>,
}

impl Drop for SharedFrames {
    fn drop(&mut self) {
        for &frame in &self.frames {
            // SAFETY: the page tables never free shared frames, and the last
            // region (hence the last leaf, removed before its region) is gone.
            unsafe { frame::free(frame) };
        }
    }
}

/// What a region maps.
#[derive(Clone)]
pub enum What {
    /// A program image segment, by the path it was loaded from.
    Image(Arc<str>),
    /// The initial stack.
    Stack,
    /// Private anonymous memory.
    Anon,
    /// Shared anonymous memory; the region's `offset` is its byte offset in
    /// the frames, which the region keeps alive (never read: held).
    Shared(#[allow(dead_code)] Arc<SharedFrames>),
    /// A copy of a file (private, or shared and never writable: the files
    /// that can be mapped cannot change).
    File { path: Arc<str>, shared: bool },
}

/// One region `[start, end)`; its start is its key in `Mappings`.
#[derive(Clone)]
pub struct Region {
    pub end: u64,
    pub prot: Prot,
    /// File offset of the start (images, files) or offset in the shared
    /// frames; 0 otherwise.
    pub offset: u64,
    pub what: What,
}

impl Region {
    /// The region's part from `at` on (`at` inside it).
    fn tail(&self, start: u64, at: u64) -> Region {
        let mut tail = self.clone();
        if !matches!(self.what, What::Anon | What::Stack) {
            tail.offset += at - start;
        }
        tail
    }
}

/// The regions of one address space, by start address, never overlapping.
#[derive(Default)]
pub struct Mappings {
    regions: BTreeMap<u64, Region>,
    bytes: u64,
}

impl Mappings {
    pub const fn new() -> Mappings {
        Mappings {
            regions: BTreeMap::new(),
            bytes: 0,
        }
    }

    /// A copy for `fork` (shared regions keep their frames), or `None`
    /// when the heap cannot hold it.
    pub fn try_clone(&self) -> Option<Mappings> {
        crate::memory::heap::admit(self.regions.len() * HEAP_PER_REGION).ok()?;
        Some(Mappings {
            regions: self.regions.clone(),
            bytes: self.bytes,
        })
    }

    fn len(&self) -> usize {
        self.regions.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &Region)> {
        self.regions.iter().map(|(&start, r)| (start, r))
    }

    fn insert(&mut self, start: u64, region: Region) {
        self.bytes += region.end - start;
        self.regions.insert(start, region);
    }

    fn remove(&mut self, start: u64) -> Option<Region> {
        let region = self.regions.remove(&start)?;
        self.bytes -= region.end - start;
        Some(region)
    }

    /// Whether any region overlaps `[start, end)`.
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.regions
            .range(..end)
            .next_back()
            .is_some_and(|(_, r)| r.end > start)
    }

    /// Splits the region containing `at` (if `at` is strictly inside one)
    /// into two at `at`.
    fn split_at(&mut self, at: u64) {
        let Some((&start, region)) = self.regions.range(..at).next_back() else {
            return;
        };
        if region.end <= at {
            return;
        }
        let tail = region.tail(start, at);
        if let Some(r) = self.regions.get_mut(&start) {
            r.end = at;
        }
        self.regions.insert(at, tail);
    }

    /// How many regions `[start, end)` would be split into more (0 to 2).
    fn splits(&self, start: u64, end: u64) -> usize {
        let inside = |at: u64| {
            self.regions
                .range(..at)
                .next_back()
                .is_some_and(|(&s, r)| s < at && r.end > at)
        };
        usize::from(inside(start)) + usize::from(inside(end))
    }

    /// The start of the first region at or after `from` and before `end`.
    fn next_start(&self, from: u64, end: u64) -> Option<u64> {
        self.regions.range(from..end).next().map(|(&s, _)| s)
    }

    /// Whether `[start, end)` is covered by regions without a hole.
    fn covers(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        if let Some((_, r)) = self.regions.range(..=start).next_back() {
            if r.end > start {
                at = r.end;
            }
        }
        if at == start && !self.regions.contains_key(&start) {
            return false;
        }
        for (&s, r) in self.regions.range(start..end) {
            if s > at {
                return false;
            }
            at = at.max(r.end);
        }
        at >= end
    }

    /// A free range of `len` bytes: `hint` if it is free, else the lowest
    /// one from `MAP_SEARCH_BASE` up (then from `MAP_MIN`).
    fn find_free(&self, hint: u64, len: u64) -> Option<u64> {
        let fits = |start: u64| {
            start >= MAP_MIN
                && start
                    .checked_add(len)
                    .is_some_and(|end| end <= MAP_END && !self.overlaps(start, end))
        };
        if hint != 0 && fits(hint) {
            return Some(hint);
        }
        for base in [MAP_SEARCH_BASE, MAP_MIN] {
            let mut at = base;
            if let Some((_, r)) = self.regions.range(..=at).next_back() {
                at = at.max(r.end);
            }
            for (&s, r) in self.regions.range(at..) {
                if s >= at.checked_add(len)? {
                    break;
                }
                at = at.max(r.end);
            }
            if fits(at) {
                return Some(at);
            }
        }
        None
    }

    /// One text line per region: `start-end perms offset what`.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for (start, r) in self.iter() {
            let flag = |p: Prot, c: char| if r.prot.contains(p) { c } else { '-' };
            let what: &str = match &r.what {
                What::Image(path) | What::File { path, .. } => path,
                What::Stack => "[stack]",
                What::Anon => "[anon]",
                What::Shared(_) => "[anon shared]",
            };
            let _ = writeln!(
                text,
                "{:016x}-{:016x} {}{}{} {:08x} {}",
                start,
                r.end,
                flag(Prot::READ, 'r'),
                flag(Prot::WRITE, 'w'),
                flag(Prot::EXEC, 'x'),
                r.offset,
                what
            );
        }
        text
    }

    /// The kernel heap `render` needs at most.
    pub fn render_size(&self) -> usize {
        self.regions
            .values()
            .map(|r| match &r.what {
                What::Image(p) | What::File { path: p, .. } => 48 + p.len(),
                _ => 64,
            })
            .sum()
    }
}

/// Where a new mapping's contents come from.
pub enum Source<'a> {
    /// Zeros.
    Anon,
    /// A file's bytes from `offset` on (zeros past its end).
    File {
        data: &'a [u8],
        offset: u64,
        path: Arc<str>,
    },
}

/// An `fmap` request, already checked for form (aligned, non-empty, known
/// flags, not writable and executable).
pub struct MapRequest<'a> {
    /// Hint (or the address with `fixed`); 0 for none.
    pub addr: u64,
    /// Bytes, a multiple of the page size.
    pub len: u64,
    pub prot: Prot,
    pub shared: bool,
    pub fixed: bool,
    pub noreplace: bool,
    pub source: Source<'a>,
}

/// Fills `frame` with the file bytes for page `index` of the mapping.
fn fill(frame: Frame, source: &Source, index: u64) {
    frame.zero();
    if let Source::File { data, offset, .. } = source {
        let from = offset.saturating_add(index * PAGE_SIZE);
        if from < data.len() as u64 {
            let from = from as usize;
            let n = (data.len() - from).min(PAGE_SIZE as usize);
            // SAFETY: the frame is ours (not mapped yet) and direct-mapped;
            // `n` is at most a page.
            unsafe { core::ptr::copy_nonoverlapping(data[from..].as_ptr(), frame.as_ptr(), n) };
        }
    }
}

fn free_all(frames: &[Frame]) {
    for &frame in frames {
        // SAFETY: the frames were taken by the caller and never mapped.
        unsafe { frame::free(frame) };
    }
}

/// `fmap`: maps `req` into `space`; returns the address.
pub fn map(space: &mut AddressSpace, req: MapRequest) -> Result<u64> {
    let pages = req.len / PAGE_SIZE;
    let mappings = &space.mappings;
    let start = if req.fixed {
        let end = req.addr.checked_add(req.len).ok_or(Error::new(EINVAL))?;
        if req.addr < MAP_MIN || end > MAP_END {
            return Err(Error::new(EINVAL));
        }
        if req.noreplace && mappings.overlaps(req.addr, end) {
            return Err(Error::new(EEXIST));
        }
        req.addr
    } else {
        mappings
            .find_free(req.addr, req.len)
            .ok_or(Error::new(ENOMEM))?
    };
    let end = start + req.len;
    if mappings.len() + 1 + mappings.splits(start, end) > MAX_REGIONS
        || mappings.bytes + req.len > MAX_MAPPED_BYTES
    {
        return Err(Error::new(ENOMEM));
    }
    // The frames, all before anything changes.
    let mut frames: Vec<Frame> = Vec::new();
    frames
        .try_reserve_exact(pages as usize)
        .map_err(|_| Error::new(ENOMEM))?;
    for index in 0..pages {
        let Some(frame) = frame::alloc() else {
            free_all(&frames);
            return Err(Error::new(ENOMEM));
        };
        fill(frame, &req.source, index);
        frames.push(frame);
    }
    // The page tables, so that mapping the pages cannot fail.
    let mut va = start;
    while va < end {
        if space.ensure_tables(va).is_err() {
            free_all(&frames);
            space.prune_tables();
            return Err(Error::new(ENOMEM));
        }
        va += PAGE_SIZE;
    }
    // Nothing can fail from here on: replace what was there (MAP_FIXED).
    unmap_range(space, start, end, false);
    let access = req.prot.access();
    for (i, &frame) in frames.iter().enumerate() {
        let va = start + i as u64 * PAGE_SIZE;
        // The tables exist and the range is empty, so this succeeds.
        if space.map_page(va, frame, access, req.shared).is_err() {
            crate::debug!("fmap: page {:#x} refused after its tables were made", va);
            if !req.shared {
                // SAFETY: the frame was not mapped; shared frames are freed
                // with their region instead.
                unsafe { frame::free(frame) };
            }
        }
    }
    let (what, offset) = match req.source {
        Source::File { path, offset, .. } => (
            What::File {
                path,
                shared: req.shared,
            },
            offset,
        ),
        Source::Anon if req.shared => (What::Shared(Arc::new(SharedFrames { frames })), 0),
        Source::Anon => (What::Anon, 0),
    };
    space.mappings.insert(
        start,
        Region {
            end,
            prot: req.prot,
            offset,
            what,
        },
    );
    space.prune_tables();
    Ok(start)
}

/// Removes every region (and its pages) inside `[start, end)`, splitting
/// the regions that cross either end, and frees the page tables left empty
/// if `prune`.
fn unmap_range(space: &mut AddressSpace, start: u64, end: u64, prune: bool) {
    if !space.mappings.overlaps(start, end) {
        return;
    }
    space.mappings.split_at(start);
    space.mappings.split_at(end);
    while let Some(s) = space.mappings.next_start(start, end) {
        let Some(region) = space.mappings.remove(s) else {
            break;
        };
        let mut va = s;
        while va < region.end {
            // A page may be missing (a hole the image left): nothing to do.
            let _ = space.unmap(va);
            va += PAGE_SIZE;
        }
        // Dropping the region after its pages frees shared frames last.
        drop(region);
    }
    if prune {
        space.prune_tables();
    }
}

/// `funmap`: removes `[start, start + len)`; parts not mapped are fine.
pub fn unmap(space: &mut AddressSpace, start: u64, len: u64) -> Result<()> {
    let end = start.checked_add(len).ok_or(Error::new(EINVAL))?;
    if space.mappings.len() + space.mappings.splits(start, end) > MAX_REGIONS + 1 {
        return Err(Error::new(ENOMEM));
    }
    unmap_range(space, start, end, true);
    Ok(())
}

/// The old `funmap`: removes the whole region that starts at `start`.
pub fn unmap_region_at(space: &mut AddressSpace, start: u64) -> Result<()> {
    let end = space
        .mappings
        .regions
        .get(&start)
        .map(|r| r.end)
        .ok_or(Error::new(EINVAL))?;
    unmap_range(space, start, end, true);
    Ok(())
}

/// `mprotect`: gives `[start, start + len)`, which must be mapped without
/// a hole (`ENOMEM` otherwise), the protection `prot`.
pub fn protect(space: &mut AddressSpace, start: u64, len: u64, prot: Prot) -> Result<()> {
    let end = start.checked_add(len).ok_or(Error::new(EINVAL))?;
    if !space.mappings.covers(start, end) {
        return Err(Error::new(ENOMEM));
    }
    if prot.contains(Prot::WRITE)
        && space
            .mappings
            .regions
            .range(..end)
            .rev()
            .take_while(|(_, r)| r.end > start)
            .any(|(_, r)| matches!(r.what, What::File { shared: true, .. }))
    {
        return Err(Error::new(EACCES));
    }
    if space.mappings.len() + space.mappings.splits(start, end) > MAX_REGIONS {
        return Err(Error::new(ENOMEM));
    }
    space.mappings.split_at(start);
    space.mappings.split_at(end);
    let access = prot.access();
    let mut from = start;
    while let Some(s) = space.mappings.next_start(from, end) {
        let Some(region) = space.mappings.regions.get_mut(&s) else {
            break;
        };
        region.prot = prot;
        let region_end = region.end;
        from = region_end;
        let mut va = s;
        while va < region_end {
            let _ = space.set_access(va, access);
            va += PAGE_SIZE;
        }
    }
    Ok(())
}

/// Records the regions of a freshly loaded program: every run of pages
/// with one access becomes an image region named `path` (with its file
/// offset from `image`'s program headers), and `[stack_bottom, stack_top)`
/// the stack.
pub fn record_image(
    space: &mut AddressSpace,
    path: &str,
    image: &[u8],
    stack_bottom: u64,
    stack_top: u64,
) -> Result<()> {
    let path: Arc<str> = Arc::from(path);
    let mut runs: Vec<(u64, u64, UserAccess)> = Vec::new();
    let mut failed = false;
    space.for_each_page(|va, t| {
        if va >= stack_bottom && va < stack_top {
            return;
        }
        match runs.last_mut() {
            Some((_, end, access)) if *end == va && *access == t.access => *end += PAGE_SIZE,
            _ => {
                if runs.try_reserve(1).is_err() {
                    failed = true;
                    return;
                }
                runs.push((va, va + PAGE_SIZE, t.access));
            }
        }
    });
    if failed {
        return Err(Error::new(ENOMEM));
    }
    for (start, end, access) in runs {
        space.mappings.insert(
            start,
            Region {
                end,
                prot: Prot::of_access(access),
                offset: file_offset(image, start),
                what: What::Image(path.clone()),
            },
        );
    }
    space.mappings.insert(
        stack_bottom,
        Region {
            end: stack_top,
            prot: Prot::READ | Prot::WRITE,
            offset: 0,
            what: What::Stack,
        },
    );
    Ok(())
}

/// The file offset of the page at `va` in `image`'s `PT_LOAD` segments.
fn file_offset(image: &[u8], va: u64) -> u64 {
    use elf::endian::LittleEndian;
    use elf::ElfBytes;
    let Ok(file) = ElfBytes::<LittleEndian>::minimal_parse(image) else {
        return 0;
    };
    let Some(segments) = file.segments() else {
        return 0;
    };
    segments
        .iter()
        .filter(|ph| ph.p_type == elf::abi::PT_LOAD)
        .find(|ph| {
            let first = ph.p_vaddr & !(PAGE_SIZE - 1);
            va >= first && va < ph.p_vaddr.saturating_add(ph.p_memsz)
        })
        .map(|ph| (ph.p_offset & !(PAGE_SIZE - 1)) + (va - (ph.p_vaddr & !(PAGE_SIZE - 1))))
        .unwrap_or(0)
}
