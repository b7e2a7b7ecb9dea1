//! The amd64 register set as gdb sees it: the target description
//! (`target.xml`), the register numbering used by `g`/`G`/`p`/`P`, and the
//! conversion from and to the kernel's register files (`regs/int`,
//! `regs/float`, `regs/env`).
//!
//! Numbering (gdb's classic amd64 order, which the description follows so
//! gdb numbers them the same way): 0-15 rax rbx rcx rdx rsi rdi rbp rsp
//! r8-r15, 16 rip, 17 eflags, 18-23 cs ss ds es fs gs, 24-31 st0-st7,
//! 32-39 fctrl fstat ftag fiseg fioff foseg fooff fop, 40-55 xmm0-xmm15,
//! 56 mxcsr, 57 fs_base, 58 gs_base.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use abi::{EnvRegisters, FloatRegisters, IntRegisters};

/// One register of the description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegDesc {
    pub name: &'static str,
    /// Size in bytes.
    pub size: usize,
    /// The XML type.
    pub ty: &'static str,
    /// The XML feature it belongs to.
    pub feature: Feature,
    pub group: Option<&'static str>,
}

/// The description's features, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    Core,
    Sse,
    Segments,
}

impl Feature {
    fn name(self) -> &'static str {
        match self {
            Feature::Core => "org.gnu.gdb.i386.core",
            Feature::Sse => "org.gnu.gdb.i386.sse",
            Feature::Segments => "org.gnu.gdb.i386.segments",
        }
    }
}

const fn reg(name: &'static str, size: usize, ty: &'static str, feature: Feature) -> RegDesc {
    RegDesc {
        name,
        size,
        ty,
        feature,
        group: None,
    }
}

const fn fpu(name: &'static str) -> RegDesc {
    RegDesc {
        name,
        size: 4,
        ty: "int",
        feature: Feature::Core,
        group: Some("float"),
    }
}

const fn xmm(name: &'static str) -> RegDesc {
    reg(name, 16, "vec128", Feature::Sse)
}

use Feature::{Core, Segments, Sse};

/// Number of registers.
pub const COUNT: usize = 59;

pub const RIP: usize = 16;
pub const RSP: usize = 7;
pub const RBP: usize = 6;

/// Every register, by number.
pub const REGISTERS: [RegDesc; COUNT] = [
    reg("rax", 8, "int64", Core),
    reg("rbx", 8, "int64", Core),
    reg("rcx", 8, "int64", Core),
    reg("rdx", 8, "int64", Core),
    reg("rsi", 8, "int64", Core),
    reg("rdi", 8, "int64", Core),
    reg("rbp", 8, "data_ptr", Core),
    reg("rsp", 8, "data_ptr", Core),
    reg("r8", 8, "int64", Core),
    reg("r9", 8, "int64", Core),
    reg("r10", 8, "int64", Core),
    reg("r11", 8, "int64", Core),
    reg("r12", 8, "int64", Core),
    reg("r13", 8, "int64", Core),
    reg("r14", 8, "int64", Core),
    reg("r15", 8, "int64", Core),
    reg("rip", 8, "code_ptr", Core),
    reg("eflags", 4, "i386_eflags", Core),
    reg("cs", 4, "int32", Core),
    reg("ss", 4, "int32", Core),
    reg("ds", 4, "int32", Core),
    reg("es", 4, "int32", Core),
    reg("fs", 4, "int32", Core),
    reg("gs", 4, "int32", Core),
    reg("st0", 10, "i387_ext", Core),
    reg("st1", 10, "i387_ext", Core),
    reg("st2", 10, "i387_ext", Core),
    reg("st3", 10, "i387_ext", Core),
    reg("st4", 10, "i387_ext", Core),
    reg("st5", 10, "i387_ext", Core),
    reg("st6", 10, "i387_ext", Core),
    reg("st7", 10, "i387_ext", Core),
    fpu("fctrl"),
    fpu("fstat"),
    fpu("ftag"),
    fpu("fiseg"),
    fpu("fioff"),
    fpu("foseg"),
    fpu("fooff"),
    fpu("fop"),
    xmm("xmm0"),
    xmm("xmm1"),
    xmm("xmm2"),
    xmm("xmm3"),
    xmm("xmm4"),
    xmm("xmm5"),
    xmm("xmm6"),
    xmm("xmm7"),
    xmm("xmm8"),
    xmm("xmm9"),
    xmm("xmm10"),
    xmm("xmm11"),
    xmm("xmm12"),
    xmm("xmm13"),
    xmm("xmm14"),
    xmm("xmm15"),
    RegDesc {
        name: "mxcsr",
        size: 4,
        ty: "i386_mxcsr",
        feature: Sse,
        group: Some("vector"),
    },
    reg("fs_base", 8, "int", Segments),
    reg("gs_base", 8, "int", Segments),
];

/// Size of the `g` image in bytes.
pub const G_SIZE: usize = {
    let mut total = 0;
    let mut i = 0;
    while i < COUNT {
        total += REGISTERS[i].size;
        i += 1;
    }
    total
};

/// Byte offset of register `n` in the `g` image.
pub fn offset(n: usize) -> Option<usize> {
    (n < COUNT).then(|| REGISTERS[..n].iter().map(|r| r.size).sum())
}

const EFLAGS_FIELDS: &[(&str, u8)] = &[
    ("CF", 0),
    ("", 1),
    ("PF", 2),
    ("AF", 4),
    ("ZF", 6),
    ("SF", 7),
    ("TF", 8),
    ("IF", 9),
    ("DF", 10),
    ("OF", 11),
    ("NT", 14),
    ("RF", 16),
    ("VM", 17),
    ("AC", 18),
    ("VIF", 19),
    ("VIP", 20),
    ("ID", 21),
];

const MXCSR_FIELDS: &[(&str, u8)] = &[
    ("IE", 0),
    ("DE", 1),
    ("ZE", 2),
    ("OE", 3),
    ("UE", 4),
    ("PE", 5),
    ("DAZ", 6),
    ("IM", 7),
    ("DM", 8),
    ("ZM", 9),
    ("OM", 10),
    ("UM", 11),
    ("PM", 12),
    ("FZ", 15),
];

fn flags(xml: &mut String, id: &str, fields: &[(&str, u8)]) {
    let _ = writeln!(xml, "  <flags id=\"{id}\" size=\"4\">");
    for (name, bit) in fields {
        let _ = writeln!(
            xml,
            "    <field name=\"{name}\" start=\"{bit}\" end=\"{bit}\"/>"
        );
    }
    xml.push_str("  </flags>\n");
}

fn sse_types(xml: &mut String) {
    for (id, ty, count) in [
        ("v4f", "ieee_single", 4),
        ("v2d", "ieee_double", 2),
        ("v16i8", "int8", 16),
        ("v8i16", "int16", 8),
        ("v4i32", "int32", 4),
        ("v2i64", "int64", 2),
    ] {
        let _ = writeln!(
            xml,
            "  <vector id=\"{id}\" type=\"{ty}\" count=\"{count}\"/>"
        );
    }
    xml.push_str("  <union id=\"vec128\">\n");
    for (name, ty) in [
        ("v4_float", "v4f"),
        ("v2_double", "v2d"),
        ("v16_int8", "v16i8"),
        ("v8_int16", "v8i16"),
        ("v4_int32", "v4i32"),
        ("v2_int64", "v2i64"),
        ("uint128", "uint128"),
    ] {
        let _ = writeln!(xml, "    <field name=\"{name}\" type=\"{ty}\"/>");
    }
    xml.push_str("  </union>\n");
    flags(xml, "i386_mxcsr", MXCSR_FIELDS);
}

/// The target description gdb reads with
/// `qXfer:features:read:target.xml`.
pub fn target_xml() -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target version=\"1.0\">\n  <architecture>i386:x86-64</architecture>\n",
    );
    let mut current: Option<Feature> = None;
    for (n, r) in REGISTERS.iter().enumerate() {
        if current != Some(r.feature) {
            if current.is_some() {
                xml.push_str("</feature>\n");
            }
            let _ = writeln!(xml, "<feature name=\"{}\">", r.feature.name());
            match r.feature {
                Core => flags(&mut xml, "i386_eflags", EFLAGS_FIELDS),
                Sse => sse_types(&mut xml),
                Segments => {}
            }
            current = Some(r.feature);
        }
        let _ = write!(
            xml,
            "  <reg name=\"{}\" bitsize=\"{}\" type=\"{}\" regnum=\"{n}\"",
            r.name,
            r.size * 8,
            r.ty
        );
        if let Some(group) = r.group {
            let _ = write!(xml, " group=\"{group}\"");
        }
        xml.push_str("/>\n");
    }
    xml.push_str("</feature>\n</target>\n");
    xml
}

/// The x87 tag word gdb shows (two bits per physical register: 0 valid,
/// 1 zero, 2 special, 3 empty), rebuilt from FXSAVE's abridged tag (one
/// bit per physical register: 1 = not empty) and the register contents.
pub fn full_tag(abridged: u8, fsw: u16, st: &[u128; 8]) -> u16 {
    let top = usize::from((fsw >> 11) & 7);
    let mut tag = 0u16;
    for phys in 0..8 {
        let t = if abridged & (1 << phys) == 0 {
            3
        } else {
            let value = st[(phys + 8 - top) % 8];
            let exponent = ((value >> 64) as u16) & 0x7fff;
            let mantissa = value as u64;
            if exponent == 0x7fff {
                2
            } else if exponent == 0 {
                if mantissa == 0 {
                    1
                } else {
                    2
                }
            } else if mantissa >> 63 == 0 {
                2
            } else {
                0
            }
        };
        tag |= t << (2 * phys);
    }
    tag
}

/// FXSAVE's abridged tag from a full tag word.
pub fn abridged_tag(full: u16) -> u8 {
    (0..8)
        .filter(|phys| (full >> (2 * phys)) & 3 != 3)
        .fold(0u8, |t, phys| t | 1 << phys)
}

/// Why a register write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegError {
    /// No such register number.
    NoSuchRegister,
    /// The value is not the register's size.
    BadSize,
}

/// Which kernel register file a register lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum File {
    Int,
    Float,
    Env,
    /// Not backed by anything (ds, es, gs: reads 0, writes ignored).
    None,
}

/// Which file register `n` is in (`None` for an unknown number).
pub fn file_of(n: usize) -> Option<File> {
    Some(match n {
        0..=19 | 22 => File::Int,
        20 | 21 | 23 => File::None,
        24..=56 => File::Float,
        57 | 58 => File::Env,
        _ => return None,
    })
}

/// The three register files of a stopped tracee.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    pub int: IntRegisters,
    pub float: FloatRegisters,
    pub env: EnvRegisters,
}

fn gpr(int: &mut IntRegisters, n: usize) -> Option<&mut usize> {
    Some(match n {
        0 => &mut int.rax,
        1 => &mut int.rbx,
        2 => &mut int.rcx,
        3 => &mut int.rdx,
        4 => &mut int.rsi,
        5 => &mut int.rdi,
        6 => &mut int.rbp,
        7 => &mut int.rsp,
        8 => &mut int.r8,
        9 => &mut int.r9,
        10 => &mut int.r10,
        11 => &mut int.r11,
        12 => &mut int.r12,
        13 => &mut int.r13,
        14 => &mut int.r14,
        15 => &mut int.r15,
        16 => &mut int.rip,
        _ => return None,
    })
}

fn u32_of(bytes: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(b)
}

fn u64_of(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(b)
}

fn u128_of(bytes: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    b[..bytes.len()].copy_from_slice(bytes);
    u128::from_le_bytes(b)
}

fn low32(v: usize, bits: u32) -> usize {
    (v & !0xffff_ffff) | bits as usize
}

impl Registers {
    /// Register `n` as little-endian bytes of its size.
    pub fn get(&self, n: usize) -> Option<Vec<u8>> {
        let desc = REGISTERS.get(n)?;
        let mut int = self.int;
        let f = self.float;
        let st = f.st_space;
        let xmm = f.xmm_space;
        let value: u128 = match n {
            0..=16 => *gpr(&mut int, n)? as u128,
            17 => (int.rflags as u32).into(),
            18 => (int.cs as u32).into(),
            19 => (int.ss as u32).into(),
            20 | 21 | 23 => 0,
            22 => (int.fs as u32).into(),
            24..=31 => st[n - 24] & ((1u128 << 80) - 1),
            32 => f.fcw.into(),
            33 => f.fsw.into(),
            34 => full_tag(f.ftw, f.fsw, &st).into(),
            35 => (f.fip >> 32).into(),
            36 => (f.fip as u32).into(),
            37 => (f.fdp >> 32).into(),
            38 => (f.fdp as u32).into(),
            39 => (f.fop & 0x7ff).into(),
            40..=55 => xmm[n - 40],
            56 => f.mxcsr.into(),
            57 => self.env.fsbase.into(),
            58 => self.env.gsbase.into(),
            _ => return None,
        };
        Some(value.to_le_bytes()[..desc.size].to_vec())
    }

    /// Sets register `n` from little-endian `bytes` of exactly its size.
    /// Values the kernel does not let a tracer change (cs, ss, fs) are
    /// stored here anyway; the kernel ignores them.
    pub fn set(&mut self, n: usize, bytes: &[u8]) -> Result<(), RegError> {
        let desc = REGISTERS.get(n).ok_or(RegError::NoSuchRegister)?;
        if bytes.len() != desc.size {
            return Err(RegError::BadSize);
        }
        let f = &mut self.float;
        match n {
            0..=16 => {
                *gpr(&mut self.int, n).ok_or(RegError::NoSuchRegister)? = u64_of(bytes) as usize
            }
            17 => self.int.rflags = low32(self.int.rflags, u32_of(bytes)),
            18 => self.int.cs = low32(self.int.cs, u32_of(bytes)),
            19 => self.int.ss = low32(self.int.ss, u32_of(bytes)),
            20 | 21 | 23 => {}
            22 => self.int.fs = low32(self.int.fs, u32_of(bytes)),
            24..=31 => {
                let mut st = f.st_space;
                st[n - 24] = u128_of(bytes);
                f.st_space = st;
            }
            32 => f.fcw = u32_of(bytes) as u16,
            33 => f.fsw = u32_of(bytes) as u16,
            34 => f.ftw = abridged_tag(u32_of(bytes) as u16),
            35 => f.fip = (f.fip & 0xffff_ffff) | u64::from(u32_of(bytes)) << 32,
            36 => f.fip = (f.fip & !0xffff_ffff) | u64::from(u32_of(bytes)),
            37 => f.fdp = (f.fdp & 0xffff_ffff) | u64::from(u32_of(bytes)) << 32,
            38 => f.fdp = (f.fdp & !0xffff_ffff) | u64::from(u32_of(bytes)),
            39 => f.fop = (u32_of(bytes) & 0x7ff) as u16,
            40..=55 => {
                let mut xmm = f.xmm_space;
                xmm[n - 40] = u128_of(bytes);
                f.xmm_space = xmm;
            }
            56 => f.mxcsr = u32_of(bytes),
            57 => self.env.fsbase = u64_of(bytes),
            58 => self.env.gsbase = u64_of(bytes),
            _ => return Err(RegError::NoSuchRegister),
        }
        Ok(())
    }

    /// The `g` image: every register in order.
    pub fn to_g(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(G_SIZE);
        for n in 0..COUNT {
            out.extend_from_slice(&self.get(n).unwrap_or_default());
        }
        out
    }

    /// Applies a `G` image. gdb may send a shorter image (the registers it
    /// knows); it must end on a register boundary.
    pub fn set_from_g(&mut self, image: &[u8]) -> Result<(), RegError> {
        if image.len() > G_SIZE {
            return Err(RegError::BadSize);
        }
        let mut at = 0;
        let mut updated = *self;
        for (n, desc) in REGISTERS.iter().enumerate() {
            if at == image.len() {
                break;
            }
            let end = at + desc.size;
            let bytes = image.get(at..end).ok_or(RegError::BadSize)?;
            updated.set(n, bytes)?;
            at = end;
        }
        *self = updated;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Registers {
        let mut st = [0u128; 8];
        // st0 = 1.0 (exponent 0x3fff, integer bit set), st1 = 0.0
        st[0] = (0x3fffu128 << 64) | (1u128 << 63);
        st[1] = 0;
        let mut xmm = [0u128; 16];
        for (i, x) in xmm.iter_mut().enumerate() {
            *x = 0x0101_0101_0101_0101_0101_0101_0101_0101u128 * (i as u128 + 1);
        }
        Registers {
            int: IntRegisters {
                rax: 0x1111,
                rbx: 0x2222,
                rsp: 0x7fff_0000,
                rip: 0x40_1000,
                rflags: 0x246,
                cs: 0x2b,
                ss: 0x23,
                fs: 0x33,
                r15: 0xf15,
                ..IntRegisters::default()
            },
            float: FloatRegisters {
                fcw: 0x37f,
                // TOP = 6: st0 is physical 6, st1 physical 7.
                fsw: 6 << 11,
                ftw: 0b1100_0000,
                fop: 0xffff,
                fip: 0x1234_5678_9abc_def0,
                fdp: 0x0fed_cba9_8765_4321,
                mxcsr: 0x1f80,
                st_space: st,
                xmm_space: xmm,
                ..FloatRegisters::default()
            },
            env: EnvRegisters {
                fsbase: 0x5000,
                gsbase: 0x6000,
            },
        }
    }

    #[test]
    fn layout() {
        assert_eq!(G_SIZE, 552);
        assert_eq!(offset(0), Some(0));
        assert_eq!(offset(RIP), Some(128));
        assert_eq!(offset(17), Some(136));
        assert_eq!(offset(24), Some(164));
        assert_eq!(offset(32), Some(244));
        assert_eq!(offset(40), Some(276));
        assert_eq!(offset(56), Some(532));
        assert_eq!(offset(58), Some(544));
        assert_eq!(offset(COUNT), None);
        for n in 0..COUNT {
            assert!(file_of(n).is_some(), "{n}");
        }
        assert_eq!(file_of(COUNT), None);
    }

    #[test]
    fn xml_lists_every_register_in_order() {
        let xml = target_xml();
        assert!(xml.contains("<architecture>i386:x86-64</architecture>"));
        let mut at = 0;
        for (n, r) in REGISTERS.iter().enumerate() {
            let needle = alloc::format!("<reg name=\"{}\" bitsize=\"{}\"", r.name, r.size * 8);
            let found = xml[at..]
                .find(&needle)
                .unwrap_or_else(|| panic!("{needle}"));
            at += found + needle.len();
            assert!(xml[at..].starts_with(&alloc::format!(" type=\"{}\" regnum=\"{n}\"", r.ty)));
        }
        assert_eq!(xml.matches("<feature ").count(), 3);
        assert_eq!(xml.matches("</feature>").count(), 3);
    }

    #[test]
    fn g_image() {
        let regs = sample();
        let g = regs.to_g();
        assert_eq!(g.len(), G_SIZE);
        assert_eq!(&g[0..8], &0x1111u64.to_le_bytes());
        assert_eq!(&g[8..16], &0x2222u64.to_le_bytes());
        assert_eq!(&g[56..64], &0x7fff_0000u64.to_le_bytes());
        assert_eq!(&g[120..128], &0xf15u64.to_le_bytes());
        assert_eq!(&g[128..136], &0x40_1000u64.to_le_bytes());
        assert_eq!(&g[136..140], &0x246u32.to_le_bytes());
        assert_eq!(&g[140..144], &0x2bu32.to_le_bytes());
        assert_eq!(&g[144..148], &0x23u32.to_le_bytes());
        assert_eq!(&g[156..160], &0x33u32.to_le_bytes());
        // st0 = 1.0 as 10 bytes.
        assert_eq!(&g[164..174], &[0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]);
        assert_eq!(regs.get(32), Some(alloc::vec![0x7f, 0x03, 0, 0]));
        // st0 (phys 6) valid, st1 (phys 7) zero, others empty.
        assert_eq!(regs.get(34), Some(0x4fffu32.to_le_bytes().to_vec()));
        assert_eq!(regs.get(35), Some(0x1234_5678u32.to_le_bytes().to_vec()));
        assert_eq!(regs.get(36), Some(0x9abc_def0u32.to_le_bytes().to_vec()));
        assert_eq!(regs.get(39), Some(0x7ffu32.to_le_bytes().to_vec()));
        assert_eq!(regs.get(41).unwrap()[0], 2);
        assert_eq!(regs.get(56), Some(0x1f80u32.to_le_bytes().to_vec()));
        assert_eq!(regs.get(57), Some(0x5000u64.to_le_bytes().to_vec()));
        assert_eq!(regs.get(COUNT), None);
    }

    #[test]
    fn g_round_trip() {
        let regs = sample();
        let mut copy = Registers::default();
        copy.set_from_g(&regs.to_g()).unwrap();
        let mut expected = regs;
        expected.float.fop &= 0x7ff;
        assert_eq!(copy.int, expected.int);
        assert_eq!({ copy.float.fip }, { expected.float.fip });
        assert_eq!({ copy.float.ftw }, { expected.float.ftw });
        assert_eq!({ copy.float.xmm_space }, { expected.float.xmm_space });
        assert_eq!({ copy.float.st_space }, { expected.float.st_space });
        assert_eq!(copy.env, expected.env);
        assert_eq!(copy.to_g(), regs.to_g());
    }

    #[test]
    fn bad_writes_change_nothing() {
        let mut regs = sample();
        let before = regs;
        assert_eq!(regs.set(0, &[1, 2, 3]), Err(RegError::BadSize));
        assert_eq!(regs.set(COUNT, &[0; 8]), Err(RegError::NoSuchRegister));
        let mut g = regs.to_g();
        g[0] = 0x99;
        assert_eq!(regs.set_from_g(&g[..7]), Err(RegError::BadSize));
        g.push(0);
        assert_eq!(regs.set_from_g(&g), Err(RegError::BadSize));
        assert_eq!(regs, before);
        // A short image that ends on a boundary sets only those registers.
        regs.set_from_g(&g[..8]).unwrap();
        assert_eq!(regs.int.rax, 0x1199);
        assert_eq!(regs.int.rbx, 0x2222);
    }

    #[test]
    fn single_registers() {
        let mut regs = sample();
        regs.set(17, &0x0000_0ad5u32.to_le_bytes()).unwrap();
        assert_eq!(regs.int.rflags, 0xad5);
        regs.set(RIP, &0x40_2000u64.to_le_bytes()).unwrap();
        assert_eq!(regs.int.rip, 0x40_2000);
        regs.set(20, &[1, 2, 3, 4]).unwrap();
        assert_eq!(regs.get(20), Some(alloc::vec![0, 0, 0, 0]));
        regs.set(34, &0xffffu32.to_le_bytes()).unwrap();
        assert_eq!({ regs.float.ftw }, 0);
        regs.set(35, &0xaau32.to_le_bytes()).unwrap();
        assert_eq!({ regs.float.fip }, 0x0000_00aa_9abc_def0);
        regs.set(58, &7u64.to_le_bytes()).unwrap();
        assert_eq!(regs.env.gsbase, 7);
    }

    #[test]
    fn tags() {
        let st = [0u128; 8];
        assert_eq!(full_tag(0, 0, &st), 0xffff);
        assert_eq!(full_tag(0xff, 0, &st), 0x5555);
        // NaN/infinity exponent: special.
        let mut st = [0u128; 8];
        st[0] = 0x7fffu128 << 64;
        assert_eq!(full_tag(1, 0, &st) & 3, 2);
        // Denormal (exponent 0, mantissa non-zero): special.
        st[0] = 1;
        assert_eq!(full_tag(1, 0, &st) & 3, 2);
        // Unnormal (integer bit clear): special.
        st[0] = (0x3fffu128 << 64) | 1;
        assert_eq!(full_tag(1, 0, &st) & 3, 2);
        for full in [0u16, 0xffff, 0x5555, 0xfff0, 0x3ffc] {
            let abridged = abridged_tag(full);
            for phys in 0..8 {
                assert_eq!(abridged & (1 << phys) != 0, (full >> (2 * phys)) & 3 != 3);
            }
        }
    }
}
