//! An strace target that dies of SIGSEGV: it writes one line, then stores
//! to an unmapped address.
#![no_std]
#![no_main]

rt::entry!(main);

fn main(_args: &[&str]) -> i32 {
    rt::println!("segv: about to fault");
    let bad = 0x10 as *mut u64;
    // SAFETY: none: this store faults on purpose (address 0x10 is never
    // mapped); the kernel turns the fault into SIGSEGV, which kills us.
    unsafe { bad.write_volatile(0x5e6f) };
    rt::println!("segv: still alive?");
    1
}
