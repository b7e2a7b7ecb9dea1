//! Rules for `regs/*` and `mem` (contract sections 4a and 5): what a tracer
//! sees of the registers, which written values are accepted and how they
//! are sanitised, buffer sizes, user-memory ranges and `mem` seeks.

use abi::{is_canonical_user, EnvRegisters, FloatRegisters, IntRegisters, USER_END};

use crate::errno::{Errno, EFAULT, EINVAL};

/// Carry flag.
pub const RFLAGS_CF: usize = 0x1;
/// Bit 1 of `rflags` is reserved and always 1.
pub const RFLAGS_RESERVED_ONE: usize = 0x2;
/// Parity flag.
pub const RFLAGS_PF: usize = 0x4;
/// Auxiliary carry flag.
pub const RFLAGS_AF: usize = 0x10;
/// Zero flag.
pub const RFLAGS_ZF: usize = 0x40;
/// Sign flag.
pub const RFLAGS_SF: usize = 0x80;
/// Trap flag (single-stepping).
pub const RFLAGS_TF: usize = 0x100;
/// Interrupt enable flag.
pub const RFLAGS_IF: usize = 0x200;
/// Direction flag.
pub const RFLAGS_DF: usize = 0x400;
/// Overflow flag.
pub const RFLAGS_OF: usize = 0x800;

/// The `rflags` bits a tracer may change: CF PF AF ZF SF DF OF.
pub const WRITABLE_RFLAGS: usize =
    RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_DF | RFLAGS_OF;

/// What a tracer reads from `regs/int`: the saved registers, with the trap
/// flag hidden if the kernel set it for single-stepping (`kernel_set_tf`).
/// A trap flag the program set itself stays visible.
pub fn visible_int_regs(saved: &IntRegisters, kernel_set_tf: bool) -> IntRegisters {
    let mut visible = *saved;
    if kernel_set_tf {
        visible.rflags &= !RFLAGS_TF;
    }
    visible
}

/// The registers to install after a tracer wrote `written` to `regs/int`
/// while the saved registers are `current`; all or nothing.
///
/// - `rip` and `rsp` must be canonical user addresses, else `EINVAL`;
/// - `cs`, `ss` and `fs` keep their current values (written ones ignored);
/// - `rflags` takes CF PF AF ZF SF DF OF from `written`, keeps TF from
///   `current` (it is the kernel's), has IF and the reserved bit 1 set, and
///   every other bit clear (IOPL 0, no NT RF VM AC VIF VIP ID).
pub fn apply_int_write(
    current: &IntRegisters,
    written: &IntRegisters,
) -> Result<IntRegisters, Errno> {
    if !is_canonical_user(written.rip as u64) || !is_canonical_user(written.rsp as u64) {
        return Err(EINVAL);
    }
    let rflags = RFLAGS_RESERVED_ONE
        | RFLAGS_IF
        | (current.rflags & RFLAGS_TF)
        | (written.rflags & WRITABLE_RFLAGS);
    Ok(IntRegisters {
        cs: current.cs,
        ss: current.ss,
        fs: current.fs,
        rflags,
        ..*written
    })
}

/// The state to install after a tracer wrote `written` to `regs/float`.
/// `mxcsr_mask` is the CPU's MXCSR mask (`0xFFBF` when FXSAVE reports 0):
/// an `mxcsr` with a bit outside it is `EINVAL`. The result's `mxcsr_mask`
/// field is the CPU's, whatever was written there.
pub fn apply_float_write(
    written: &FloatRegisters,
    mxcsr_mask: u32,
) -> Result<FloatRegisters, Errno> {
    let mxcsr = written.mxcsr;
    if mxcsr & !mxcsr_mask != 0 {
        return Err(EINVAL);
    }
    Ok(FloatRegisters {
        mxcsr_mask,
        ..*written
    })
}

/// The fs and gs bases to install after a tracer wrote `written` to
/// `regs/env`: both must be canonical user addresses, else `EINVAL`.
pub fn apply_env_write(written: &EnvRegisters) -> Result<EnvRegisters, Errno> {
    if is_canonical_user(written.fsbase) && is_canonical_user(written.gsbase) {
        Ok(*written)
    } else {
        Err(EINVAL)
    }
}

/// A `regs/*` read needs a buffer of at least the struct's `size`.
pub fn check_regs_read_len(buf_len: usize, size: usize) -> Result<(), Errno> {
    if buf_len >= size {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// A `regs/*` write must be exactly the struct's `size`.
pub fn check_regs_write_len(len: usize, size: usize) -> Result<(), Errno> {
    if len == size {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// How many of the `len` bytes at user address `addr` a `mem` transfer may
/// touch before reaching kernel space: `EFAULT` if `addr` is not a user
/// address at all (even for `len` 0), else `len` cut at [`USER_END`]. The
/// kernel still stops short at the first unmapped page.
pub fn check_mem_range(addr: u64, len: usize) -> Result<usize, Errno> {
    if !is_canonical_user(addr) {
        return Err(EFAULT);
    }
    let room = USER_END - addr;
    Ok(usize::try_from(room).map_or(len, |room| len.min(room)))
}

/// Offsets of 2^63 or more are not `mem` offsets.
pub const MAX_MEM_OFFSET: u64 = i64::MAX as u64;

/// A new `mem` offset is valid below 2^63 (`EINVAL` otherwise). Offsets in
/// `USER_END..2^63` are valid positions; transfers there fail with `EFAULT`.
pub fn check_seek(offset: u64) -> Result<u64, Errno> {
    if offset <= MAX_MEM_OFFSET {
        Ok(offset)
    } else {
        Err(EINVAL)
    }
}

/// `SEEK_SET`, as `redox_syscall` defines it.
pub const SEEK_SET: usize = 0;
/// `SEEK_CUR`, as `redox_syscall` defines it.
pub const SEEK_CUR: usize = 1;

/// The new offset of `lseek(mem_fd, offset, whence)` from the `current` one.
/// `SEEK_SET` takes `offset` as an unsigned address, `SEEK_CUR` adds it as a
/// signed delta; the result must pass [`check_seek`]. `SEEK_END` (the user
/// address space has no meaningful end to seek from) and unknown `whence`
/// values are `EINVAL`.
pub fn mem_seek(current: u64, offset: usize, whence: usize) -> Result<u64, Errno> {
    match whence {
        SEEK_SET => check_seek(offset as u64),
        SEEK_CUR => {
            let delta = offset as isize as i128;
            let target = i128::from(current) + delta;
            let target = u64::try_from(target).map_err(|_| EINVAL)?;
            check_seek(target)
        }
        _ => Err(EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER_RIP: usize = 0x40_1000;
    const USER_RSP: usize = 0x7FFF_FFFF_F000;
    const USER_CS: usize = 0x2B;
    const USER_SS: usize = 0x23;

    fn saved() -> IntRegisters {
        IntRegisters {
            rax: 1,
            rbx: 2,
            rip: USER_RIP,
            rsp: USER_RSP,
            cs: USER_CS,
            ss: USER_SS,
            fs: 0x1B,
            rflags: RFLAGS_RESERVED_ONE | RFLAGS_IF | RFLAGS_ZF,
            ..IntRegisters::default()
        }
    }

    #[test]
    fn writable_rflags_value() {
        assert_eq!(WRITABLE_RFLAGS, 0xCD5);
    }

    #[test]
    fn kernel_trap_flag_is_hidden() {
        let mut regs = saved();
        regs.rflags |= RFLAGS_TF;
        assert_eq!(visible_int_regs(&regs, true).rflags & RFLAGS_TF, 0);
        assert_eq!(visible_int_regs(&regs, true).rax, 1);
        assert_eq!(visible_int_regs(&regs, false), regs);
    }

    #[test]
    fn ordinary_write_goes_through() {
        let written = IntRegisters {
            rax: 60,
            rdi: 7,
            r15: 15,
            rip: USER_RIP + 2,
            rsp: USER_RSP - 8,
            ..saved()
        };
        assert_eq!(apply_int_write(&saved(), &written), Ok(written));
    }

    #[test]
    fn segments_are_not_writable() {
        let written = IntRegisters {
            cs: 0x08,
            ss: 0x10,
            fs: 0x33,
            ..saved()
        };
        let installed = apply_int_write(&saved(), &written).unwrap();
        assert_eq!(
            (installed.cs, installed.ss, installed.fs),
            (USER_CS, USER_SS, 0x1B)
        );
    }

    #[test]
    fn rflags_keeps_only_arithmetic_and_direction_bits() {
        let written = IntRegisters {
            rflags: usize::MAX,
            ..saved()
        };
        let installed = apply_int_write(&saved(), &written).unwrap();
        assert_eq!(
            installed.rflags,
            WRITABLE_RFLAGS | RFLAGS_IF | RFLAGS_RESERVED_ONE
        );

        let cleared = IntRegisters {
            rflags: 0,
            ..saved()
        };
        let installed = apply_int_write(&saved(), &cleared).unwrap();
        assert_eq!(installed.rflags, RFLAGS_IF | RFLAGS_RESERVED_ONE);
    }

    #[test]
    fn trap_flag_is_the_kernels() {
        let mut stepping = saved();
        stepping.rflags |= RFLAGS_TF;
        let written = IntRegisters {
            rflags: 0,
            ..saved()
        };
        let installed = apply_int_write(&stepping, &written).unwrap();
        assert_eq!(installed.rflags & RFLAGS_TF, RFLAGS_TF);

        let set_tf = IntRegisters {
            rflags: RFLAGS_TF,
            ..saved()
        };
        let installed = apply_int_write(&saved(), &set_tf).unwrap();
        assert_eq!(installed.rflags & RFLAGS_TF, 0);
    }

    #[test]
    fn dangerous_rflags_bits_are_dropped_even_if_current_had_them() {
        let iopl_nt_rf_vm_ac_vif_vip_id =
            0x3000 | 0x4000 | 0x1_0000 | 0x2_0000 | 0x4_0000 | 0x8_0000 | 0x10_0000 | 0x20_0000;
        let current = IntRegisters {
            rflags: iopl_nt_rf_vm_ac_vif_vip_id | RFLAGS_IF,
            ..saved()
        };
        let installed = apply_int_write(&current, &current).unwrap();
        assert_eq!(installed.rflags & iopl_nt_rf_vm_ac_vif_vip_id, 0);
        assert_ne!(installed.rflags & RFLAGS_IF, 0);
    }

    #[test]
    fn non_user_rip_or_rsp_is_einval() {
        for bad in [USER_END as usize, 0xFFFF_8000_0000_0000, usize::MAX] {
            let bad_rip = IntRegisters {
                rip: bad,
                ..saved()
            };
            assert_eq!(apply_int_write(&saved(), &bad_rip), Err(EINVAL));
            let bad_rsp = IntRegisters {
                rsp: bad,
                ..saved()
            };
            assert_eq!(apply_int_write(&saved(), &bad_rsp), Err(EINVAL));
        }
        let highest = IntRegisters {
            rip: USER_END as usize - 1,
            rsp: 0,
            ..saved()
        };
        assert!(apply_int_write(&saved(), &highest).is_ok());
    }

    #[test]
    fn mxcsr_reserved_bits_are_einval() {
        let mask = 0xFFBF;
        let good = FloatRegisters {
            mxcsr: 0x1F80,
            mxcsr_mask: 0,
            fcw: 0x037F,
            ..FloatRegisters::default()
        };
        let installed = apply_float_write(&good, mask).unwrap();
        let (mxcsr, installed_mask, fcw) = (installed.mxcsr, installed.mxcsr_mask, installed.fcw);
        assert_eq!((mxcsr, installed_mask, fcw), (0x1F80, mask, 0x037F));

        for bad in [0x40, 0x1_0000, 0x8000_0000] {
            let written = FloatRegisters { mxcsr: bad, ..good };
            assert_eq!(apply_float_write(&written, mask), Err(EINVAL));
        }
        let daz = FloatRegisters {
            mxcsr: 0x40,
            ..good
        };
        assert!(apply_float_write(&daz, 0xFFFF).is_ok());
    }

    #[test]
    fn env_bases_must_be_user_addresses() {
        let good = EnvRegisters {
            fsbase: 0x7000_0000,
            gsbase: USER_END - 1,
        };
        assert_eq!(apply_env_write(&good), Ok(good));
        let bad_fs = EnvRegisters {
            fsbase: USER_END,
            ..good
        };
        let bad_gs = EnvRegisters {
            gsbase: 0xFFFF_FFFF_8000_0000,
            ..good
        };
        assert_eq!(apply_env_write(&bad_fs), Err(EINVAL));
        assert_eq!(apply_env_write(&bad_gs), Err(EINVAL));
    }

    #[test]
    fn regs_buffer_sizes() {
        assert_eq!(check_regs_read_len(168, IntRegisters::SIZE), Ok(()));
        assert_eq!(check_regs_read_len(4096, IntRegisters::SIZE), Ok(()));
        assert_eq!(check_regs_read_len(167, IntRegisters::SIZE), Err(EINVAL));
        assert_eq!(check_regs_write_len(416, FloatRegisters::SIZE), Ok(()));
        assert_eq!(check_regs_write_len(417, FloatRegisters::SIZE), Err(EINVAL));
        assert_eq!(check_regs_write_len(0, EnvRegisters::SIZE), Err(EINVAL));
    }

    #[test]
    fn mem_ranges_stop_at_user_end() {
        assert_eq!(check_mem_range(0x1000, 64), Ok(64));
        assert_eq!(check_mem_range(0, 0), Ok(0));
        assert_eq!(check_mem_range(USER_END - 16, 64), Ok(16));
        assert_eq!(check_mem_range(USER_END - 1, usize::MAX), Ok(1));
        assert_eq!(check_mem_range(USER_END, 1), Err(EFAULT));
        assert_eq!(check_mem_range(USER_END, 0), Err(EFAULT));
        assert_eq!(check_mem_range(u64::MAX, 8), Err(EFAULT));
    }

    #[test]
    fn seeks_at_or_past_two_to_the_63_are_einval() {
        assert_eq!(check_seek(0), Ok(0));
        assert_eq!(check_seek(USER_END), Ok(USER_END));
        assert_eq!(check_seek(MAX_MEM_OFFSET), Ok(MAX_MEM_OFFSET));
        assert_eq!(check_seek(1 << 63), Err(EINVAL));
        assert_eq!(check_seek(u64::MAX), Err(EINVAL));
    }

    #[test]
    fn mem_seek_set_and_cur() {
        assert_eq!(mem_seek(0, 0x40_1000, SEEK_SET), Ok(0x40_1000));
        assert_eq!(mem_seek(5, 1 << 63, SEEK_SET), Err(EINVAL));
        assert_eq!(mem_seek(0x1000, 0x10, SEEK_CUR), Ok(0x1010));
        assert_eq!(mem_seek(0x1000, (-0x10isize) as usize, SEEK_CUR), Ok(0xFF0));
        assert_eq!(mem_seek(0x10, (-0x11isize) as usize, SEEK_CUR), Err(EINVAL));
        assert_eq!(mem_seek(MAX_MEM_OFFSET, 1, SEEK_CUR), Err(EINVAL));
        assert_eq!(
            mem_seek(MAX_MEM_OFFSET, isize::MAX as usize, SEEK_CUR),
            Err(EINVAL)
        );
        assert_eq!(mem_seek(0, isize::MIN as usize, SEEK_CUR), Err(EINVAL));
        assert_eq!(mem_seek(0x1000, 0, 2), Err(EINVAL));
        assert_eq!(mem_seek(0x1000, 0, usize::MAX), Err(EINVAL));
    }
}
