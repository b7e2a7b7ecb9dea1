//! Kernel stacks: each lives in its own slot of a reserved kernel region
//! (PML4 slot 510) with an unmapped guard page below it, so an overflow
//! faults (a double fault, reported on its own IST stack) instead of
//! silently overwriting the heap. Stacks are made of frames, not heap; the
//! list of free slots is reserved up front so freeing never allocates. The
//! page tables of the region stay once made (at most one per 56 slots).

use alloc::vec::Vec;

use spin::Mutex;

use super::frame;
use super::paging::{map_kernel_page, unmap_kernel_page, KERNEL_STACK_PML4_SLOT};
use super::PAGE_SIZE;

/// Bytes of one kernel stack.
pub const STACK_SIZE: u64 = 32 * 1024;
/// Start of the region: the sign-extended address of PML4 slot 510.
const REGION: u64 = 0xFFFF_0000_0000_0000 | ((KERNEL_STACK_PML4_SLOT as u64) << 39);
/// One slot: the guard page, then the stack.
const SLOT_SIZE: u64 = STACK_SIZE + PAGE_SIZE;
/// Slots in the 512 GiB region.
const SLOTS: u64 = (1 << 39) / SLOT_SIZE;

struct SlotAllocator {
    free: Vec<u64>,
    next: u64,
}

static SLOT_ALLOCATOR: Mutex<SlotAllocator> = Mutex::new(SlotAllocator {
    free: Vec::new(),
    next: 0,
});

/// A mapped kernel stack; unmapped and freed when dropped.
pub struct KernelStack {
    slot: u64,
}

impl KernelStack {
    /// Maps a zeroed stack in a free slot, or `None` when frames run out.
    pub fn new() -> Option<KernelStack> {
        let slot = {
            let mut slots = SLOT_ALLOCATOR.lock();
            match slots.free.pop() {
                Some(slot) => slot,
                None if slots.next < SLOTS => {
                    // Room on the free list for every slot ever handed out,
                    // so `drop` never allocates; sized once for the most
                    // contexts there can be, so the heap counter does not
                    // creep up with the high-water mark.
                    let want = (slots.next as usize + 1).max(crate::context::max_contexts() + 8);
                    if slots.free.capacity() < want {
                        let extra = want - slots.free.len();
                        slots.free.try_reserve_exact(extra).ok()?;
                    }
                    slots.next += 1;
                    slots.next - 1
                }
                None => return None,
            }
        };
        let stack = KernelStack { slot };
        let mut va = stack.bottom();
        while va < stack.top() {
            let frame = frame::alloc_zeroed()?;
            if map_kernel_page(va, frame).is_err() {
                // SAFETY: the frame was never mapped.
                unsafe { frame::free(frame) };
                return None;
            }
            va += PAGE_SIZE;
        }
        Some(stack)
    }

    /// Lowest address of the stack (the guard page is just below).
    fn bottom(&self) -> u64 {
        REGION + self.slot * SLOT_SIZE + PAGE_SIZE
    }

    /// 16-byte aligned top of the stack.
    pub fn top(&self) -> u64 {
        self.bottom() + STACK_SIZE
    }
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        let mut va = self.bottom();
        while va < self.top() {
            if let Some(frame) = unmap_kernel_page(va) {
                // SAFETY: the page is unmapped and flushed; nothing runs on a
                // stack that is dropped (its context has been reaped).
                unsafe { frame::free(frame) };
            }
            va += PAGE_SIZE;
        }
        let mut slots = SLOT_ALLOCATOR.lock();
        // Never grows: `new` made room for every slot handed out.
        if slots.free.len() < slots.free.capacity() {
            slots.free.push(self.slot);
        }
    }
}
