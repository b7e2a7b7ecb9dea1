//! The kernel heap: `linked_list_allocator` over one physical range, wrapped
//! to count the bytes in use (the leak checks compare that counter), and the
//! heap *reserve*: every call that allocates on a user's behalf first asks
//! `admit` for its worst case, which refuses (`ENOMEM`) when the free heap
//! would drop below the reserve. The reserve is what exiting, closing,
//! `waitpid`, `SIGKILL` and detaching allocate from when the heap is
//! otherwise full: they never ask `admit`.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use linked_list_allocator::Heap;
use spin::Mutex;

struct CountingHeap {
    heap: Mutex<Heap>,
    in_use: AtomicUsize,
}

#[global_allocator]
static HEAP: CountingHeap = CountingHeap {
    heap: Mutex::new(Heap::empty()),
    in_use: AtomicUsize::new(0),
};

static HEAP_SIZE: AtomicUsize = AtomicUsize::new(0);

/// Hands the heap its memory: `size` bytes at kernel-virtual `start`.
pub fn init(start: u64, size: usize) {
    // SAFETY: `memory::init` gives a direct-mapped RAM range that nothing
    // else uses, once.
    unsafe { HEAP.heap.lock().init(start as *mut u8, size) };
    HEAP_SIZE.store(size, Ordering::Relaxed);
}

// SAFETY: allocation is delegated to `linked_list_allocator` under a lock;
// the counter does not affect what is returned.
unsafe impl GlobalAlloc for CountingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.heap.lock().allocate_first_fit(layout) {
            Ok(ptr) => {
                self.in_use.fetch_add(layout.size(), Ordering::Relaxed);
                ptr.as_ptr()
            }
            Err(()) => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(ptr) = NonNull::new(ptr) {
            // SAFETY: `ptr` came from `alloc` with this layout.
            unsafe { self.heap.lock().deallocate(ptr, layout) };
            self.in_use.fetch_sub(layout.size(), Ordering::Relaxed);
        }
    }
}

/// The free heap bytes that calls made on a user's behalf never use: a
/// sixteenth of the heap, at least 512 KiB (1 MiB of a 16 MiB heap).
pub fn reserve() -> usize {
    (size() / 16).max(512 * 1024)
}

/// Heap bytes not allocated (as the allocator counts them, with its
/// rounding), whatever their fragmentation.
pub fn free_bytes() -> usize {
    HEAP.heap.lock().free()
}

/// Admits a call that will allocate at most `bytes` from the heap on a
/// user's behalf: `ENOMEM` when that would leave less than the reserve
/// free. The kernel runs one call at a time with interrupts off, so nothing
/// else allocates between this check and the call's allocations. (Large
/// buffers are also allocated with `try_reserve`: fragmentation can refuse
/// them even when the bytes are free.)
pub fn admit(bytes: usize) -> Result<(), syscall::error::Error> {
    match free_bytes().checked_sub(reserve()) {
        Some(spare) if spare >= bytes => Ok(()),
        _ => Err(syscall::error::Error::new(syscall::error::ENOMEM)),
    }
}

/// Bytes currently allocated from the kernel heap.
pub fn used_bytes() -> usize {
    HEAP.in_use.load(Ordering::Relaxed)
}

pub fn size() -> usize {
    HEAP_SIZE.load(Ordering::Relaxed)
}
