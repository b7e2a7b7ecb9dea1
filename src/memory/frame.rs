//! The physical frame allocator: a free list of 4 KiB frames threaded
//! through the frames themselves (via the direct map), with a counter of
//! free frames so tests can prove nothing leaks.

use core::sync::atomic::{AtomicUsize, Ordering};

use spin::Mutex;

use super::{phys_to_virt, DIRECT_MAP_SIZE, PAGE_SIZE};
use crate::boot_info::Region;

/// A 4 KiB physical frame, by its physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Frame(u64);

impl Frame {
    /// # Safety
    /// `paddr` must be a page-aligned physical address of RAM that the caller
    /// owns as a frame.
    pub const unsafe fn from_addr(paddr: u64) -> Frame {
        Frame(paddr)
    }

    pub fn addr(self) -> u64 {
        self.0
    }

    /// The frame's bytes through the direct map.
    pub fn as_ptr(self) -> *mut u8 {
        phys_to_virt(self.0) as *mut u8
    }

    pub fn zero(self) {
        // SAFETY: the frame is owned RAM mapped by the direct map.
        unsafe { core::ptr::write_bytes(self.as_ptr(), 0, PAGE_SIZE as usize) }
    }
}

struct FreeList {
    head: u64,
}

/// Physical address of the first free frame; 0 is the empty list (frame 0 is
/// never handed out).
static FREE_LIST: Mutex<FreeList> = Mutex::new(FreeList { head: 0 });
static FREE_FRAMES: AtomicUsize = AtomicUsize::new(0);

/// Adds every frame of `regions` not inside one of `reserved` (physical
/// ranges `[start, end)`) to the free list.
pub fn init(regions: &[Region], reserved: &[(u64, u64)]) {
    let mut list = FREE_LIST.lock();
    let mut count = 0;
    for r in regions {
        let start = (r.start + PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
        let end = r.end.min(DIRECT_MAP_SIZE) & !(PAGE_SIZE - 1);
        let mut addr = start;
        while addr < end {
            let taken = reserved
                .iter()
                .any(|&(rs, re)| addr + PAGE_SIZE > rs && addr < re);
            if !taken && addr != 0 {
                // SAFETY: `addr` is free RAM below 4 GiB (direct-mapped).
                unsafe { push(&mut list, addr) };
                count += 1;
            }
            addr += PAGE_SIZE;
        }
    }
    FREE_FRAMES.store(count, Ordering::Relaxed);
}

/// # Safety
/// `addr` must be a free, direct-mapped frame not already on the list.
unsafe fn push(list: &mut FreeList, addr: u64) {
    // SAFETY: the frame is free, so its first word is ours to use as a link.
    unsafe { *(phys_to_virt(addr) as *mut u64) = list.head };
    list.head = addr;
}

/// Takes a frame (contents undefined).
pub fn alloc() -> Option<Frame> {
    let mut list = FREE_LIST.lock();
    let addr = list.head;
    if addr == 0 {
        return None;
    }
    // SAFETY: `addr` is on the free list, so its first word is the link.
    list.head = unsafe { *(phys_to_virt(addr) as *const u64) };
    FREE_FRAMES.fetch_sub(1, Ordering::Relaxed);
    Some(Frame(addr))
}

/// Takes a frame filled with zeros.
pub fn alloc_zeroed() -> Option<Frame> {
    let frame = alloc()?;
    frame.zero();
    Some(frame)
}

/// Returns a frame to the free list.
///
/// # Safety
/// Nothing may use `frame` afterwards (no mapping, no pointer to it).
pub unsafe fn free(frame: Frame) {
    let mut list = FREE_LIST.lock();
    // SAFETY: the caller gives the frame up; it came from `alloc`.
    unsafe { push(&mut list, frame.0) };
    FREE_FRAMES.fetch_add(1, Ordering::Relaxed);
}

pub fn free_count() -> usize {
    FREE_FRAMES.load(Ordering::Relaxed)
}
