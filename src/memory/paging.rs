//! Address spaces: 4-level page tables whose upper half (the kernel) is
//! shared by all and whose lower half (user space) each owns: every user
//! frame and page table below the PML4 belongs to exactly one address space
//! and is freed when it is dropped.

use bitflags::bitflags;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTable, PageTableFlags as F, PhysFrame};
use x86_64::PhysAddr;

use super::frame::{self, Frame};
use super::PAGE_SIZE;

/// First address above user space (the lower canonical half).
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// PML4 entries `KERNEL_PML4_FIRST..512` are the kernel's, shared by all.
const KERNEL_PML4_FIRST: usize = 256;
/// A leaf whose frame this address space does not own: a `MAP_SHARED`
/// page, whose frames belong to the mapping (`memory::mapping`) and are
/// freed when its last user goes. Never freed by the page tables.
const SHARED: F = F::BIT_9;
/// A leaf kept with its frame but not present: a `PROT_NONE` page.
const PARKED: F = F::BIT_10;

bitflags! {
    /// What user code may do with a page (it may always read it).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct UserAccess: u8 {
        const WRITE = 1;
        const EXEC = 2;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Not a page-aligned user address.
    BadAddress,
    AlreadyMapped,
    NotMapped,
    OutOfMemory,
}

/// The leaf flags for `access`, `None` being `PROT_NONE` (parked).
fn leaf_flags_opt(access: Option<UserAccess>) -> F {
    match access {
        Some(access) => leaf_flags(access),
        None => F::USER_ACCESSIBLE | PARKED,
    }
}

/// A page-table walk result: the frame mapped and its user access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub frame: Frame,
    pub access: UserAccess,
}

fn leaf_flags(access: UserAccess) -> F {
    let mut flags = F::PRESENT | F::USER_ACCESSIBLE;
    if access.contains(UserAccess::WRITE) {
        flags |= F::WRITABLE;
    }
    if !access.contains(UserAccess::EXEC) {
        flags |= F::NO_EXECUTE;
    }
    flags
}

fn access_of(flags: F) -> UserAccess {
    let mut access = UserAccess::empty();
    if flags.contains(F::WRITABLE) {
        access |= UserAccess::WRITE;
    }
    if !flags.contains(F::NO_EXECUTE) {
        access |= UserAccess::EXEC;
    }
    access
}

fn table(frame: Frame) -> &'static mut PageTable {
    // SAFETY: page-table frames are owned by their address space and reached
    // through the direct map; callers hold `&mut AddressSpace` (or `&` for
    // reads), so no two references to one table are used at once.
    unsafe { &mut *(frame.as_ptr() as *mut PageTable) }
}

fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * (level - 1))) & 0x1FF) as usize
}

/// The level-1 entry for `va` under `pml4`, creating missing intermediate
/// tables (with `extra` flags beside present and writable) if `create`.
fn leaf_entry_in(
    pml4: Frame,
    va: u64,
    create: bool,
    extra: F,
) -> Result<&'static mut PageTableEntry, MapError> {
    let mut t = pml4;
    for level in (2..=4).rev() {
        let entry = &mut table(t)[index(va, level)];
        if entry.is_unused() {
            if !create {
                return Err(MapError::NotMapped);
            }
            let new = frame::alloc_zeroed().ok_or(MapError::OutOfMemory)?;
            entry.set_addr(PhysAddr::new(new.addr()), F::PRESENT | F::WRITABLE | extra);
        }
        // SAFETY: a present intermediate entry points to a page table owned
        // by this address space (user half) or by the kernel (upper half).
        t = unsafe { Frame::from_addr(entry.addr().as_u64()) };
    }
    Ok(&mut table(t)[index(va, 1)])
}

/// PML4 slot of the kernel-stack region (`memory::kstack`). Its PDPT is
/// created at boot, so every address space shares all later mappings in it.
pub const KERNEL_STACK_PML4_SLOT: usize = 510;

/// Maps `frame` at kernel address `va` (in the kernel-stack region),
/// writable, not executable.
pub fn map_kernel_page(va: u64, frame: Frame) -> Result<(), MapError> {
    let pml4 = *KERNEL_PML4.get().ok_or(MapError::OutOfMemory)?;
    if index(va, 4) != KERNEL_STACK_PML4_SLOT || !va.is_multiple_of(PAGE_SIZE) {
        return Err(MapError::BadAddress);
    }
    let entry = leaf_entry_in(pml4, va, true, F::empty())?;
    if !entry.is_unused() {
        return Err(MapError::AlreadyMapped);
    }
    entry.set_addr(
        PhysAddr::new(frame.addr()),
        F::PRESENT | F::WRITABLE | F::NO_EXECUTE,
    );
    Ok(())
}

/// Unmaps kernel page `va` (in the kernel-stack region) and returns its
/// frame. Every CPU (there is one) flushes it.
pub fn unmap_kernel_page(va: u64) -> Option<Frame> {
    let pml4 = *KERNEL_PML4.get()?;
    if index(va, 4) != KERNEL_STACK_PML4_SLOT {
        return None;
    }
    let entry = leaf_entry_in(pml4, va, false, F::empty()).ok()?;
    if entry.is_unused() {
        return None;
    }
    // SAFETY: a present entry in the kernel-stack region maps a frame that
    // `memory::kstack` allocated for it.
    let frame = unsafe { Frame::from_addr(entry.addr().as_u64()) };
    entry.set_unused();
    x86_64::instructions::tlb::flush(x86_64::VirtAddr::new(va));
    Some(frame)
}

/// The page tables of the kernel as booted (physical address of the PML4).
static KERNEL_PML4: spin::Once<Frame> = spin::Once::new();

/// Records the boot PML4 as the kernel's, and drops the identity map the
/// trampoline needed.
pub fn init() {
    let (cr3, _) = Cr3::read();
    // SAFETY: CR3 holds the boot PML4, a frame that lives as long as the
    // kernel.
    let pml4 = unsafe { Frame::from_addr(cr3.start_address().as_u64()) };
    table(pml4)[0].set_unused();
    // The kernel-stack region's PDPT exists before any address space copies
    // the kernel half.
    let slot = &mut table(pml4)[KERNEL_STACK_PML4_SLOT];
    if slot.is_unused() {
        let pdpt = frame::alloc_zeroed().expect("a frame for the kernel-stack PDPT at boot");
        slot.set_addr(PhysAddr::new(pdpt.addr()), F::PRESENT | F::WRITABLE);
    }
    x86_64::instructions::tlb::flush_all();
    KERNEL_PML4.call_once(|| pml4);
}

/// Switches to the kernel's own page tables (before an address space dies).
pub fn activate_kernel_tables() {
    if let Some(pml4) = KERNEL_PML4.get() {
        load_cr3(*pml4);
    }
}

fn load_cr3(pml4: Frame) {
    let (current, _) = Cr3::read();
    if current.start_address().as_u64() != pml4.addr() {
        let frame = PhysFrame::containing_address(PhysAddr::new(pml4.addr()));
        // SAFETY: `pml4` is a complete PML4 whose kernel half equals the boot
        // tables', so the running kernel stays mapped.
        unsafe { Cr3::write(frame, Cr3Flags::empty()) };
    }
}

/// One user address space.
pub struct AddressSpace {
    pml4: Frame,
    /// The regions of the user half (`memory::mapping`); dropped after the
    /// page tables, so shared frames outlive every leaf that maps them.
    pub mappings: super::mapping::Mappings,
}

impl AddressSpace {
    /// An empty user half with the kernel's upper half.
    pub fn new() -> Result<AddressSpace, MapError> {
        let kernel = *KERNEL_PML4.get().ok_or(MapError::OutOfMemory)?;
        let pml4 = frame::alloc_zeroed().ok_or(MapError::OutOfMemory)?;
        let (src, dst) = (table(kernel), table(pml4));
        for i in KERNEL_PML4_FIRST..512 {
            dst[i] = src[i].clone();
        }
        Ok(AddressSpace {
            pml4,
            mappings: super::mapping::Mappings::new(),
        })
    }

    pub fn activate(&self) {
        load_cr3(self.pml4);
    }

    pub fn is_active(&self) -> bool {
        Cr3::read().0.start_address().as_u64() == self.pml4.addr()
    }

    fn check(va: u64) -> Result<(), MapError> {
        if !va.is_multiple_of(PAGE_SIZE) || va >= USER_END {
            Err(MapError::BadAddress)
        } else {
            Ok(())
        }
    }

    /// The level-1 entry for `va`, creating missing tables if `create`.
    fn leaf_entry(&self, va: u64, create: bool) -> Result<&'static mut PageTableEntry, MapError> {
        leaf_entry_in(self.pml4, va, create, F::USER_ACCESSIBLE)
    }

    fn flush(&self, va: u64) {
        if self.is_active() {
            x86_64::instructions::tlb::flush(x86_64::VirtAddr::new(va));
        }
    }

    /// Maps `frame` at user page `va` with leaf `flags`, owning nothing on
    /// error (the caller keeps the frame).
    fn map_raw(&mut self, va: u64, frame: Frame, flags: F) -> Result<(), MapError> {
        Self::check(va)?;
        let entry = self.leaf_entry(va, true)?;
        if !entry.is_unused() {
            return Err(MapError::AlreadyMapped);
        }
        entry.set_addr(PhysAddr::new(frame.addr()), flags);
        Ok(())
    }

    /// Maps `frame` at user page `va`, `None` being `PROT_NONE`; the
    /// address space now owns the frame unless `shared` (then the caller's
    /// mapping owns it and frees it). On error the caller keeps the frame.
    pub fn map_page(
        &mut self,
        va: u64,
        frame: Frame,
        access: Option<UserAccess>,
        shared: bool,
    ) -> Result<(), MapError> {
        let mut flags = leaf_flags_opt(access);
        if shared {
            flags |= SHARED;
        }
        self.map_raw(va, frame, flags)
    }

    /// Makes sure the page tables down to the leaf of `va` exist, so a
    /// later `map_page` there cannot fail for want of a frame.
    pub fn ensure_tables(&mut self, va: u64) -> Result<(), MapError> {
        Self::check(va)?;
        self.leaf_entry(va, true).map(|_| ())
    }

    /// Maps `frame` at user page `va`; the address space now owns the frame.
    /// On error the frame is freed.
    pub fn map(&mut self, va: u64, frame: Frame, access: UserAccess) -> Result<(), MapError> {
        let result = self.map_raw(va, frame, leaf_flags(access));
        if result.is_err() {
            // SAFETY: the frame was not mapped; it is ours to give back.
            unsafe { frame::free(frame) };
        }
        result
    }

    /// Maps a fresh zeroed frame at `va`.
    pub fn map_zeroed(&mut self, va: u64, access: UserAccess) -> Result<Frame, MapError> {
        let frame = frame::alloc_zeroed().ok_or(MapError::OutOfMemory)?;
        self.map(va, frame, access)?;
        Ok(frame)
    }

    /// Unmaps `va` and frees its frame.
    pub fn unmap(&mut self, va: u64) -> Result<(), MapError> {
        Self::check(va)?;
        let entry = self.leaf_entry(va, false)?;
        if entry.is_unused() {
            return Err(MapError::NotMapped);
        }
        // SAFETY: a user leaf points to a frame this space owns (or, if
        // shared, one its mapping owns).
        let frame = unsafe { Frame::from_addr(entry.addr().as_u64()) };
        let shared = entry.flags().contains(SHARED);
        entry.set_unused();
        self.flush(va);
        if !shared {
            // SAFETY: the mapping is gone and the TLB entry flushed.
            unsafe { frame::free(frame) };
        }
        Ok(())
    }

    /// Changes what user code may do with page `va`, `None` being
    /// `PROT_NONE` (the frame stays, the page is not present).
    pub fn set_access(&mut self, va: u64, access: Option<UserAccess>) -> Result<(), MapError> {
        Self::check(va)?;
        let entry = self.leaf_entry(va, false)?;
        if entry.is_unused() {
            return Err(MapError::NotMapped);
        }
        let addr = entry.addr();
        let shared = entry.flags() & SHARED;
        entry.set_addr(addr, leaf_flags_opt(access) | shared);
        self.flush(va);
        Ok(())
    }

    /// Frees the page tables of the user half that map nothing any more
    /// (after an unmap), so the frames come back.
    pub fn prune_tables(&mut self) {
        prune(self.pml4, 4);
        if self.is_active() {
            x86_64::instructions::tlb::flush_all();
        }
    }

    /// Changes what user code may do with page `va`.
    pub fn protect(&mut self, va: u64, access: UserAccess) -> Result<(), MapError> {
        Self::check(va)?;
        let entry = self.leaf_entry(va, false)?;
        if entry.is_unused() {
            return Err(MapError::NotMapped);
        }
        let addr = entry.addr();
        let shared = entry.flags() & SHARED;
        entry.set_addr(addr, leaf_flags(access) | shared);
        self.flush(va);
        Ok(())
    }

    /// The frame and access of the page containing user address `va`.
    pub fn translate(&self, va: u64) -> Option<Translation> {
        if va >= USER_END {
            return None;
        }
        let entry = self.leaf_entry(va & !(PAGE_SIZE - 1), false).ok()?;
        if !entry.flags().contains(F::PRESENT) {
            return None;
        }
        Some(Translation {
            // SAFETY: a present user leaf points to a frame this space owns.
            frame: unsafe { Frame::from_addr(entry.addr().as_u64()) },
            access: access_of(entry.flags()),
        })
    }

    /// Calls `f(va, translation)` for every mapped (present) user page, in
    /// order.
    pub fn for_each_page(&self, mut f: impl FnMut(u64, Translation)) {
        walk(self.pml4, 4, 0, &mut |va, entry_addr, flags| {
            if !flags.contains(F::PRESENT) {
                return;
            }
            // SAFETY: leaves of a user half point to frames this space owns.
            let frame = unsafe { Frame::from_addr(entry_addr) };
            f(
                va,
                Translation {
                    frame,
                    access: access_of(flags),
                },
            )
        });
    }

    /// A copy of the user half (fork): private pages are copied, shared
    /// pages (`MAP_SHARED`) map the same frames, and the mapping list is
    /// copied with them.
    pub fn duplicate(&self) -> Result<AddressSpace, MapError> {
        let mut copy = AddressSpace::new()?;
        copy.mappings = self.mappings.try_clone().ok_or(MapError::OutOfMemory)?;
        let mut result = Ok(());
        walk(self.pml4, 4, 0, &mut |va, entry_addr, flags| {
            if result.is_err() {
                return;
            }
            // SAFETY: leaves of a user half point to frames this space (or
            // its shared mappings) own.
            let old = unsafe { Frame::from_addr(entry_addr) };
            result = (|| {
                if flags.contains(SHARED) {
                    return copy.map_raw(va, old, flags);
                }
                let frame = frame::alloc().ok_or(MapError::OutOfMemory)?;
                // SAFETY: both frames are distinct, owned and direct-mapped.
                unsafe {
                    core::ptr::copy_nonoverlapping(old.as_ptr(), frame.as_ptr(), PAGE_SIZE as usize)
                };
                copy.map_raw(va, frame, flags).inspect_err(|_| {
                    // SAFETY: the frame was not mapped.
                    unsafe { frame::free(frame) }
                })
            })();
        });
        result.map(|()| copy)
    }

    /// Copies user memory at `va` into `buf`, stopping at the first page that
    /// is not mapped (or at the end of user space); returns the bytes copied.
    pub fn read(&self, va: u64, buf: &mut [u8]) -> usize {
        let mut done = 0;
        while done < buf.len() {
            let addr = va.wrapping_add(done as u64);
            let Some(t) = (addr >= va).then(|| self.translate(addr)).flatten() else {
                break;
            };
            let offset = (addr % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - offset).min(buf.len() - done);
            // SAFETY: the frame is mapped in this space and direct-mapped;
            // `offset + n` stays inside it.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    t.frame.as_ptr().add(offset),
                    buf[done..].as_mut_ptr(),
                    n,
                )
            };
            done += n;
        }
        done
    }

    /// Copies `data` to user memory at `va`, stopping at the first page that
    /// is not mapped, or not writable unless `force` (ptrace plants
    /// breakpoints in read-only text); returns the bytes copied.
    pub fn write(&self, va: u64, data: &[u8], force: bool) -> usize {
        let mut done = 0;
        while done < data.len() {
            let addr = va.wrapping_add(done as u64);
            let Some(t) = (addr >= va).then(|| self.translate(addr)).flatten() else {
                break;
            };
            if !force && !t.access.contains(UserAccess::WRITE) {
                break;
            }
            let offset = (addr % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - offset).min(data.len() - done);
            // SAFETY: as in `read`; the frame belongs to this user space, so
            // writing it cannot touch kernel memory.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    data[done..].as_ptr(),
                    t.frame.as_ptr().add(offset),
                    n,
                )
            };
            done += n;
        }
        done
    }
}

/// Visits the present leaves under table `t` of `level` covering user
/// addresses from `base`.
fn walk(t: Frame, level: u32, base: u64, f: &mut dyn FnMut(u64, u64, F)) {
    let entries = if level == 4 { KERNEL_PML4_FIRST } else { 512 };
    for i in 0..entries {
        let entry = &table(t)[i];
        if entry.is_unused() {
            continue;
        }
        let va = base | ((i as u64) << (12 + 9 * (level - 1)));
        if level == 1 {
            f(va, entry.addr().as_u64(), entry.flags());
        } else {
            // SAFETY: present intermediate user entries point to owned tables.
            let next = unsafe { Frame::from_addr(entry.addr().as_u64()) };
            walk(next, level - 1, va, f);
        }
    }
}

/// Frees every frame and table under `t` (user half only for the PML4).
fn free_tree(t: Frame, level: u32) {
    let entries = if level == 4 { KERNEL_PML4_FIRST } else { 512 };
    for i in 0..entries {
        let entry = &mut table(t)[i];
        if entry.is_unused() {
            continue;
        }
        // SAFETY: present user entries point to frames this space owns.
        let child = unsafe { Frame::from_addr(entry.addr().as_u64()) };
        let shared = level == 1 && entry.flags().contains(SHARED);
        entry.set_unused();
        if level > 1 {
            free_tree(child, level - 1);
        }
        if !shared {
            // SAFETY: nothing maps `child` any more (a shared frame is its
            // mapping's to free).
            unsafe { frame::free(child) };
        }
    }
}

/// Frees the tables under `t` (a table of `level` > 1) that map nothing;
/// returns whether `t` itself maps nothing now.
fn prune(t: Frame, level: u32) -> bool {
    let entries = if level == 4 { KERNEL_PML4_FIRST } else { 512 };
    let mut empty = true;
    for i in 0..entries {
        let entry = &mut table(t)[i];
        if entry.is_unused() {
            continue;
        }
        if level > 1 {
            // SAFETY: present intermediate user entries point to owned tables.
            let child = unsafe { Frame::from_addr(entry.addr().as_u64()) };
            if prune(child, level - 1) {
                entry.set_unused();
                // SAFETY: the table maps nothing and nothing points to it.
                unsafe { frame::free(child) };
                continue;
            }
        }
        empty = false;
    }
    empty
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        if self.is_active() {
            activate_kernel_tables();
        }
        free_tree(self.pml4, 4);
        // SAFETY: the PML4 is no longer loaded anywhere.
        unsafe { frame::free(self.pml4) };
    }
}
