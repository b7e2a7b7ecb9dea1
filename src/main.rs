//! The kernel: boot, CPU tables, memory, time, then either in-kernel
//! self-tests (`test=` on the command line) or user space.

#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod boot_info;
mod cmdline;
mod console;
mod context;
mod elf;
mod exit;
mod memory;
mod process;
mod ptrace;
mod sched;
mod scheme;
mod selftest;
mod sync;
mod syscall;
mod time;
mod usermode;

use core::panic::PanicInfo;

use exit::{exit_qemu, ExitCode};

/// Entered from the boot trampoline on the boot stack, with the physical
/// address of QEMU's PVH start info.
#[no_mangle]
pub extern "C" fn kernel_main(start_info: u32) -> ! {
    console::init();
    // SAFETY: the trampoline passes QEMU's `ebx` through untouched, and the
    // boot direct map covers low memory.
    let boot = match unsafe { boot_info::parse(start_info as u64) } {
        Ok(boot) => boot,
        Err(why) => {
            console::emergency_print(format_args!("boot: {why}\n"));
            exit_qemu(ExitCode::Failure)
        }
    };
    arch::init_cpu();
    if let Err(why) = memory::init(&boot) {
        console::emergency_print(format_args!("boot: {why}\n"));
        exit_qemu(ExitCode::Failure)
    }
    memory::paging::init();
    let opts = cmdline::parse(boot.cmdline());
    if let Some(level) = opts.log {
        console::set_level(level);
    }
    arch::apic::init();
    time::init();
    kprintln!(
        "ptrace-kernel: {} MiB RAM ({} free frames), heap {} KiB, timer {} Hz, TSC {} MHz",
        boot.total_ram() >> 20,
        memory::frame::free_count(),
        memory::heap::size() >> 10,
        time::HZ,
        time::tsc_hz() / 1_000_000
    );
    info!("command line: {:?}", boot.cmdline());

    if !opts.tests.is_empty() {
        let ok = selftest::run(&opts.tests);
        exit_qemu(if ok {
            ExitCode::Success
        } else {
            ExitCode::Failure
        })
    }
    process::start_user_space(&opts.init);
    sched::idle_loop()
}

/// pid 1 has exited: power off with its status (0 is success).
pub fn power_off_after_init(status: usize) -> ! {
    use ::syscall::flag::{wexitstatus, wifexited, wifsignaled, wtermsig};
    if wifexited(status) && wexitstatus(status) == 0 {
        info!("init exited with status 0; powering off");
        exit_qemu(ExitCode::Success)
    }
    if wifsignaled(status) {
        kprintln!("init was killed by signal {}", wtermsig(status));
    } else {
        kprintln!("init exited with status {}", wexitstatus(status));
    }
    exit_qemu(ExitCode::Failure)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    console::emergency_print(format_args!("\nKERNEL PANIC: {}", info.message()));
    if let Some(loc) = info.location() {
        console::emergency_print(format_args!(" at {}:{}", loc.file(), loc.line()));
    }
    console::emergency_print(format_args!("\n"));
    exit_qemu(ExitCode::Panic)
}
