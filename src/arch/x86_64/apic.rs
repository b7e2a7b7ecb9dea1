//! The local APIC (its timer drives preemption), the legacy 8259 PICs
//! (remapped out of the exception range and masked) and the 8254 PIT (only
//! used as a reference clock to calibrate the TSC and the APIC timer).

use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

use super::idt::{PIC_BASE, SPURIOUS_VECTOR, TIMER_VECTOR};
use crate::memory::phys_to_virt;

const IA32_APIC_BASE: u32 = 0x1B;
const REG_TPR: u64 = 0x80;
const REG_EOI: u64 = 0xB0;
const REG_SVR: u64 = 0xF0;
const REG_LVT_TIMER: u64 = 0x320;
const REG_LVT_LINT0: u64 = 0x350;
const REG_LVT_LINT1: u64 = 0x360;
const REG_TIMER_INIT: u64 = 0x380;
const REG_TIMER_CURRENT: u64 = 0x390;
const REG_TIMER_DIVIDE: u64 = 0x3E0;
const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
const LVT_NMI: u32 = 4 << 8;
/// Divide configuration value for "divide by 16".
const DIVIDE_BY_16: u32 = 0x3;

pub const PIT_HZ: u64 = 1_193_182;

static APIC_BASE: spin::Once<u64> = spin::Once::new();

fn reg(offset: u64) -> *mut u32 {
    let base = *APIC_BASE.get().expect("APIC used before apic::init");
    (base + offset) as *mut u32
}

fn read(offset: u64) -> u32 {
    // SAFETY: an APIC register in the uncached direct map of its MMIO page.
    unsafe { reg(offset).read_volatile() }
}

fn write(offset: u64, value: u32) {
    // SAFETY: as in `read`.
    unsafe { reg(offset).write_volatile(value) }
}

fn outb(port: u16, value: u8) {
    // SAFETY: PIC and PIT ports; writing them has no memory effects.
    unsafe { Port::<u8>::new(port).write(value) }
}

fn inb(port: u16) -> u8 {
    // SAFETY: as in `outb`.
    unsafe { Port::<u8>::new(port).read() }
}

/// Moves the PICs to `PIC_BASE..PIC_BASE+16` and masks every line.
fn disable_pic() {
    outb(0x20, 0x11);
    outb(0xA0, 0x11);
    outb(0x21, PIC_BASE);
    outb(0xA1, PIC_BASE + 8);
    outb(0x21, 4);
    outb(0xA1, 2);
    outb(0x21, 1);
    outb(0xA1, 1);
    outb(0x21, 0xFF);
    outb(0xA1, 0xFF);
}

/// Enables the local APIC with every local interrupt masked but NMI.
pub fn init() {
    disable_pic();
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU.
    let msr = unsafe { Msr::new(IA32_APIC_BASE).read() };
    let phys = msr & 0xF_FFFF_F000;
    // SAFETY: setting the global enable bit (11) keeps the base unchanged.
    unsafe { Msr::new(IA32_APIC_BASE).write(msr | (1 << 11)) };
    APIC_BASE.call_once(|| phys_to_virt(phys));
    write(REG_TPR, 0);
    write(REG_LVT_LINT0, LVT_MASKED);
    write(REG_LVT_LINT1, LVT_NMI);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_SVR, 0x100 | SPURIOUS_VECTOR as u32);
}

pub fn end_of_interrupt() {
    write(REG_EOI, 0);
}

/// Starts the APIC timer free-running (one shot from the maximum count) so
/// `timer_count` can be compared against the PIT.
pub fn start_calibration_count() {
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_TIMER_INIT, u32::MAX);
}

pub fn timer_count() -> u32 {
    read(REG_TIMER_CURRENT)
}

/// Fires `TIMER_VECTOR` every `count` APIC timer ticks (divided by 16).
pub fn start_periodic(count: u32) {
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, TIMER_VECTOR as u32 | LVT_PERIODIC);
    write(REG_TIMER_INIT, count.max(1));
}

/// Programs PIT channel 0 to count down from 65535 over and over.
pub fn pit_start() {
    outb(0x43, 0x34);
    outb(0x40, 0xFF);
    outb(0x40, 0xFF);
}

/// The current PIT channel 0 count.
pub fn pit_count() -> u16 {
    outb(0x43, 0x00);
    let lo = inb(0x40) as u16;
    let hi = inb(0x40) as u16;
    (hi << 8) | lo
}
