//! Memory accesses that may fault on purpose: the page-fault handler turns a
//! fault at one of these instructions into an error return instead of a
//! crash (used by self-tests that check page permissions).

use core::arch::global_asm;

global_asm!(
    r#"
    .section .text.probe, "ax"
    .global probe_read_u8
probe_read_u8:
    xor eax, eax
    xor edx, edx
probe_read_u8_insn:
    mov dl, byte ptr [rdi]
probe_read_u8_done:
    mov byte ptr [rsi], dl
    ret

    .global probe_write_u8
probe_write_u8:
    xor eax, eax
probe_write_u8_insn:
    mov byte ptr [rdi], sil
probe_write_u8_done:
    ret
"#
);

extern "C" {
    /// Reads `*addr` into `*out`; returns 0, or 1 if the read faulted.
    fn probe_read_u8(addr: *const u8, out: *mut u8) -> u64;
    /// Writes `value` to `*addr`; returns 0, or 1 if the write faulted.
    fn probe_write_u8(addr: *mut u8, value: u8) -> u64;
    static probe_read_u8_insn: u8;
    static probe_read_u8_done: u8;
    static probe_write_u8_insn: u8;
    static probe_write_u8_done: u8;
}

/// Where execution resumes if the instruction at `rip` faults, if it is a
/// probe.
pub fn fixup(rip: u64) -> Option<u64> {
    // SAFETY: only the addresses of these labels are taken.
    let table = unsafe {
        [
            (
                &probe_read_u8_insn as *const u8 as u64,
                &probe_read_u8_done as *const u8 as u64,
            ),
            (
                &probe_write_u8_insn as *const u8 as u64,
                &probe_write_u8_done as *const u8 as u64,
            ),
        ]
    };
    table
        .iter()
        .find(|&&(insn, _)| insn == rip)
        .map(|&(_, done)| done)
}

/// Reads one byte, `None` if that faults.
pub fn read_u8(addr: u64) -> Option<u8> {
    let mut value = 0u8;
    // SAFETY: a fault is caught by the page-fault handler through `fixup`;
    // otherwise it is an ordinary read.
    let faulted = unsafe { probe_read_u8(addr as *const u8, &mut value) };
    (faulted == 0).then_some(value)
}

/// Writes one byte, `false` if that faults.
///
/// # Safety
/// A write that succeeds must not break anything the kernel relies on.
pub unsafe fn write_u8(addr: u64, value: u8) -> bool {
    // SAFETY: as for `read_u8`; the caller vouches for the target.
    unsafe { probe_write_u8(addr as *mut u8, value) == 0 }
}
