//! A program the kernel must refuse to run: besides its ordinary segments it
//! has one section that is writable and executable (flags "awx"), which the
//! linker puts in a `PT_LOAD` segment with both W and X. `fexec` of it fails
//! with `ENOEXEC` (W^X); `test-entry` checks that. If it ever ran, it would
//! print a line the host test looks for and exit with 99.
#![no_std]
#![no_main]

rt::entry!(main);

core::arch::global_asm!(
    ".pushsection .text.wx, \"awx\", @progbits",
    ".globl target_wx_code",
    "target_wx_code:",
    "ret",
    ".popsection",
);

unsafe extern "C" {
    fn target_wx_code();
}

fn main(_args: &[&str]) -> i32 {
    // SAFETY: the routine is a lone `ret`.
    unsafe { target_wx_code() };
    rt::println!("target-wx: ran with a writable and executable segment");
    99
}
