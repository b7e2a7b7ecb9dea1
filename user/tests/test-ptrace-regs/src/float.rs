//! `regs/float` (x87 st0, xmm7, mxcsr) and `regs/env` (fs and gs base):
//! what a tracer reads, what it may write, and what the tracee then sees.

use alloc::format;
use alloc::string::String;

use rt::test::{expect_eq, expect_errno, Ctx};
use syscall::error::EINVAL;
use tracer::{EnvRegisters, FloatRegisters};

use crate::probes::{self, bp, FS_TARGET, GS_TARGET, OUT, XMM_PATTERN};
use testkit::start;

const LOW_80: u128 = (1 << 80) - 1;

/// The x87 80-bit encoding of sqrt(32) = 2^2 * sqrt(2), rounded to nearest:
/// exponent 2 (biased 0x4001) and the 64-bit significand sqrt(2) * 2^63 =
/// sqrt(2^127), computed exactly with integers.
fn sqrt32_ext80() -> u128 {
    let target: u128 = 1 << 127;
    let m = target.isqrt();
    // Round up when m + 1/2 <= sqrt(2^127), i.e. m^2 + m < 2^127 (no tie:
    // the root is irrational). m < 2^64, so m^2 + m fits.
    let significand = if m * m + m < target { m + 1 } else { m };
    (0x4001u128 << 64) | significand
}

/// Converts an x87 80-bit normal number to the nearest-below f64.
fn ext80_to_f64(bits: u128) -> Option<f64> {
    let sign = ((bits >> 79) & 1) as u64;
    let exp = ((bits >> 64) & 0x7FFF) as i64;
    let significand = bits as u64;
    if significand >> 63 == 0 || exp == 0 || exp == 0x7FFF {
        return None;
    }
    let e = exp - 16383 + 1023;
    if !(1..=2046).contains(&e) {
        return None;
    }
    let fraction = (significand << 1) >> 12;
    Some(f64::from_bits((sign << 63) | ((e as u64) << 52) | fraction))
}

/// 1.5 as an x87 80-bit value.
const ONE_AND_HALF_EXT80: u128 = (0x3FFF << 64) | 0xC000_0000_0000_0000;
const NEW_XMM: u128 = 0xCAFE_F00D_1357_9BDF_0246_8ACE_FEED_FACE;
/// Default mxcsr (0x1F80) with rounding toward zero.
const NEW_MXCSR: u32 = 0x7F80;

fn float_regs(tr: &mut testkit::Tracee) -> Result<FloatRegisters, String> {
    tr.t().float_regs().ctx("read regs/float")
}

/// st0 holds sqrt(32) (exact 80-bit encoding, and within 1e-12 as f64),
/// xmm7 the pattern the tracee loaded.
pub fn read_st0_xmm7() -> Result<(), String> {
    let mut tr = start(probes::run_float)?;
    tr.cont_to(bp::float1())?;
    let fr = float_regs(&mut tr)?;
    let fcw = fr.fcw;
    expect_eq("fcw after fninit", fcw, 0x037F)?;
    let st0 = fr.st_space[0] & LOW_80;
    let want = sqrt32_ext80();
    if st0 != want {
        return Err(format!(
            "st0: expected the 80-bit value {:#022x} (sqrt 32), got {:#022x}",
            want, st0
        ));
    }
    let value =
        ext80_to_f64(st0).ok_or_else(|| format!("st0 {:#x} is not a normal number", st0))?;
    let exact = 4.0 * core::f64::consts::SQRT_2;
    rt::ensure!(
        (value - exact).abs() < 1e-12,
        "st0 as f64: {} (bits {:#x}), expected {}",
        value,
        value.to_bits(),
        exact
    );
    let xmm7 = fr.xmm_space[7];
    expect_eq("xmm7", xmm7, XMM_PATTERN)?;

    tr.skip_int3()?;
    tr.cont_to(bp::float2())?;
    let out = tr.peek::<32>(OUT.addr())?;
    let xmm_seen = u128::from_le_bytes(out[..16].try_into().unwrap_or_default());
    expect_eq("xmm7 the tracee stored", xmm_seen, XMM_PATTERN)?;
    let st0_seen = f64::from_bits(u64::from_le_bytes(
        out[16..24].try_into().unwrap_or_default(),
    ));
    rt::ensure!(
        (st0_seen - exact).abs() < 1e-12,
        "st0 the tracee stored: {}, expected {}",
        st0_seen,
        exact
    );
    let mxcsr_seen = u32::from_le_bytes(out[24..28].try_into().unwrap_or_default());
    let mxcsr = fr.mxcsr;
    expect_eq("mxcsr the tracee stored", mxcsr_seen, mxcsr)?;
    tr.finish()
}

/// Writing xmm7, st0 and a valid mxcsr round-trips and the tracee sees the
/// new values after resuming.
pub fn write_round_trip() -> Result<(), String> {
    let mut tr = start(probes::run_float)?;
    tr.cont_to(bp::float1())?;
    let fr = float_regs(&mut tr)?;
    let mut w = fr;
    let mut xmm = fr.xmm_space;
    xmm[7] = NEW_XMM;
    w.xmm_space = xmm;
    let mut st = fr.st_space;
    st[0] = (st[0] & !LOW_80) | ONE_AND_HALF_EXT80;
    w.st_space = st;
    w.mxcsr = NEW_MXCSR;
    tr.t().set_float_regs(&w).ctx("write regs/float")?;
    let back = float_regs(&mut tr)?;
    let (xmm7, st0, mxcsr) = (back.xmm_space[7], back.st_space[0] & LOW_80, back.mxcsr);
    expect_eq("xmm7 read back", xmm7, NEW_XMM)?;
    expect_eq("st0 read back", st0, ONE_AND_HALF_EXT80)?;
    expect_eq("mxcsr read back", mxcsr, NEW_MXCSR)?;
    if back.to_bytes()[..24] != w.to_bytes()[..24] || back.to_bytes()[32..] != w.to_bytes()[32..] {
        return Err(format!(
            "regs/float read back differs from what was written: wrote {:x?}, read {:x?}",
            w, back
        ));
    }

    tr.skip_int3()?;
    tr.cont_to(bp::float2())?;
    let out = tr.peek::<32>(OUT.addr())?;
    let xmm_seen = u128::from_le_bytes(out[..16].try_into().unwrap_or_default());
    expect_eq("xmm7 the tracee stored", xmm_seen, NEW_XMM)?;
    let st0_seen = u64::from_le_bytes(out[16..24].try_into().unwrap_or_default());
    expect_eq(
        "st0 the tracee stored (f64 bits)",
        st0_seen,
        1.5f64.to_bits(),
    )?;
    let mxcsr_seen = u32::from_le_bytes(out[24..28].try_into().unwrap_or_default());
    expect_eq("mxcsr the tracee stored", mxcsr_seen, NEW_MXCSR)?;
    tr.finish()
}

/// mxcsr with reserved bits set is EINVAL, and the xmm7 change written
/// with it is not applied.
pub fn mxcsr_reserved() -> Result<(), String> {
    let mut tr = start(probes::run_float)?;
    tr.cont_to(bp::float1())?;
    let fr = float_regs(&mut tr)?;
    for bad in [0xFFFF_0000 | 0x1F80, 0x1_1F80, 0x8000_1F80] {
        let mut w = fr;
        let mut xmm = fr.xmm_space;
        xmm[7] = NEW_XMM;
        w.xmm_space = xmm;
        w.mxcsr = bad;
        expect_errno(
            &format!("write mxcsr {:#x}", bad),
            tr.t().set_float_regs(&w),
            EINVAL,
        )?;
        let now = float_regs(&mut tr)?;
        if now != fr {
            return Err(format!(
                "the refused write (mxcsr {:#x}) changed regs/float: {:x?} -> {:x?}",
                bad, fr, now
            ));
        }
    }
    tr.skip_int3()?;
    tr.cont_to(bp::float2())?;
    let out = tr.peek::<16>(OUT.addr())?;
    expect_eq(
        "xmm7 the tracee stored",
        u128::from_le_bytes(out),
        XMM_PATTERN,
    )?;
    tr.finish()
}

fn env_regs(tr: &mut testkit::Tracee) -> Result<EnvRegisters, String> {
    tr.t().env_regs().ctx("read regs/env")
}

/// fs/gs bases outside user space are EINVAL and change nothing (a valid
/// base written alongside included).
pub fn env_noncanonical() -> Result<(), String> {
    let mut tr = start(probes::run_env)?;
    tr.cont_to(bp::env1())?;
    let before = env_regs(&mut tr)?;
    let good = (&raw const FS_TARGET) as u64;
    for bad in [
        0x0000_8000_0000_0000u64,
        0xFFFF_8000_0000_0000,
        0x8000_0000_0000_0000,
        u64::MAX,
    ] {
        for (fsbase, gsbase) in [
            (bad, before.gsbase),
            (before.fsbase, bad),
            (good, bad),
            (bad, good),
        ] {
            let w = EnvRegisters { fsbase, gsbase };
            expect_errno(
                &format!("write fsbase {:#x} gsbase {:#x}", fsbase, gsbase),
                tr.t().set_env_regs(&w),
                EINVAL,
            )?;
            expect_eq("regs/env after a refused write", env_regs(&mut tr)?, before)?;
        }
    }
    // The tracee would fault reading fs:[0] now; dropping kills it.
    Ok(())
}

/// Canonical user bases round-trip and the tracee reads through them.
pub fn env_round_trip() -> Result<(), String> {
    let mut tr = start(probes::run_env)?;
    tr.cont_to(bp::env1())?;
    let w = EnvRegisters {
        fsbase: (&raw const FS_TARGET) as u64,
        gsbase: (&raw const GS_TARGET) as u64,
    };
    tr.t().set_env_regs(&w).ctx("write regs/env")?;
    expect_eq("regs/env read back", env_regs(&mut tr)?, w)?;
    tr.skip_int3()?;
    tr.cont_to(bp::env2())?;
    expect_eq("regs/env at the next stop", env_regs(&mut tr)?, w)?;
    let seen = tr.peek_u64s::<2>(OUT.addr())?;
    expect_eq(
        "fs:[0] and gs:[0] in the tracee",
        seen,
        [FS_TARGET, GS_TARGET],
    )?;
    tr.finish()
}
