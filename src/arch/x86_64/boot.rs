//! PVH entry: the ELF note QEMU looks for, and the 32-bit trampoline that
//! builds the boot page tables, enters long mode and calls `kernel_main`.
//!
//! Boot page tables (2 MiB pages, 4 GiB in all, above 3 GiB uncached):
//! - `0..4 GiB` identity mapped, only for the trampoline (removed later),
//! - `PHYS_OFFSET..+4 GiB` the direct map of physical memory,
//! - `-2 GiB..` the kernel image (physical 0..2 GiB).

use core::arch::global_asm;

global_asm!(
    r#"
    .section .note.pvh, "a", @note
    .balign 4
    .long 4                     /* name size: "Xen\0" */
    .long 8                     /* descriptor size */
    .long 18                    /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad pvh_start

    .section .boot.bss, "aw", @nobits
    .balign 4096
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4096 * 4
boot_stack32:   .skip 256
boot_stack32_top:

    .section .boot.data, "aw"
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF    /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF    /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .boot.text, "ax"
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    lea esp, [boot_stack32_top]  /* PVH leaves esp undefined */
    mov esi, ebx                /* physical address of hvm_start_info */

    lea edi, [boot_pml4]
    mov ecx, 7 * 1024           /* page tables only, not the stack */
    xor eax, eax
    rep stosd

    lea eax, [boot_pdpt_low + 3]
    mov dword ptr [boot_pml4], eax
    mov dword ptr [boot_pml4 + 256 * 8], eax
    lea eax, [boot_pdpt_high + 3]
    mov dword ptr [boot_pml4 + 511 * 8], eax

    lea eax, [boot_pd + 3]
    mov dword ptr [boot_pdpt_low], eax
    mov dword ptr [boot_pdpt_high + 510 * 8], eax
    add eax, 4096
    mov dword ptr [boot_pdpt_low + 8], eax
    mov dword ptr [boot_pdpt_high + 511 * 8], eax
    add eax, 4096
    mov dword ptr [boot_pdpt_low + 16], eax
    add eax, 4096
    mov dword ptr [boot_pdpt_low + 24], eax

    xor ecx, ecx
2:
    mov eax, ecx
    shl eax, 21
    or eax, 0x83                /* present, writable, 2 MiB */
    cmp ecx, 1536
    jb 3f
    or eax, 0x18                /* above 3 GiB (MMIO): cache disabled */
3:
    mov dword ptr [boot_pd + ecx * 8], eax
    inc ecx
    cmp ecx, 2048
    jne 2b

    mov eax, cr4
    or eax, (1 << 5) | (1 << 9) | (1 << 10)  /* PAE, OSFXSR, OSXMMEXCPT */
    mov cr4, eax
    lea eax, [boot_pml4]
    mov cr3, eax
    mov ecx, 0xC0000080         /* EFER: long mode, no-execute, syscall */
    rdmsr
    or eax, (1 << 8) | (1 << 11) | (1 << 0)
    wrmsr
    mov eax, cr0
    and eax, ~(1 << 2)          /* no x87 emulation */
    or eax, (1 << 31) | (1 << 16) | (1 << 5) | (1 << 1) | 1  /* paging, WP, NE, MP, PE */
    mov cr0, eax

    lgdt [boot_gdt_ptr]
    push 0x08
    lea eax, [boot_long_mode]
    push eax
    retf

    .code64
boot_long_mode:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax

    /* zero .bss (firmware may have used that memory) */
    movabs rdi, offset __bss_start
    movabs rcx, offset __kernel_end
    sub rcx, rdi
    shr rcx, 3
    xor eax, eax
    rep stosq

    movabs rsp, offset {stack} + {stack_size}
    mov edi, esi
    movabs rax, offset {main}
    call rax
4:
    hlt
    jmp 4b
"#,
    stack = sym BOOT_STACK,
    stack_size = const BOOT_STACK_SIZE,
    main = sym crate::kernel_main,
);

/// Size of the stack `kernel_main` starts on (it later becomes the idle
/// context's kernel stack).
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
pub struct BootStack(pub [u8; BOOT_STACK_SIZE]);

/// The stack the boot CPU runs `kernel_main` on.
#[no_mangle]
pub static mut BOOT_STACK: BootStack = BootStack([0; BOOT_STACK_SIZE]);
