//! Reading QEMU's PVH `hvm_start_info`: the memory map and the kernel
//! command line (`-append`). Copied out early, before the frame allocator
//! may reuse the memory they live in.

use crate::memory::phys_to_virt;

const START_INFO_MAGIC: u32 = 0x336e_c578;
/// `E820` type of usable RAM.
const MEMMAP_RAM: u32 = 1;
pub const MAX_REGIONS: usize = 64;
pub const MAX_CMDLINE: usize = 1024;

#[repr(C)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

#[repr(C)]
struct MemmapEntry {
    addr: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

/// A range of usable physical RAM.
#[derive(Clone, Copy, Debug, Default)]
pub struct Region {
    pub start: u64,
    pub end: u64,
}

/// What the kernel keeps from the start info.
pub struct BootInfo {
    pub regions: [Region; MAX_REGIONS],
    pub region_count: usize,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
}

impl BootInfo {
    pub fn ram_regions(&self) -> &[Region] {
        &self.regions[..self.region_count]
    }

    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }

    pub fn total_ram(&self) -> u64 {
        self.ram_regions().iter().map(|r| r.end - r.start).sum()
    }
}

/// Parses the start info at physical address `paddr`.
///
/// # Safety
/// `paddr` must be the address QEMU passed in `ebx`, still intact, and the
/// boot direct map must cover it.
pub unsafe fn parse(paddr: u64) -> Result<BootInfo, &'static str> {
    // SAFETY: guaranteed by the caller; the structure is plain data.
    let info = unsafe { &*(phys_to_virt(paddr) as *const StartInfo) };
    if info.magic != START_INFO_MAGIC {
        return Err("bad PVH start info magic");
    }
    let mut boot = BootInfo {
        regions: [Region::default(); MAX_REGIONS],
        region_count: 0,
        cmdline: [0; MAX_CMDLINE],
        cmdline_len: 0,
    };
    if info.cmdline_paddr != 0 {
        let p = phys_to_virt(info.cmdline_paddr) as *const u8;
        let mut n = 0;
        // SAFETY: the command line is a NUL-terminated string QEMU wrote
        // into RAM covered by the direct map; reads stop at the NUL or the
        // buffer's size.
        while n < MAX_CMDLINE && unsafe { *p.add(n) } != 0 {
            // SAFETY: the same byte the loop condition just read.
            boot.cmdline[n] = unsafe { *p.add(n) };
            n += 1;
        }
        boot.cmdline_len = n;
    }
    if info.version >= 1 && info.memmap_paddr != 0 {
        let entries = phys_to_virt(info.memmap_paddr) as *const MemmapEntry;
        for i in 0..info.memmap_entries as usize {
            // SAFETY: QEMU wrote `memmap_entries` entries at `memmap_paddr`.
            let e = unsafe { &*entries.add(i) };
            if e.kind == MEMMAP_RAM && boot.region_count < MAX_REGIONS {
                boot.regions[boot.region_count] = Region {
                    start: e.addr,
                    end: e.addr + e.size,
                };
                boot.region_count += 1;
            }
        }
    }
    if boot.region_count == 0 {
        return Err("PVH start info has no memory map");
    }
    Ok(boot)
}
