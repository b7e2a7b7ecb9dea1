//! The register files of `proc:<pid>/regs/{int,float,env}`, laid out exactly
//! like `redox_syscall` 0.2.16's x86_64 `IntRegisters`, `FloatRegisters` and
//! `EnvRegisters` (which that crate defines only on bare metal and Redox).

use crate::bytes::{read_exact, ByteWriter};

/// General-purpose registers (168 bytes), `proc:<pid>/regs/int`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct IntRegisters {
    pub r15: usize,
    pub r14: usize,
    pub r13: usize,
    pub r12: usize,
    pub rbp: usize,
    pub rbx: usize,
    pub r11: usize,
    pub r10: usize,
    pub r9: usize,
    pub r8: usize,
    pub rax: usize,
    pub rcx: usize,
    pub rdx: usize,
    pub rsi: usize,
    pub rdi: usize,
    pub rip: usize,
    pub cs: usize,
    pub rflags: usize,
    pub rsp: usize,
    pub ss: usize,
    pub fs: usize,
}

impl IntRegisters {
    /// Size of the register file in bytes.
    pub const SIZE: usize = 168;

    /// The fields in layout order.
    fn fields(&self) -> [usize; 21] {
        [
            self.r15,
            self.r14,
            self.r13,
            self.r12,
            self.rbp,
            self.rbx,
            self.r11,
            self.r10,
            self.r9,
            self.r8,
            self.rax,
            self.rcx,
            self.rdx,
            self.rsi,
            self.rdi,
            self.rip,
            self.cs,
            self.rflags,
            self.rsp,
            self.ss,
            self.fs,
        ]
    }

    /// The register file's byte image.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut image = [0; Self::SIZE];
        let mut out = ByteWriter::new(&mut image);
        for field in self.fields() {
            out.usize(field);
        }
        image
    }

    /// Parses a register file; `None` unless `bytes` is exactly
    /// [`Self::SIZE`] long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        read_exact(bytes, Self::SIZE, |r| {
            Some(IntRegisters {
                r15: r.usize()?,
                r14: r.usize()?,
                r13: r.usize()?,
                r12: r.usize()?,
                rbp: r.usize()?,
                rbx: r.usize()?,
                r11: r.usize()?,
                r10: r.usize()?,
                r9: r.usize()?,
                r8: r.usize()?,
                rax: r.usize()?,
                rcx: r.usize()?,
                rdx: r.usize()?,
                rsi: r.usize()?,
                rdi: r.usize()?,
                rip: r.usize()?,
                cs: r.usize()?,
                rflags: r.usize()?,
                rsp: r.usize()?,
                ss: r.usize()?,
                fs: r.usize()?,
            })
        })
    }
}

/// x87/SSE state (416 bytes, the first 416 bytes of an FXSAVE image),
/// `proc:<pid>/regs/float`. Packed like `redox_syscall`'s: copy fields out
/// by value, never take references to them.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[repr(C, packed)]
pub struct FloatRegisters {
    pub fcw: u16,
    pub fsw: u16,
    pub ftw: u8,
    pub _reserved: u8,
    pub fop: u16,
    pub fip: u64,
    pub fdp: u64,
    pub mxcsr: u32,
    pub mxcsr_mask: u32,
    pub st_space: [u128; 8],
    pub xmm_space: [u128; 16],
}

impl FloatRegisters {
    /// Size of the register file in bytes.
    pub const SIZE: usize = 416;

    /// The register file's byte image (the FXSAVE layout).
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut image = [0; Self::SIZE];
        let mut out = ByteWriter::new(&mut image);
        out.u16(self.fcw);
        out.u16(self.fsw);
        out.u8(self.ftw);
        out.u8(self._reserved);
        out.u16(self.fop);
        out.u64(self.fip);
        out.u64(self.fdp);
        out.u32(self.mxcsr);
        out.u32(self.mxcsr_mask);
        for st in self.st_space {
            out.u128(st);
        }
        for xmm in self.xmm_space {
            out.u128(xmm);
        }
        image
    }

    /// Parses a register file; `None` unless `bytes` is exactly
    /// [`Self::SIZE`] long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        read_exact(bytes, Self::SIZE, |r| {
            let mut regs = FloatRegisters {
                fcw: r.u16()?,
                fsw: r.u16()?,
                ftw: r.u8()?,
                _reserved: r.u8()?,
                fop: r.u16()?,
                fip: r.u64()?,
                fdp: r.u64()?,
                mxcsr: r.u32()?,
                mxcsr_mask: r.u32()?,
                ..FloatRegisters::default()
            };
            let mut st_space = [0u128; 8];
            for st in st_space.iter_mut() {
                *st = r.u128()?;
            }
            let mut xmm_space = [0u128; 16];
            for xmm in xmm_space.iter_mut() {
                *xmm = r.u128()?;
            }
            regs.st_space = st_space;
            regs.xmm_space = xmm_space;
            Some(regs)
        })
    }
}

/// The fs and gs base addresses (16 bytes), `proc:<pid>/regs/env`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct EnvRegisters {
    pub fsbase: u64,
    pub gsbase: u64,
}

impl EnvRegisters {
    /// Size of the register file in bytes.
    pub const SIZE: usize = 16;

    /// The register file's byte image.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut image = [0; Self::SIZE];
        let mut out = ByteWriter::new(&mut image);
        out.u64(self.fsbase);
        out.u64(self.gsbase);
        image
    }

    /// Parses a register file; `None` unless `bytes` is exactly
    /// [`Self::SIZE`] long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        read_exact(bytes, Self::SIZE, |r| {
            Some(EnvRegisters {
                fsbase: r.u64()?,
                gsbase: r.u64()?,
            })
        })
    }
}

const _: () = assert!(core::mem::size_of::<IntRegisters>() == IntRegisters::SIZE);
const _: () = assert!(core::mem::size_of::<FloatRegisters>() == FloatRegisters::SIZE);
const _: () = assert!(core::mem::size_of::<EnvRegisters>() == EnvRegisters::SIZE);
const _: () = assert!(core::mem::offset_of!(IntRegisters, rip) == 15 * 8);
const _: () = assert!(core::mem::offset_of!(IntRegisters, fs) == 20 * 8);
const _: () = assert!(core::mem::offset_of!(FloatRegisters, mxcsr) == 24);
const _: () = assert!(core::mem::offset_of!(FloatRegisters, st_space) == 32);
const _: () = assert!(core::mem::offset_of!(FloatRegisters, xmm_space) == 160);

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered_int_regs() -> IntRegisters {
        IntRegisters {
            r15: 1,
            r14: 2,
            r13: 3,
            r12: 4,
            rbp: 5,
            rbx: 6,
            r11: 7,
            r10: 8,
            r9: 9,
            r8: 10,
            rax: 11,
            rcx: 12,
            rdx: 13,
            rsi: 14,
            rdi: 15,
            rip: 16,
            cs: 17,
            rflags: 18,
            rsp: 19,
            ss: 20,
            fs: 21,
        }
    }

    #[test]
    fn int_regs_image_is_in_field_order() {
        let regs = numbered_int_regs();
        let image = regs.to_bytes();
        for (index, word) in image.chunks_exact(8).enumerate() {
            assert_eq!(word, &(index as u64 + 1).to_le_bytes());
        }
        assert_eq!(IntRegisters::from_bytes(&image), Some(regs));
        assert_eq!(IntRegisters::from_bytes(&image[..167]), None);
    }

    #[test]
    fn float_regs_image_is_the_fxsave_layout() {
        let mut st_space = [0u128; 8];
        st_space[0] = 0x0102;
        let mut xmm_space = [0u128; 16];
        xmm_space[15] = u128::MAX - 1;
        let regs = FloatRegisters {
            fcw: 0x037F,
            fsw: 0x1234,
            ftw: 0xAB,
            _reserved: 0xCD,
            fop: 0x5678,
            fip: 0x1111_2222_3333_4444,
            fdp: 0x5555_6666_7777_8888,
            mxcsr: 0x1F80,
            mxcsr_mask: 0xFFFF,
            st_space,
            xmm_space,
        };
        let image = regs.to_bytes();
        assert_eq!(&image[0..2], &[0x7F, 0x03]);
        assert_eq!(image[4], 0xAB);
        assert_eq!(image[5], 0xCD);
        assert_eq!(&image[8..16], &0x1111_2222_3333_4444u64.to_le_bytes());
        assert_eq!(&image[24..28], &0x1F80u32.to_le_bytes());
        assert_eq!(&image[28..32], &0xFFFFu32.to_le_bytes());
        assert_eq!(&image[32..48], &0x0102u128.to_le_bytes());
        assert_eq!(&image[400..416], &(u128::MAX - 1).to_le_bytes());
        assert_eq!(FloatRegisters::from_bytes(&image), Some(regs));
        assert_eq!(FloatRegisters::from_bytes(&image[..415]), None);
    }

    #[test]
    fn env_regs_image_is_fsbase_then_gsbase() {
        let regs = EnvRegisters {
            fsbase: 0x7000,
            gsbase: 0x8000,
        };
        let image = regs.to_bytes();
        assert_eq!(&image[0..8], &0x7000u64.to_le_bytes());
        assert_eq!(&image[8..16], &0x8000u64.to_le_bytes());
        assert_eq!(EnvRegisters::from_bytes(&image), Some(regs));
        assert_eq!(EnvRegisters::from_bytes(&[0; 17]), None);
    }
}
