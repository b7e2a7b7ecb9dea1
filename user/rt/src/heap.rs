//! The global allocator: first-fit free lists behind a futex lock
//! (`sync::RawMutex`: a waiting thread sleeps in the kernel). The
//! first 1 MiB comes from a static seed area in `.bss` (so a program's
//! first allocations make no system call: tracers see exactly the calls a
//! program makes itself); past it, the heap grows by mapping memory with
//! `fmap` (anonymous, private, read-write), contiguously from a fixed
//! address far from everything else, with `MAP_FIXED_NOREPLACE`. There is
//! no `brk` and no fixed limit but the memory there is.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};

use linked_list_allocator::Heap;
use syscall::data::Map;
use syscall::flag::MapFlags;

use crate::sync::RawMutex;

/// Bytes of the static seed area.
pub const SEED_SIZE: usize = 1 << 20;

#[repr(C, align(4096))]
struct Seed(UnsafeCell<[u8; SEED_SIZE]>);

// SAFETY: the seed is only touched through the allocator, which serialises
// access with its lock.
unsafe impl Sync for Seed {}

static SEED: Seed = Seed(UnsafeCell::new([0; SEED_SIZE]));

/// Where the heap's mappings start.
pub const HEAP_BASE: usize = 0x0000_2000_0000_0000;
/// Most bytes the heap maps.
pub const HEAP_MAX: usize = 1 << 30;
/// The smallest growth, in bytes.
const GROW_STEP: usize = 128 * 1024;
const PAGE: usize = 4096;

/// Maps `len` bytes (a multiple of the page size) at `addr`, or false.
fn map_at(addr: usize, len: usize) -> bool {
    let map = Map {
        offset: 0,
        size: len,
        flags: MapFlags::PROT_READ
            | MapFlags::PROT_WRITE
            | MapFlags::MAP_PRIVATE
            | MapFlags::MAP_FIXED_NOREPLACE,
        address: addr,
    };
    // SAFETY: a fixed, no-replace anonymous mapping touches no memory the
    // program already uses.
    let result = unsafe { syscall::fmap(!0, &map) };
    result == Ok(addr)
}

/// The heap state guarded by a futex lock; threads created with
/// `CLONE_VM` share it.
pub struct Allocator {
    lock: RawMutex,
    inner: UnsafeCell<Inner>,
}

struct Inner {
    /// Whether `seed` has been given the seed area.
    seeded: bool,
    seed: Heap,
    /// Bytes mapped so far, from `HEAP_BASE`.
    mapped: usize,
    heap: Heap,
}

impl Inner {
    /// Maps at least `need` more bytes above the heap and hands them to it.
    fn grow(&mut self, need: usize) -> bool {
        let Some(by) = need
            .checked_add(GROW_STEP + PAGE - 1)
            .map(|n| n & !(PAGE - 1))
        else {
            return false;
        };
        if by > HEAP_MAX - self.mapped || !map_at(HEAP_BASE + self.mapped, by) {
            return false;
        }
        if self.mapped == 0 {
            // SAFETY: the range was just mapped for the heap alone.
            unsafe { self.heap.init(HEAP_BASE as *mut u8, by) };
        } else {
            // SAFETY: the new pages are mapped right above the heap's top.
            unsafe { self.heap.extend(by) };
        }
        self.mapped += by;
        true
    }

    fn allocate(&mut self, layout: Layout) -> *mut u8 {
        if !self.seeded {
            // SAFETY: the seed is a static area used by nothing else, and
            // it is handed to the heap exactly once.
            unsafe { self.seed.init(SEED.0.get().cast::<u8>(), SEED_SIZE) };
            self.seeded = true;
        }
        if let Ok(p) = self.seed.allocate_first_fit(layout) {
            return p.as_ptr();
        }
        if let Ok(p) = self.heap.allocate_first_fit(layout) {
            return p.as_ptr();
        }
        // A block of `size` aligned to `align` fits in this much more.
        let need = layout
            .size()
            .saturating_add(layout.align())
            .saturating_add(64);
        if !self.grow(need) {
            return ptr::null_mut();
        }
        self.heap
            .allocate_first_fit(layout)
            .map(NonNull::as_ptr)
            .unwrap_or(ptr::null_mut())
    }
}

// SAFETY: `inner` is only accessed while `lock` is held (see `with`).
unsafe impl Sync for Allocator {}

impl Allocator {
    const fn new() -> Self {
        Allocator {
            lock: RawMutex::new(),
            inner: UnsafeCell::new(Inner {
                seeded: false,
                seed: Heap::empty(),
                mapped: 0,
                heap: Heap::empty(),
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        self.lock.lock();
        // SAFETY: the lock is held, so this is the only reference to `inner`.
        let inner = unsafe { &mut *self.inner.get() };
        let r = f(inner);
        // SAFETY: taken above by this call.
        unsafe { self.lock.unlock() };
        r
    }
}

// SAFETY: allocations come from the heap's mappings, never overlap (the
// free list guarantees it) and honour the requested layout.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.with(|h| h.allocate(layout))
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            self.with(|h| {
                let seed = SEED.0.get() as usize;
                let heap = if (seed..seed + SEED_SIZE).contains(&(ptr as usize)) {
                    &mut h.seed
                } else {
                    &mut h.heap
                };
                // SAFETY: the caller returns a block this allocator handed
                // out with this layout, from this heap (the seed's range
                // tells which).
                unsafe { heap.deallocate(p, layout) }
            })
        }
    }
}

#[global_allocator]
static ALLOCATOR: Allocator = Allocator::new();

/// Bytes of the heap currently allocated.
pub fn used() -> usize {
    ALLOCATOR.with(|h| h.seed.used() + h.heap.used())
}

/// Bytes of the heap currently free.
pub fn free() -> usize {
    ALLOCATOR.with(|h| h.seed.free() + h.heap.free())
}

/// Maps heap memory up front until at least `bytes` are mapped (a program
/// that measures memory use grows its heap before it measures); false if
/// the memory cannot be mapped.
pub fn reserve(bytes: usize) -> bool {
    ALLOCATOR.with(|h| h.mapped >= bytes || h.grow(bytes - h.mapped))
}

/// Bytes the heap has mapped with `fmap` (the seed not counted).
pub fn mapped() -> usize {
    ALLOCATOR.with(|h| h.mapped)
}
