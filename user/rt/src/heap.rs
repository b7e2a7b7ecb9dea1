//! The global allocator: a first-fit free list over a static 1 MiB arena, behind a futex lock.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};

use linked_list_allocator::Heap;

use crate::sync::RawMutex;

/// Size of the heap arena in bytes.
pub const HEAP_SIZE: usize = 1 << 20;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; HEAP_SIZE]>);

// SAFETY: the arena is only touched through the allocator, which serialises
// access with its lock.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; HEAP_SIZE]));

/// The heap state guarded by a futex lock (waiters sleep); threads created with `CLONE_VM`
/// share it.
pub struct Allocator {
    lock: RawMutex,
    inner: UnsafeCell<Inner>,
}

struct Inner {
    ready: bool,
    heap: Heap,
}

// SAFETY: `inner` is only accessed while `lock` is held (see `with`).
unsafe impl Sync for Allocator {}

impl Allocator {
    const fn new() -> Self {
        Allocator {
            lock: RawMutex::new(),
            inner: UnsafeCell::new(Inner {
                ready: false,
                heap: Heap::empty(),
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Heap) -> R) -> R {
        self.lock.lock();
        // SAFETY: the lock is held, so this is the only reference to `inner`.
        let inner = unsafe { &mut *self.inner.get() };
        if !inner.ready {
            // SAFETY: the arena is a static region used by nothing else, and
            // it is handed to the heap exactly once.
            unsafe { inner.heap.init(ARENA.0.get().cast::<u8>(), HEAP_SIZE) };
            inner.ready = true;
        }
        let r = f(&mut inner.heap);
        // SAFETY: taken above by this call.
        unsafe { self.lock.unlock() };
        r
    }
}

// SAFETY: allocations come from the arena, never overlap (the free list
// guarantees it) and honour the requested layout.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.with(|h| {
            h.allocate_first_fit(layout)
                .map(NonNull::as_ptr)
                .unwrap_or(ptr::null_mut())
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: the caller returns a block this allocator handed out
            // with the same layout.
            self.with(|h| unsafe { h.deallocate(p, layout) })
        }
    }
}

#[global_allocator]
static ALLOCATOR: Allocator = Allocator::new();

/// Bytes of the heap currently allocated.
pub fn used() -> usize {
    ALLOCATOR.with(|h| h.used())
}

/// Bytes of the heap currently free.
pub fn free() -> usize {
    ALLOCATOR.with(|h| h.free())
}
