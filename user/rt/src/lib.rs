//! Runtime library for user programs: entry point, heap, printing, processes, threads, tests.
//!
//! A program is a `#![no_std] #![no_main]` binary that calls [`entry!`] with its
//! `fn main(args: &[&str]) -> i32`. This crate supplies the panic handler and
//! the global allocator, so the program needs nothing else.
#![no_std]

extern crate alloc;

pub mod errno;
pub mod fs;
pub mod heap;
pub mod io;
pub mod process;
pub mod start;
pub mod sync;
pub mod test;
pub mod thread;

mod panic;

#[doc(hidden)]
pub use alloc::format as __format;
pub use errno::errno_name;
pub use start::{args, env};
pub use test::Tests;

/// Defines the program's `_start` so that it calls `$main` with the program
/// arguments and exits with the status `$main` returns.
///
/// `$main` must be a `fn(&[&str]) -> i32`; `args[0]` is the program path.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// Process entry: the kernel jumps here with rsp pointing at `argc`.
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        pub extern "C" fn _start() -> ! {
            ::core::arch::naked_asm!(
                // Hand the initial stack pointer to Rust, end the frame chain,
                // and keep the System V alignment for the call.
                "mov rdi, rsp",
                "xor ebp, ebp",
                "and rsp, -16",
                "call {entry}",
                "ud2",
                entry = sym __rt_entry,
            )
        }

        extern "C" fn __rt_entry(sp: *const usize) -> ! {
            // SAFETY: `sp` is the untouched initial stack pointer that `_start`
            // received from the kernel, laid out as the process ABI describes.
            unsafe { $crate::start::run(sp, $main) }
        }
    };
}

/// Prints to standard output (fd 1).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::io::print_to(1, ::core::format_args!($($arg)*), false)
    };
}

/// Prints a line to standard output (fd 1) with a single write when it fits.
#[macro_export]
macro_rules! println {
    () => {
        $crate::io::print_to(1, ::core::format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::io::print_to(1, ::core::format_args!($($arg)*), true)
    };
}

/// Prints to standard error (fd 2).
#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::io::print_to(2, ::core::format_args!($($arg)*), false)
    };
}

/// Prints a line to standard error (fd 2).
#[macro_export]
macro_rules! eprintln {
    () => {
        $crate::io::print_to(2, ::core::format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::io::print_to(2, ::core::format_args!($($arg)*), true)
    };
}

/// Returns `Err(format!(...))` from the enclosing function unless the
/// condition holds. For test functions returning `Result<(), String>`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return ::core::result::Result::Err($crate::__format!($($arg)*));
        }
    };
}
