//! `proc:<pid>/mem`: reading the tracee's stack, writing what it then sees,
//! bulk transfers, short transfers at the end of a mapping, EFAULT and
//! EINVAL at the edges, `Tracer::read_cstr` up to an unmapped page, a
//! breakpoint planted in read-only text, and untouched zero pages.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use rt::test::{expect_eq, expect_errno, Ctx};
use syscall::error::{EFAULT, EINVAL};
use syscall::flag::O_RDWR;
use tracer::{open_proc, seek_to};

use crate::probes::{self, bp, bulk_byte, FS_TARGET, OUT, STACK_PUSHED, STACK_SP, UNTOUCHED};
use testkit::{start, Tracee};

const PAGE: u64 = 4096;
const USER_END: u64 = 0x0000_8000_0000_0000;

fn parked() -> Result<Tracee, String> {
    let mut tr = start(|| {
        probes::park();
        0
    })?;
    tr.cont_to(bp::park())?;
    Ok(tr)
}

/// The tracee pushes three qwords and publishes rsp; the tracer finds rsp
/// through `mem` and reads the qwords there.
pub fn read_stack() -> Result<(), String> {
    // Popped in reverse push order.
    let popped = [STACK_PUSHED[2], STACK_PUSHED[1], STACK_PUSHED[0]];
    let mut tr = start(move || probes::run_stack(popped))?;
    let regs = tr.cont_to(bp::stack1())?;
    let sp = tr.peek_u64s::<1>(STACK_SP.addr())?[0];
    expect_eq(
        "rsp the tracee published (read through mem)",
        sp,
        regs.rsp as u64,
    )?;
    let words = tr.peek_u64s::<3>(sp)?;
    expect_eq("the qwords at rsp", words, popped)?;
    tr.skip_int3()?;
    tr.cont_to(bp::stack2())?;
    tr.finish()
}

/// Bytes written to the stack through `mem` read back and are what the
/// tracee pops.
pub fn write_stack() -> Result<(), String> {
    let new = [
        0x5EED_0000_0000_00A1u64,
        0x5EED_0000_0000_00A2,
        0x5EED_0000_0000_00A3,
    ];
    let mut tr = start(move || probes::run_stack(new))?;
    let regs = tr.cont_to(bp::stack1())?;
    let sp = regs.rsp as u64;
    let mut bytes = Vec::new();
    for w in new {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    let n = tr.t().write_mem(sp, &bytes).ctx("write mem at rsp")?;
    expect_eq("bytes written at rsp", n, 24)?;
    expect_eq("qwords read back at rsp", tr.peek_u64s::<3>(sp)?, new)?;
    tr.skip_int3()?;
    tr.cont_to(bp::stack2())?;
    expect_eq(
        "qwords the tracee popped",
        tr.peek_u64s::<3>(OUT.addr())?,
        new,
    )?;
    tr.finish()
}

fn first_mismatch(got: &[u8], want: impl Fn(usize) -> u8) -> Option<usize> {
    got.iter().enumerate().position(|(i, &b)| b != want(i))
}

/// 64 KiB in one read and one write (16 pages and more).
pub fn bulk() -> Result<(), String> {
    let mut tr = start(probes::run_bulk)?;
    tr.cont_to(bp::park())?;
    let base = probes::BULK.addr();
    let len = 64 * 1024;
    let mut buf = vec![0u8; len];
    let n = tr.t().read_mem(base, &mut buf).ctx("read 64 KiB")?;
    expect_eq("bytes of the 64 KiB read", n, len)?;
    if let Some(i) = first_mismatch(&buf, |i| bulk_byte(i, 1)) {
        return Err(format!(
            "64 KiB read: byte {} is {:#x}, expected {:#x}",
            i,
            buf[i],
            bulk_byte(i, 1)
        ));
    }
    let pattern: Vec<u8> = (0..len).map(|i| bulk_byte(i, 2)).collect();
    let n = tr.t().write_mem(base, &pattern).ctx("write 64 KiB")?;
    expect_eq("bytes of the 64 KiB write", n, len)?;
    // Read back from an unaligned start across every page.
    let (skip, tail) = (100, 200);
    let mut back = vec![0u8; len - skip - tail];
    let n = tr
        .t()
        .read_mem(base + skip as u64, &mut back)
        .ctx("read back")?;
    expect_eq("bytes read back", n, back.len())?;
    if let Some(i) = first_mismatch(&back, |i| bulk_byte(i + skip, 2)) {
        return Err(format!(
            "read back: byte {} is {:#x}, expected {:#x}",
            i + skip,
            back[i],
            bulk_byte(i + skip, 2)
        ));
    }
    // The tracee checks the whole area itself (exit 3 if it differs).
    tr.finish()
}

/// Whether one byte at `addr` reads; `Err` for an error other than EFAULT.
fn readable(tr: &mut Tracee, addr: u64) -> Result<bool, String> {
    let mut b = [0u8; 1];
    match tr.t().read_mem(addr, &mut b) {
        Ok(1) => Ok(true),
        Ok(n) => Err(format!("1-byte read at {:#x} returned {}", addr, n)),
        Err(e) if e.errno == EFAULT => Ok(false),
        Err(e) => Err(format!("read at {:#x}: {}", addr, rt::errno::describe(&e))),
    }
}

/// The end of the mapping that holds the stack (first unreadable page above
/// the page of `sp`).
fn stack_end(tr: &mut Tracee, sp: u64) -> Result<u64, String> {
    let mut page = sp & !(PAGE - 1);
    for _ in 0..1024 {
        if !readable(tr, page + PAGE)? {
            return Ok(page + PAGE);
        }
        page += PAGE;
    }
    Err(format!("no unmapped page within 4 MiB above {:#x}", sp))
}

/// The start of the mapping that holds the stack.
fn stack_start(tr: &mut Tracee, sp: u64) -> Result<u64, String> {
    let mut page = sp & !(PAGE - 1);
    for _ in 0..4096 {
        if !readable(tr, page - PAGE)? {
            return Ok(page);
        }
        page -= PAGE;
    }
    Err(format!("no unmapped page within 16 MiB below {:#x}", sp))
}

/// A read or write starting 8 bytes before the first unmapped page moves
/// only those 8 bytes.
pub fn short_at_mapping_end() -> Result<(), String> {
    let mut tr = parked()?;
    let sp = tr.t().regs().ctx("read regs/int")?.rsp as u64;
    let end = stack_end(&mut tr, sp)?;
    let at = end - 8;
    let mut buf = [0u8; 64];
    let n = tr.t().read_mem(at, &mut buf).ctx(&format!(
        "read 64 bytes at {:#x} (stack end {:#x})",
        at, end
    ))?;
    expect_eq(&format!("bytes read at {:#x}, 8 before the end", at), n, 8)?;
    let original: [u8; 8] = buf[..8].try_into().unwrap_or_default();
    let mut data = [0xA5u8; 64];
    for (d, o) in data.iter_mut().zip(original) {
        *d = !o;
    }
    let n = tr
        .t()
        .write_mem(at, &data)
        .ctx(&format!("write 64 bytes at {:#x}", at))?;
    expect_eq(
        &format!("bytes written at {:#x}, 8 before the end", at),
        n,
        8,
    )?;
    let back = tr.peek::<8>(at)?;
    expect_eq(
        "the 8 bytes read back",
        back,
        data[..8].try_into().unwrap_or_default(),
    )?;
    let n = tr.t().write_mem(at, &original).ctx("restore the 8 bytes")?;
    expect_eq("bytes restored", n, 8)?;
    expect_errno(
        &format!("read at the end {:#x}", end),
        tr.t().read_mem(end, &mut buf),
        EFAULT,
    )?;
    expect_errno(
        &format!("write at the end {:#x}", end),
        tr.t().write_mem(end, &data),
        EFAULT,
    )?;
    tr.finish()
}

/// `Tracer::read_cstr` returns the bytes before the NUL. A string that
/// runs into an unmapped page without a NUL ends there: the bytes read are
/// returned, not `EFAULT` (which is only for a first byte that is
/// unmapped).
pub fn read_cstr_at_mapping_end() -> Result<(), String> {
    let mut tr = parked()?;
    let sp = tr.t().regs().ctx("read regs/int")?.rsp as u64;
    let end = stack_end(&mut tr, sp)?;
    // Longer than read_cstr's 64-byte chunks, ending at the unmapped page.
    let len = 100;
    let at = end - len as u64;
    let mut original = vec![0u8; len];
    let n = tr.t().read_mem(at, &mut original).ctx("save the bytes")?;
    expect_eq("bytes saved", n, len)?;
    let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
    let n = tr.t().write_mem(at, &text).ctx("write the string")?;
    expect_eq("bytes written", n, len)?;
    let result = (|| -> Result<(), String> {
        let got = tr
            .t()
            .read_cstr(at, 4096)
            .ctx(&format!("read_cstr at {:#x}, up to the end {:#x}", at, end))?;
        expect_eq(
            "the string that ends at the unmapped page",
            got,
            text.clone(),
        )?;
        let got = tr.t().read_cstr(at, 10).ctx("read_cstr, max 10")?;
        expect_eq("at most 10 bytes", got, text[..10].to_vec())?;
        let n = tr.t().write_mem(at + 70, &[0]).ctx("write a NUL")?;
        expect_eq("NUL written", n, 1)?;
        let got = tr.t().read_cstr(at, 4096).ctx("read_cstr with a NUL")?;
        expect_eq("the bytes before the NUL", got, text[..70].to_vec())
    })();
    let n = tr.t().write_mem(at, &original).ctx("restore the bytes")?;
    expect_eq("bytes restored", n, len)?;
    result?;
    expect_errno(
        &format!("read_cstr at the unmapped {:#x}", end),
        tr.t().read_cstr(end, 16),
        EFAULT,
    )?;
    tr.finish()
}

/// Transfers starting on an unmapped page are EFAULT, even when they would
/// reach mapped memory.
pub fn efault_unmapped() -> Result<(), String> {
    let mut tr = parked()?;
    let mut buf = [0u8; 64];
    for addr in [0u64, 0x1000] {
        expect_errno(
            &format!("read at {:#x}", addr),
            tr.t().read_mem(addr, &mut buf),
            EFAULT,
        )?;
        expect_errno(
            &format!("write at {:#x}", addr),
            tr.t().write_mem(addr, &buf),
            EFAULT,
        )?;
    }
    let sp = tr.t().regs().ctx("read regs/int")?.rsp as u64;
    let start = stack_start(&mut tr, sp)?;
    let n = tr
        .t()
        .read_mem(start, &mut buf)
        .ctx(&format!("read at the stack start {:#x}", start))?;
    expect_eq("bytes read at the stack start", n, 64)?;
    let below = start - 8;
    expect_errno(
        &format!("read 64 bytes at {:#x}, 8 below the stack", below),
        tr.t().read_mem(below, &mut buf),
        EFAULT,
    )?;
    expect_errno(
        &format!("write 64 bytes at {:#x}, 8 below the stack", below),
        tr.t().write_mem(below, &buf),
        EFAULT,
    )?;
    tr.finish()
}

/// Offsets from the end of user space up to 2^63 are valid positions where
/// transfers are EFAULT; seeks to 2^63 and above are EINVAL and leave the
/// position where it was.
pub fn kernel_addresses() -> Result<(), String> {
    let tr = parked()?;
    let fd = open_proc(tr.pid, "mem", O_RDWR).ctx("open mem")?;
    let result = (|| -> Result<(), String> {
        let mut buf = [0u8; 16];
        for addr in [
            USER_END,
            USER_END + 0x1000,
            0x7FFF_FFFF_FFFF_F000,
            0x7FFF_FFFF_FFFF_FFFF,
        ] {
            let pos = seek_to(fd, addr).ctx(&format!("lseek to {:#x}", addr))?;
            expect_eq("lseek result", pos, addr)?;
            expect_errno(
                &format!("read at {:#x}", addr),
                syscall::read(fd, &mut buf),
                EFAULT,
            )?;
            seek_to(fd, addr).ctx(&format!("lseek to {:#x}", addr))?;
            expect_errno(
                &format!("write at {:#x}", addr),
                syscall::write(fd, &buf),
                EFAULT,
            )?;
        }
        let known = (&raw const FS_TARGET) as u64;
        seek_to(fd, known).ctx("lseek to a known static")?;
        for bad in [
            1u64 << 63,
            0xFFFF_8000_0000_0000,
            0xFFFF_FFFF_8000_0000,
            u64::MAX,
        ] {
            expect_errno(&format!("lseek to {:#x}", bad), seek_to(fd, bad), EINVAL)?;
        }
        let mut word = [0u8; 8];
        let n = syscall::read(fd, &mut word).ctx("read after the refused seeks")?;
        expect_eq("bytes read after the refused seeks", n, 8)?;
        expect_eq(
            "value at the position before the refused seeks",
            u64::from_le_bytes(word),
            FS_TARGET,
        )?;
        Ok(())
    })();
    let _ = syscall::close(fd);
    result?;
    tr.finish()
}

/// Plant `int3` in the tracee's read-only text at a function it will call:
/// the tracee stops there; restore the byte, rip back, and it runs on.
pub fn plant_breakpoint() -> Result<(), String> {
    let mut tr = start(probes::run_victim)?;
    let addr = probes::victim as fn(u64) -> u64 as usize as u64;
    // SAFETY: `addr` is the first byte of a function of this program, which
    // is mapped and readable.
    let ours = unsafe { (addr as *const u8).read_volatile() };
    let original = tr.peek::<1>(addr)?[0];
    expect_eq("the tracee's text byte (same program)", original, ours)?;
    rt::ensure!(
        ours != 0xCC,
        "the victim already starts with int3 ({:#x})",
        ours
    );
    let n = tr
        .t()
        .write_mem(addr, &[0xCC])
        .ctx("write int3 into text")?;
    expect_eq("bytes written into text", n, 1)?;
    expect_eq("text byte read back", tr.peek::<1>(addr)?[0], 0xCC)?;
    // SAFETY: as above.
    let ours_after = unsafe { (addr as *const u8).read_volatile() };
    expect_eq("the tracer's own copy of the byte", ours_after, ours)?;

    tr.cont_to(addr)?;
    let n = tr
        .t()
        .write_mem(addr, &[original])
        .ctx("restore the byte")?;
    expect_eq("bytes restored", n, 1)?;
    expect_eq(
        "text byte after restoring",
        tr.peek::<1>(addr)?[0],
        original,
    )?;
    let mut regs = tr.t().regs().ctx("read regs/int")?;
    regs.rip = addr as usize;
    tr.t().set_regs(&regs).ctx("set rip to the function")?;
    let status = tr.cont_to_exit()?;
    rt::test::expect_exit("tracee (victim(14) == 43)", status, 0)
}

/// A static page nobody ever touched reads as zeros.
pub fn untouched_zero() -> Result<(), String> {
    let mut tr = parked()?;
    let base = UNTOUCHED.addr();
    let mut buf = vec![0xFFu8; 3 * PAGE as usize];
    let n = tr
        .t()
        .read_mem(base, &mut buf)
        .ctx(&format!("read {:#x}", base))?;
    expect_eq("bytes read", n, buf.len())?;
    if let Some(i) = buf.iter().position(|&b| b != 0) {
        return Err(format!(
            "untouched byte at {:#x} reads {:#x}",
            base + i as u64,
            buf[i]
        ));
    }
    tr.finish()
}
