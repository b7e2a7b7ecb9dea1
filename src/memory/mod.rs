//! Physical memory: the direct map, the frame allocator, the kernel heap and
//! page tables (address spaces).

pub mod frame;
pub mod heap;
pub mod kstack;
pub mod mapping;
pub mod paging;

use crate::boot_info::BootInfo;

/// Where all physical memory below 4 GiB is mapped in every address space.
pub const PHYS_OFFSET: u64 = 0xFFFF_8000_0000_0000;
/// How much physical memory the boot page tables map.
pub const DIRECT_MAP_SIZE: u64 = 4 << 30;
/// Where the kernel image is linked (physical 0 maps here).
pub const KERNEL_OFFSET: u64 = 0xFFFF_FFFF_8000_0000;
pub const PAGE_SIZE: u64 = 4096;

/// The kernel-virtual address of physical address `paddr` (direct map).
pub const fn phys_to_virt(paddr: u64) -> u64 {
    paddr + PHYS_OFFSET
}

extern "C" {
    static __kernel_phys_start: u8;
    static __kernel_end: u8;
}

/// The physical range the kernel image occupies (boot section to `.bss` end).
pub fn kernel_image_range() -> (u64, u64) {
    // SAFETY: linker-script symbols; only their addresses are taken.
    let start = unsafe { &__kernel_phys_start as *const u8 as u64 };
    // SAFETY: as above.
    let end = unsafe { &__kernel_end as *const u8 as u64 } - KERNEL_OFFSET;
    (start, end)
}

/// Sets up the heap and the frame allocator from the memory map. The heap is
/// one contiguous physical range right after the kernel image.
pub fn init(boot: &BootInfo) -> Result<(), &'static str> {
    let (kstart, kend) = kernel_image_range();
    let total = boot.total_ram();
    let heap_size = (total / 8).clamp(4 << 20, 32 << 20) & !(PAGE_SIZE - 1);
    let heap_start = (kend + PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
    let heap_end = heap_start + heap_size;
    let fits = boot
        .ram_regions()
        .iter()
        .any(|r| r.start <= heap_start && heap_end <= r.end);
    if !fits {
        return Err("no RAM right after the kernel image for the heap");
    }
    heap::init(phys_to_virt(heap_start), heap_size as usize);
    frame::init(boot.ram_regions(), &[(0, 0x10_0000), (kstart, heap_end)]);
    Ok(())
}
