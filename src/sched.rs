//! Scheduling entry points used by the trap path (filled in with processes).

use alloc::string::String;

use crate::arch::trap_frame::TrapFrame;
use crate::exit::{exit_qemu, ExitCode};

pub fn timer_tick(_frame: &mut TrapFrame) {}

pub fn user_exception(frame: &mut TrapFrame) {
    crate::arch::trap::fatal(frame)
}

pub fn start(_init: &[String]) -> ! {
    exit_qemu(ExitCode::Success)
}
