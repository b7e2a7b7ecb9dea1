//! Time: the TSC calibrated against the PIT at boot gives a monotonic clock
//! in nanoseconds; the APIC timer, calibrated the same way, ticks at `HZ`
//! for preemption and sleeping.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::apic;

/// Timer interrupts per second.
pub const HZ: u64 = 100;
/// How long the calibration samples the PIT (PIT ticks; about 20 ms).
const CALIBRATION_PIT_TICKS: u64 = 23_864;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);

fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Calibrates against the PIT and starts the periodic timer. Interrupts
/// must still be off.
pub fn init() {
    TSC_AT_BOOT.store(rdtsc(), Ordering::Relaxed);
    apic::pit_start();
    apic::start_calibration_count();
    let (tsc_hz, apic_hz) = match measure() {
        Some(rates) => rates,
        None => {
            crate::warn!("time: the PIT does not count; assuming a 1 GHz TSC and APIC timer");
            (1_000_000_000, 1_000_000_000 / 16)
        }
    };
    TSC_HZ.store(tsc_hz.max(1), Ordering::Relaxed);
    apic::start_periodic((apic_hz / HZ).min(u32::MAX as u64) as u32);
}

/// (TSC Hz, APIC timer Hz after its divider) measured over
/// `CALIBRATION_PIT_TICKS` of the PIT, or `None` if the PIT is not there.
fn measure() -> Option<(u64, u64)> {
    let mut last = apic::pit_count();
    // Wait for the PIT to move at all (bounded: it may not exist).
    let mut spins = 0u32;
    loop {
        let now = apic::pit_count();
        if now != last {
            last = now;
            break;
        }
        spins += 1;
        if spins > 1_000_000 {
            return None;
        }
    }
    let tsc0 = rdtsc();
    let apic0 = apic::timer_count();
    let mut elapsed: u64 = 0;
    while elapsed < CALIBRATION_PIT_TICKS {
        let now = apic::pit_count();
        elapsed += if now <= last {
            (last - now) as u64
        } else {
            last as u64 + (65_536 - now as u64)
        };
        last = now;
    }
    let tsc = rdtsc() - tsc0;
    let apic = apic0.wrapping_sub(apic::timer_count()) as u64;
    let scale = |count: u64| (count as u128 * apic::PIT_HZ as u128 / elapsed as u128) as u64;
    Some((scale(tsc), scale(apic).max(HZ)))
}

/// Nanoseconds since boot (0 before `init`).
pub fn monotonic_ns() -> u64 {
    let hz = TSC_HZ.load(Ordering::Relaxed);
    if hz == 0 {
        return 0;
    }
    let delta = rdtsc().wrapping_sub(TSC_AT_BOOT.load(Ordering::Relaxed));
    (delta as u128 * 1_000_000_000 / hz as u128) as u64
}

/// Called on every timer interrupt.
pub fn tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}
