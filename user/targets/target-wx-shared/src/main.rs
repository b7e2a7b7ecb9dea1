//! A program the kernel must refuse to run: its linker script (`link.ld`,
//! set by `build.rs`) puts its writable data in the same page as the end
//! of its code, so loading it would need a page both writable and
//! executable. Every segment is W or X alone: only the page check catches
//! it. `fexec` fails with `ENOEXEC` (W^X); `test-entry` checks that. If it
//! ever ran, it would print a line and exit with 99.
#![no_std]
#![no_main]

rt::entry!(main);

fn main(_args: &[&str]) -> i32 {
    rt::println!("target-wx-shared: ran with a writable and executable page");
    99
}
