//! The kernel heap: `linked_list_allocator` over one physical range, wrapped
//! to count the bytes in use (the leak checks compare that counter).

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

/// Bytes currently allocated from the kernel heap.
pub fn used_bytes() -> usize {
    HEAP.in_use.load(Ordering::Relaxed)
}

pub fn size() -> usize {
    HEAP_SIZE.load(Ordering::Relaxed)
}
