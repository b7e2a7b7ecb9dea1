//! Tests for memory mappings: `fmap`/`funmap`/`mprotect` (and the old
//! `fmap`/`funmap`) with every rule's success and error cases, splits by
//! partial unmaps and protection changes, `SIGSEGV` after an unmap and on
//! a write to a read-only page, W+X refused, shared memory between parent
//! and child, private file mappings, `ENOMEM` with nothing changed,
//! `proc:<pid>/maps` (content and permission rule), `proc:<pid>/mem`
//! across a hole, and `sys:memory` back to its baseline.
#![no_std]
#![no_main]
#![warn(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use rt::process::{fork, wait};
use rt::test::{expect_eq, expect_errno, expect_exit, expect_killed, in_child, Ctx};
use rt::{ensure, Tests};
use syscall::data::{Map, OldMap};
use syscall::error::{Result, EACCES, EBADF, EEXIST, EFAULT, EINVAL, ENODEV, ENOMEM, EPERM};
use syscall::flag::{MapFlags, O_RDONLY, O_RDWR, SEEK_SET, SIGSEGV};
use syscall::number::{SYS_FMAP, SYS_FMAP_OLD, SYS_FUNMAP_OLD};

rt::entry!(main);

const PAGE: usize = 4096;
const ANON: usize = !0;
/// A free area the tests place fixed mappings in.
const FIXED: usize = 0x0000_0040_0000_0000;

const R: MapFlags = MapFlags::PROT_READ;
const RW: MapFlags =
    MapFlags::from_bits_truncate(MapFlags::PROT_READ.bits() | MapFlags::PROT_WRITE.bits());
const PRIVATE: MapFlags = MapFlags::MAP_PRIVATE;
const SHARED: MapFlags = MapFlags::MAP_SHARED;

fn main(args: &[&str]) -> i32 {
    let me = args.first().copied().unwrap_or("/bin/test-mmap");
    // Grow the heap once so that later allocations of the tests do not
    // take frames between two readings of `sys:memory`.
    if !rt::heap::reserve(1 << 20) {
        rt::println!("cannot map 1 MiB of heap");
        return 1;
    }

    let mut t = Tests::new();
    t.run("anonymous_private_read_write", anon_private);
    t.run("hint_used_when_free_else_elsewhere", hints);
    t.run("fixed_replaces_noreplace_eexist", fixed);
    t.run("malformed_requests_einval", malformed);
    t.run("bad_pointer_and_descriptor", bad_pointer_and_fd);
    t.run("writable_and_executable_eperm", wx_refused);
    t.run("partial_unmap_splits", partial_unmap);
    t.run("mprotect_splits_and_prot_none", mprotect_splits);
    t.run("sigsegv_after_unmap", segv_after_unmap);
    t.run("sigsegv_on_write_to_read_only", segv_read_only);
    t.run("fork_copies_private_mappings", fork_private);
    t.run("shared_between_parent_and_child", shared_parent_child);
    t.run("shared_frames_freed_with_last_user", shared_frames_freed);
    t.run("private_file_mapping", || file_mapping(me));
    t.run("file_mapping_errors", || file_errors(me));
    t.run("enomem_changes_nothing", enomem);
    t.run("old_fmap_and_funmap", old_calls);
    t.run("maps_content", || maps_content(me));
    t.run("maps_permission_rule", maps_permission);
    t.run("mem_across_a_hole", mem_hole);
    t.run("memory_back_to_baseline", baseline);
    t.run("runtime_heap_grows_by_mapping", heap_grows);
    t.finish()
}

fn fmap(fd: usize, addr: usize, size: usize, flags: MapFlags, offset: usize) -> Result<usize> {
    let map = Map {
        offset,
        size,
        flags,
        address: addr,
    };
    // SAFETY: the tests only map over memory nothing else uses (fresh or
    // their own fixed area).
    unsafe { syscall::fmap(fd, &map) }
}

fn anon(size: usize, flags: MapFlags) -> Result<usize> {
    fmap(ANON, 0, size, flags, 0)
}

fn funmap(addr: usize, len: usize) -> Result<usize> {
    // SAFETY: the tests unmap only their own mappings.
    unsafe { syscall::funmap(addr, len) }
}

fn mprotect(addr: usize, len: usize, flags: MapFlags) -> Result<usize> {
    // SAFETY: the tests change only their own mappings.
    unsafe { syscall::mprotect(addr, len, flags) }
}

fn peek(addr: usize) -> u8 {
    // SAFETY: callers pass mapped, readable addresses (or expect SIGSEGV
    // in a child).
    unsafe { core::ptr::read_volatile(addr as *const u8) }
}

fn poke(addr: usize, value: u8) {
    // SAFETY: callers pass mapped, writable addresses (or expect SIGSEGV
    // in a child).
    unsafe { core::ptr::write_volatile(addr as *mut u8, value) }
}

/// Runs `f` in a child that must die by `SIGSEGV`.
fn expect_segv(what: &str, f: impl FnOnce()) -> Result<(), String> {
    let pid = fork().ctx("fork")?;
    if pid == 0 {
        f();
        rt::process::exit(0);
    }
    let status = wait(pid).ctx("waitpid")?;
    expect_killed(what, status, SIGSEGV)
}

/// `frames_free` and `heap_used` of `sys:memory`.
fn memory() -> Result<(u64, u64), String> {
    let fd = syscall::open("sys:memory", O_RDONLY).ctx("open sys:memory")?;
    let mut buf = [0u8; 128];
    let n = rt::io::read(fd, &mut buf);
    let _ = syscall::close(fd);
    let n = n.ctx("read sys:memory")?;
    let text = core::str::from_utf8(&buf[..n]).map_err(|_| String::from("not UTF-8"))?;
    let field = |key: &str| -> Option<u64> {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
    };
    match (field("frames_free"), field("heap_used")) {
        (Some(f), Some(h)) => Ok((f, h)),
        _ => Err(format!("sys:memory: cannot parse {text:?}")),
    }
}

fn maps_of(pid: usize) -> Result<String> {
    let fd = syscall::open(format!("proc:{pid}/maps"), O_RDONLY)?;
    let text = rt::io::read_to_end(fd);
    let _ = syscall::close(fd);
    Ok(String::from_utf8_lossy(&text?).into_owned())
}

fn my_maps() -> Result<String, String> {
    maps_of(syscall::getpid().ctx("getpid")?).ctx("read proc:<self>/maps")
}

/// The line of `maps` that starts at `addr`.
fn line_at(maps: &str, addr: usize) -> Option<String> {
    let prefix = format!("{addr:016x}-");
    maps.lines()
        .find(|l| l.starts_with(&prefix))
        .map(String::from)
}

fn expect_line(
    maps: &str,
    start: usize,
    end: usize,
    perms: &str,
    what: &str,
) -> Result<(), String> {
    let want = format!("{start:016x}-{end:016x} {perms} ");
    match line_at(maps, start) {
        Some(l) if l.starts_with(&want) && l.ends_with(what) => Ok(()),
        other => Err(format!(
            "maps: wanted {want}... {what}, got {other:?} in\n{maps}"
        )),
    }
}

fn anon_private() -> Result<(), String> {
    let addr = anon(3 * PAGE, RW | PRIVATE).ctx("fmap")?;
    ensure!(addr % PAGE == 0, "address {addr:#x} not page aligned");
    for i in 0..3 * PAGE {
        ensure!(peek(addr + i) == 0, "byte {i} not zero");
    }
    poke(addr, 1);
    poke(addr + 3 * PAGE - 1, 2);
    ensure!(
        peek(addr) == 1 && peek(addr + 3 * PAGE - 1) == 2,
        "read back"
    );
    // A size that is not a whole number of pages is rounded up.
    let odd = anon(PAGE + 1, RW | PRIVATE).ctx("fmap of a page and a byte")?;
    poke(odd + 2 * PAGE - 1, 5);
    let maps = my_maps()?;
    expect_line(&maps, addr, addr + 3 * PAGE, "rw-", "[anon]")?;
    expect_line(&maps, odd, odd + 2 * PAGE, "rw-", "[anon]")?;
    funmap(addr, 3 * PAGE).ctx("funmap")?;
    funmap(odd, PAGE + 1).ctx("funmap of a page and a byte")?;
    ensure!(
        line_at(&my_maps()?, addr).is_none(),
        "the mapping is still listed"
    );
    // Unmapping what is not mapped is not an error.
    funmap(addr, PAGE).ctx("funmap of nothing")?;
    Ok(())
}

fn hints() -> Result<(), String> {
    let hint = FIXED + 0x10_0000;
    let a = fmap(ANON, hint, 2 * PAGE, RW | PRIVATE, 0).ctx("fmap with a free hint")?;
    expect_eq("address for a free hint", a, hint)?;
    let b = fmap(ANON, hint + PAGE, 2 * PAGE, RW | PRIVATE, 0).ctx("fmap with a used hint")?;
    ensure!(
        b + 2 * PAGE <= a || b >= a + 2 * PAGE,
        "the used hint gave an overlapping {b:#x}"
    );
    poke(a + PAGE, 7);
    poke(b, 8);
    ensure!(peek(a + PAGE) == 7, "the first mapping was changed");
    funmap(a, 2 * PAGE).ctx("funmap a")?;
    funmap(b, 2 * PAGE).ctx("funmap b")?;
    Ok(())
}

fn fixed() -> Result<(), String> {
    let fixed_flags = RW | PRIVATE | MapFlags::MAP_FIXED;
    let a = fmap(ANON, FIXED, 4 * PAGE, fixed_flags, 0).ctx("MAP_FIXED")?;
    expect_eq("MAP_FIXED address", a, FIXED)?;
    for i in 0..4 {
        poke(FIXED + i * PAGE, 0x11);
    }
    expect_errno(
        "MAP_FIXED_NOREPLACE over a mapping",
        fmap(
            ANON,
            FIXED + PAGE,
            PAGE,
            RW | PRIVATE | MapFlags::MAP_FIXED_NOREPLACE,
            0,
        ),
        EEXIST,
    )?;
    ensure!(peek(FIXED + PAGE) == 0x11, "NOREPLACE changed the memory");
    // MAP_FIXED over the middle replaces it (fresh zeros, new protection)
    // and splits the old mapping around it.
    fmap(
        ANON,
        FIXED + PAGE,
        2 * PAGE,
        R | PRIVATE | MapFlags::MAP_FIXED,
        0,
    )
    .ctx("MAP_FIXED over a mapping")?;
    ensure!(peek(FIXED + PAGE) == 0, "the replaced page kept its data");
    ensure!(
        peek(FIXED) == 0x11 && peek(FIXED + 3 * PAGE) == 0x11,
        "the pages around were changed"
    );
    let maps = my_maps()?;
    expect_line(&maps, FIXED, FIXED + PAGE, "rw-", "[anon]")?;
    expect_line(&maps, FIXED + PAGE, FIXED + 3 * PAGE, "r--", "[anon]")?;
    expect_line(&maps, FIXED + 3 * PAGE, FIXED + 4 * PAGE, "rw-", "[anon]")?;
    funmap(FIXED, 4 * PAGE).ctx("funmap")?;
    let b = fmap(
        ANON,
        FIXED,
        PAGE,
        RW | PRIVATE | MapFlags::MAP_FIXED_NOREPLACE,
        0,
    )
    .ctx("MAP_FIXED_NOREPLACE on a free range")?;
    expect_eq("NOREPLACE address", b, FIXED)?;
    funmap(FIXED, PAGE).ctx("funmap")?;
    Ok(())
}

fn malformed() -> Result<(), String> {
    let fixed_flags = RW | PRIVATE | MapFlags::MAP_FIXED;
    let cases: [(&str, usize, usize, MapFlags, usize); 10] = [
        ("zero size", 0, 0, RW | PRIVATE, 0),
        ("misaligned hint", FIXED + 1, PAGE, RW | PRIVATE, 0),
        ("misaligned fixed address", FIXED + 8, PAGE, fixed_flags, 0),
        ("fixed at address 0", 0, PAGE, fixed_flags, 0),
        (
            "fixed in the kernel half",
            0xFFFF_8000_0000_0000,
            PAGE,
            fixed_flags,
            0,
        ),
        (
            "fixed past the end of user space",
            0x7FFF_FFFF_F000,
            2 * PAGE,
            fixed_flags,
            0,
        ),
        ("neither shared nor private", 0, PAGE, RW, 0),
        ("both shared and private", 0, PAGE, RW | SHARED | PRIVATE, 0),
        ("anonymous with an offset", 0, PAGE, RW | PRIVATE, PAGE),
        (
            "size past the address space",
            0,
            usize::MAX - 10,
            RW | PRIVATE,
            0,
        ),
    ];
    let before = my_maps()?;
    for (what, addr, size, flags, offset) in cases {
        expect_errno(what, fmap(ANON, addr, size, flags, offset), EINVAL)?;
    }
    // Unknown flag bits.
    let mut raw = [0usize; 4];
    raw[1] = PAGE;
    raw[2] = (RW | PRIVATE).bits() | 0x100;
    // SAFETY: a raw fmap with a valid pointer to four words.
    let r = unsafe { syscall::syscall3(SYS_FMAP, ANON, raw.as_ptr() as usize, 32) };
    expect_errno("unknown flag bits", r, EINVAL)?;
    raw[2] = (RW | PRIVATE).bits();
    // SAFETY: as above, with a wrong size argument.
    let r = unsafe { syscall::syscall3(SYS_FMAP, ANON, raw.as_ptr() as usize, 24) };
    expect_errno("a Map size that is not size_of::<Map>()", r, EINVAL)?;
    // funmap and mprotect.
    let a = anon(2 * PAGE, RW | PRIVATE).ctx("fmap")?;
    expect_errno("funmap misaligned", funmap(a + 1, PAGE), EINVAL)?;
    expect_errno("funmap of zero bytes", funmap(a, 0), EINVAL)?;
    expect_errno(
        "funmap past user space",
        funmap(0x7FFF_FFFF_0000, 0x10_0000),
        EINVAL,
    )?;
    expect_errno("mprotect misaligned", mprotect(a + 8, PAGE, R), EINVAL)?;
    expect_errno("mprotect of zero bytes", mprotect(a, 0, R), EINVAL)?;
    expect_errno(
        "mprotect with map flags",
        mprotect(a, PAGE, R | PRIVATE),
        EINVAL,
    )?;
    expect_errno("mprotect over a hole", mprotect(a, 3 * PAGE, R), ENOMEM)?;
    expect_errno(
        "mprotect of nothing",
        mprotect(FIXED + 0x100_0000, PAGE, R),
        ENOMEM,
    )?;
    poke(a + PAGE, 3);
    ensure!(
        peek(a + PAGE) == 3,
        "the failed mprotect changed the mapping"
    );
    funmap(a, 2 * PAGE).ctx("funmap")?;
    expect_eq("maps after the failures", my_maps()?, before)?;
    Ok(())
}

fn bad_pointer_and_fd() -> Result<(), String> {
    // SAFETY: raw fmaps with pointers the kernel must refuse.
    let r = unsafe { syscall::syscall3(SYS_FMAP, ANON, 0, 32) };
    expect_errno("Map at address 0", r, EFAULT)?;
    // SAFETY: as above.
    let r = unsafe { syscall::syscall3(SYS_FMAP, ANON, 0xFFFF_8000_0000_0000, 32) };
    expect_errno("Map in the kernel half", r, EFAULT)?;
    expect_errno(
        "a closed descriptor",
        fmap(999, 0, PAGE, R | PRIVATE, 0),
        EBADF,
    )?;
    Ok(())
}

fn wx_refused() -> Result<(), String> {
    let wx = MapFlags::PROT_WRITE | MapFlags::PROT_EXEC;
    let before = my_maps()?;
    expect_errno("fmap W+X", anon(PAGE, wx | PRIVATE), EPERM)?;
    expect_errno("fmap RWX shared", anon(PAGE, wx | R | SHARED), EPERM)?;
    let a = anon(2 * PAGE, RW | PRIVATE).ctx("fmap")?;
    expect_errno("mprotect to W+X", mprotect(a, 2 * PAGE, wx | R), EPERM)?;
    // Our own text: executable, never made writable while executable.
    let text = main as *const () as usize & !(PAGE - 1);
    expect_errno(
        "mprotect of the text to W+X",
        mprotect(text, PAGE, wx | R),
        EPERM,
    )?;
    // Executable alone is fine, and then writable alone again.
    mprotect(a, PAGE, R | MapFlags::PROT_EXEC).ctx("mprotect to R+X")?;
    expect_line(&my_maps()?, a, a + PAGE, "r-x", "[anon]")?;
    mprotect(a, PAGE, RW).ctx("mprotect back to RW")?;
    poke(a, 1);
    funmap(a, 2 * PAGE).ctx("funmap")?;
    expect_eq("maps", my_maps()?, before)?;
    Ok(())
}

fn partial_unmap() -> Result<(), String> {
    let a = anon(4 * PAGE, RW | PRIVATE).ctx("fmap")?;
    for i in 0..4 {
        poke(a + i * PAGE, 0x40 + i as u8);
    }
    funmap(a + PAGE, PAGE).ctx("funmap of the second page")?;
    let maps = my_maps()?;
    expect_line(&maps, a, a + PAGE, "rw-", "[anon]")?;
    expect_line(&maps, a + 2 * PAGE, a + 4 * PAGE, "rw-", "[anon]")?;
    ensure!(line_at(&maps, a + PAGE).is_none(), "the hole is listed");
    for i in [0, 2, 3] {
        ensure!(
            peek(a + i * PAGE) == 0x40 + i as u8,
            "page {i} lost its data"
        );
    }
    expect_segv("touching the hole", || {
        peek(a + PAGE);
    })?;
    // Unmapping across the hole and into the last piece.
    funmap(a, 3 * PAGE).ctx("funmap across the hole")?;
    let maps = my_maps()?;
    expect_line(&maps, a + 3 * PAGE, a + 4 * PAGE, "rw-", "[anon]")?;
    ensure!(peek(a + 3 * PAGE) == 0x43, "the last page lost its data");
    funmap(a + 3 * PAGE, PAGE).ctx("funmap of the rest")?;
    Ok(())
}

fn mprotect_splits() -> Result<(), String> {
    let a = anon(3 * PAGE, RW | PRIVATE).ctx("fmap")?;
    for i in 0..3 {
        poke(a + i * PAGE, 0x50 + i as u8);
    }
    mprotect(a + PAGE, PAGE, R).ctx("mprotect of the middle page")?;
    let maps = my_maps()?;
    expect_line(&maps, a, a + PAGE, "rw-", "[anon]")?;
    expect_line(&maps, a + PAGE, a + 2 * PAGE, "r--", "[anon]")?;
    expect_line(&maps, a + 2 * PAGE, a + 3 * PAGE, "rw-", "[anon]")?;
    ensure!(peek(a + PAGE) == 0x51, "the read-only page cannot be read");
    poke(a, 1);
    poke(a + 2 * PAGE, 2);
    expect_segv("writing the read-only middle", || poke(a + PAGE, 9))?;
    // PROT_NONE keeps the data but allows nothing.
    mprotect(a + PAGE, PAGE, MapFlags::PROT_NONE).ctx("mprotect to PROT_NONE")?;
    expect_line(&my_maps()?, a + PAGE, a + 2 * PAGE, "---", "[anon]")?;
    expect_segv("reading a PROT_NONE page", || {
        peek(a + PAGE);
    })?;
    // One mprotect over all three pieces joins nothing but changes all.
    mprotect(a, 3 * PAGE, RW).ctx("mprotect of all")?;
    ensure!(peek(a + PAGE) == 0x51, "PROT_NONE lost the data");
    poke(a + PAGE, 0x61);
    let maps = my_maps()?;
    for i in 0..3 {
        expect_line(&maps, a + i * PAGE, a + (i + 1) * PAGE, "rw-", "[anon]")?;
    }
    funmap(a, 3 * PAGE).ctx("funmap")?;
    Ok(())
}

fn segv_after_unmap() -> Result<(), String> {
    let a = anon(2 * PAGE, RW | PRIVATE).ctx("fmap")?;
    poke(a, 1);
    funmap(a, 2 * PAGE).ctx("funmap")?;
    expect_segv("reading after funmap", || {
        peek(a);
    })?;
    expect_segv("writing after funmap", || poke(a + PAGE, 1))
}

fn segv_read_only() -> Result<(), String> {
    let a = anon(PAGE, R | PRIVATE).ctx("fmap read-only")?;
    ensure!(peek(a) == 0, "read-only page not zero");
    expect_segv("writing a read-only mapping", || poke(a, 1))?;
    let b = anon(PAGE, RW | PRIVATE).ctx("fmap")?;
    poke(b, 4);
    mprotect(b, PAGE, R).ctx("mprotect to read-only")?;
    expect_segv("writing after mprotect to read-only", || poke(b, 5))?;
    ensure!(peek(b) == 4, "data changed");
    funmap(a, PAGE).ctx("funmap")?;
    funmap(b, PAGE).ctx("funmap")?;
    Ok(())
}

fn fork_private() -> Result<(), String> {
    let a = anon(PAGE, RW | PRIVATE).ctx("fmap")?;
    poke(a, 10);
    in_child(|| {
        ensure!(peek(a) == 10, "the child does not see the parent's data");
        poke(a, 11);
        expect_line(&my_maps()?, a, a + PAGE, "rw-", "[anon]")
    })?;
    ensure!(peek(a) == 10, "the child's write reached the parent");
    funmap(a, PAGE).ctx("funmap")?;
    Ok(())
}

fn wait_byte(fd: usize) -> Result<u8, String> {
    let mut b = [0u8; 1];
    let n = rt::io::read(fd, &mut b).ctx("read pipe")?;
    ensure!(n == 1, "pipe closed");
    Ok(b[0])
}

fn shared_parent_child() -> Result<(), String> {
    let a = anon(2 * PAGE, RW | SHARED).ctx("fmap shared")?;
    expect_line(&my_maps()?, a, a + 2 * PAGE, "rw-", "[anon shared]")?;
    poke(a, 1);
    let (to_child_r, to_child_w) = rt::io::pipe(0).ctx("pipe")?;
    let (to_parent_r, to_parent_w) = rt::io::pipe(0).ctx("pipe")?;
    let pid = fork().ctx("fork")?;
    if pid == 0 {
        let ok = peek(a) == 1 && {
            poke(a + PAGE, 0xC1);
            let _ = rt::io::write_all(to_parent_w, b"w");
            wait_byte(to_child_r).is_ok() && peek(a + 5) == 0xA5
        };
        rt::process::exit(if ok { 0 } else { 1 });
    }
    let r = (|| {
        wait_byte(to_parent_r)?;
        ensure!(peek(a + PAGE) == 0xC1, "the child's write is not visible");
        poke(a + 5, 0xA5);
        rt::io::write_all(to_child_w, b"p").ctx("write pipe")?;
        Ok(())
    })();
    if r.is_err() {
        // Let the child end (it reports a failure of its own).
        let _ = rt::io::write_all(to_child_w, b"p");
    }
    let status = wait(pid).ctx("waitpid")?;
    for fd in [to_child_r, to_child_w, to_parent_r, to_parent_w] {
        let _ = syscall::close(fd);
    }
    r?;
    expect_exit("the child saw the parent's write", status, 0)?;
    // The child is gone; the memory stays the parent's.
    ensure!(
        peek(a + PAGE) == 0xC1,
        "the shared data went with the child"
    );
    poke(a + PAGE, 2);
    funmap(a, 2 * PAGE).ctx("funmap")?;
    Ok(())
}

fn shared_frames_freed() -> Result<(), String> {
    let (frames, heap) = memory()?;
    let pages = 32;
    let a = anon(pages * PAGE, RW | SHARED).ctx("fmap shared")?;
    let (ready_r, ready_w) = rt::io::pipe(0).ctx("pipe")?;
    let (go_r, go_w) = rt::io::pipe(0).ctx("pipe")?;
    let pid = fork().ctx("fork")?;
    if pid == 0 {
        // The parent unmaps first; this side still has the frames.
        let _ = rt::io::write_all(ready_w, b"r");
        let _ = wait_byte(go_r);
        let ok = peek(a + 3 * PAGE) == 0x33;
        poke(a, 1);
        rt::process::exit(if ok { 0 } else { 1 });
    }
    let r = (|| {
        wait_byte(ready_r)?;
        poke(a + 3 * PAGE, 0x33);
        funmap(a, pages * PAGE).ctx("funmap in the parent")?;
        let (now, _) = memory()?;
        ensure!(
            now + pages as u64 <= frames,
            "frames came back while the child maps them: {now} vs {frames}"
        );
        rt::io::write_all(go_w, b"g").ctx("write pipe")
    })();
    if r.is_err() {
        let _ = rt::io::write_all(go_w, b"g");
    }
    let status = wait(pid).ctx("waitpid")?;
    for fd in [ready_r, ready_w, go_r, go_w] {
        let _ = syscall::close(fd);
    }
    r?;
    expect_exit(
        "the child read the shared page after the parent's unmap",
        status,
        0,
    )?;
    expect_eq(
        "sys:memory after the last user exited",
        memory()?,
        (frames, heap),
    )
}

fn file_mapping(me: &str) -> Result<(), String> {
    let fd = syscall::open(me, O_RDONLY).ctx("open self")?;
    let mut file = alloc::vec![0u8; 3 * PAGE];
    let n = rt::io::read_full(fd, &mut file).ctx("read self")?;
    ensure!(n == 3 * PAGE, "short read of the program: {n}");
    let a = fmap(fd, 0, 2 * PAGE, R | PRIVATE, 0).ctx("fmap the file at 0")?;
    let b = fmap(fd, 0, PAGE, RW | PRIVATE, PAGE).ctx("fmap the file at a page")?;
    for (i, &byte) in file[..2 * PAGE].iter().enumerate() {
        ensure!(peek(a + i) == byte, "byte {i} differs");
    }
    for (i, &byte) in file[PAGE..2 * PAGE].iter().enumerate() {
        ensure!(peek(b + i) == byte, "byte {i} at offset 4096 differs");
    }
    // Private: writes stay in the mapping.
    poke(b, file[PAGE] ^ 0xFF);
    let again = fmap(fd, 0, PAGE, R | PRIVATE, PAGE).ctx("fmap again")?;
    ensure!(
        peek(again) == file[PAGE],
        "a private write reached the file"
    );
    let path = me.strip_prefix("file:").unwrap_or(me);
    let maps = my_maps()?;
    expect_line(&maps, a, a + 2 * PAGE, "r--", path)?;
    ensure!(
        line_at(&maps, b).is_some_and(|l| l.contains(" rw- 00001000 ")),
        "the offset is not shown: {maps}"
    );
    // Shared and read-only: allowed (the file cannot change).
    let c = fmap(fd, 0, PAGE, R | SHARED, 0).ctx("fmap shared read-only")?;
    ensure!(peek(c + 1) == file[1], "shared file mapping differs");
    expect_errno(
        "mprotect of a shared file mapping to writable",
        mprotect(c, PAGE, RW),
        EACCES,
    )?;
    // Past the end of the file: zeros.
    let size = syscall::lseek(fd, 0, syscall::flag::SEEK_END).ctx("lseek")?;
    let last = size & !(PAGE - 1);
    let d = fmap(fd, 0, 2 * PAGE, R | PRIVATE, last).ctx("fmap the end")?;
    ensure!(
        peek(d + size - last - 1) == peek_file(fd, size - 1)?,
        "last byte"
    );
    ensure!(peek(d + 2 * PAGE - 1) == 0, "past the end is not zero");
    let _ = syscall::close(fd);
    // The mapping outlives the descriptor.
    ensure!(
        peek(a + 7) == file[7],
        "the mapping went with the descriptor"
    );
    for (addr, len) in [
        (a, 2 * PAGE),
        (b, PAGE),
        (again, PAGE),
        (c, PAGE),
        (d, 2 * PAGE),
    ] {
        funmap(addr, len).ctx("funmap")?;
    }
    Ok(())
}

fn peek_file(fd: usize, at: usize) -> Result<u8, String> {
    syscall::lseek(fd, at as isize, SEEK_SET).ctx("lseek")?;
    let mut b = [0u8; 1];
    rt::io::read_full(fd, &mut b).ctx("read")?;
    Ok(b[0])
}

fn file_errors(me: &str) -> Result<(), String> {
    let fd = syscall::open(me, O_RDONLY).ctx("open self")?;
    expect_errno(
        "shared writable file mapping",
        fmap(fd, 0, PAGE, RW | SHARED, 0),
        EACCES,
    )?;
    expect_errno(
        "misaligned file offset",
        fmap(fd, 0, PAGE, R | PRIVATE, 100),
        EINVAL,
    )?;
    let _ = syscall::close(fd);
    let (rd, wr) = rt::io::pipe(0).ctx("pipe")?;
    expect_errno("a pipe", fmap(rd, 0, PAGE, R | PRIVATE, 0), ENODEV)?;
    expect_errno(
        "a descriptor not open for reading",
        fmap(wr, 0, PAGE, R | PRIVATE, 0),
        EACCES,
    )?;
    let _ = syscall::close(rd);
    let _ = syscall::close(wr);
    let fd = syscall::open("sys:memory", O_RDONLY).ctx("open sys:memory")?;
    expect_errno("sys:memory", fmap(fd, 0, PAGE, R | PRIVATE, 0), ENODEV)?;
    let _ = syscall::close(fd);
    Ok(())
}

fn limits() -> Result<(u64, u64), String> {
    let fd = syscall::open("sys:limits", O_RDONLY).ctx("open sys:limits")?;
    let text = rt::io::read_to_end(fd).ctx("read sys:limits")?;
    let _ = syscall::close(fd);
    let text = String::from_utf8_lossy(&text).into_owned();
    let field = |key: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
    };
    match (field("map_bytes"), field("map_count")) {
        (Some(b), Some(c)) => Ok((b, c)),
        _ => Err(format!("sys:limits has no map_bytes/map_count: {text}")),
    }
}

fn enomem() -> Result<(), String> {
    let (map_bytes, map_count) = limits()?;
    let keep = fmap(ANON, FIXED, 2 * PAGE, RW | PRIVATE | MapFlags::MAP_FIXED, 0)
        .ctx("fmap a mapping to keep")?;
    poke(keep, 0x77);
    poke(keep + PAGE, 0x78);
    let maps = my_maps()?;
    let before = memory()?;
    // More pages than are free.
    let too_many = (before.0 as usize + 64) * PAGE;
    expect_errno(
        "more frames than are free",
        anon(too_many, RW | PRIVATE),
        ENOMEM,
    )?;
    expect_eq("sys:memory after ENOMEM", memory()?, before)?;
    // The same, replacing the kept mapping: it must survive.
    expect_errno(
        "MAP_FIXED over a mapping with more frames than are free",
        fmap(ANON, FIXED, too_many, RW | PRIVATE | MapFlags::MAP_FIXED, 0),
        ENOMEM,
    )?;
    ensure!(
        peek(keep) == 0x77 && peek(keep + PAGE) == 0x78,
        "the failed MAP_FIXED changed the old mapping"
    );
    expect_eq("sys:memory after the fixed ENOMEM", memory()?, before)?;
    // Shared memory too.
    expect_errno(
        "shared, too many frames",
        anon(too_many, RW | SHARED),
        ENOMEM,
    )?;
    expect_eq("sys:memory after the shared ENOMEM", memory()?, before)?;
    // Past the per-process limit on mapped bytes.
    expect_errno(
        "past map_bytes",
        anon(map_bytes as usize + PAGE, R | PRIVATE),
        ENOMEM,
    )?;
    expect_eq("maps after ENOMEM", my_maps()?, maps.clone())?;
    // Past the limit on the number of mappings: one page each, alternately
    // protected so that none can be merged.
    let mut made = Vec::with_capacity(map_count as usize + 1);
    let base = FIXED + 0x1000_0000;
    let result = (|| {
        for i in 0..map_count as usize + 1 {
            let flags = if i % 2 == 0 { R } else { RW };
            match fmap(
                ANON,
                base + i * PAGE,
                PAGE,
                flags | PRIVATE | MapFlags::MAP_FIXED,
                0,
            ) {
                Ok(a) => made.push(a),
                Err(e) => return Ok(e.errno),
            }
        }
        Err(String::from("no limit on the number of mappings"))
    })();
    let count_before_unmap = my_maps()?.lines().count();
    funmap(base, (map_count as usize + 1) * PAGE).ctx("funmap them all")?;
    let errno = result?;
    expect_eq("errno at the mapping limit", errno, ENOMEM)?;
    expect_eq(
        "mappings at the limit",
        count_before_unmap,
        map_count as usize,
    )?;
    funmap(keep, 2 * PAGE).ctx("funmap")?;
    Ok(())
}

fn old_calls() -> Result<(), String> {
    let old = OldMap {
        offset: 0,
        size: 2 * PAGE,
        flags: RW | PRIVATE,
    };
    // SAFETY: the old fmap with a valid OldMap and its size.
    let a = unsafe {
        syscall::syscall3(
            SYS_FMAP_OLD,
            ANON,
            &old as *const OldMap as usize,
            core::mem::size_of::<OldMap>(),
        )
    }
    .ctx("old fmap")?;
    poke(a + PAGE, 1);
    // SAFETY: the old funmap of a region we made, with a wrong start first.
    let r = unsafe { syscall::syscall1(SYS_FUNMAP_OLD, a + PAGE) };
    expect_errno("old funmap inside a region", r, EINVAL)?;
    // SAFETY: as above.
    unsafe { syscall::syscall1(SYS_FUNMAP_OLD, a) }.ctx("old funmap")?;
    ensure!(
        line_at(&my_maps()?, a).is_none(),
        "old funmap left the region"
    );
    let fixed_old = OldMap {
        offset: 0,
        size: PAGE,
        flags: RW | PRIVATE | MapFlags::MAP_FIXED,
    };
    // SAFETY: as above; MAP_FIXED has no address to use.
    let r = unsafe {
        syscall::syscall3(
            SYS_FMAP_OLD,
            ANON,
            &fixed_old as *const OldMap as usize,
            core::mem::size_of::<OldMap>(),
        )
    };
    expect_errno("old fmap with MAP_FIXED", r, EINVAL)
}

fn maps_content(me: &str) -> Result<(), String> {
    let path = me.strip_prefix("file:").unwrap_or(me);
    let maps = my_maps()?;
    ensure!(
        maps.lines()
            .any(|l| l.contains(" r-x ") && l.ends_with(path)),
        "no executable image line for {path}:\n{maps}"
    );
    ensure!(
        maps.lines()
            .any(|l| l.ends_with("-00007ffffffff000 rw- 00000000 [stack]")),
        "no stack line:\n{maps}"
    );
    ensure!(
        line_at(&maps, rt::heap::HEAP_BASE)
            .is_some_and(|l| l.contains(" rw- ") && l.ends_with("[anon]")),
        "no heap line:\n{maps}"
    );
    // Every line: start-end perms offset what, sorted and not overlapping.
    let mut last_end = 0u64;
    for l in maps.lines() {
        let mut parts = l.splitn(4, ' ');
        let range = parts.next().unwrap_or("");
        let perms = parts.next().unwrap_or("");
        let offset = parts.next().unwrap_or("");
        let what = parts.next().unwrap_or("");
        let (s, e) = range.split_once('-').ok_or(format!("bad line {l:?}"))?;
        let s = u64::from_str_radix(s, 16).map_err(|_| format!("bad start {l:?}"))?;
        let e = u64::from_str_radix(e, 16).map_err(|_| format!("bad end {l:?}"))?;
        ensure!(
            s < e && s >= last_end && s % 4096 == 0 && e % 4096 == 0,
            "bad range {l:?}"
        );
        ensure!(
            perms.len() == 3 && !(perms.contains('w') && perms.contains('x')),
            "bad perms {l:?}"
        );
        ensure!(offset.len() == 8 && !what.is_empty(), "bad line {l:?}");
        last_end = e;
    }
    // Before and after map, mprotect and unmap.
    let a = anon(2 * PAGE, RW | PRIVATE).ctx("fmap")?;
    let with = my_maps()?;
    expect_eq(
        "lines after fmap",
        with.lines().count(),
        maps.lines().count() + 1,
    )?;
    mprotect(a, PAGE, R).ctx("mprotect")?;
    let split = my_maps()?;
    expect_line(&split, a, a + PAGE, "r--", "[anon]")?;
    expect_line(&split, a + PAGE, a + 2 * PAGE, "rw-", "[anon]")?;
    funmap(a, 2 * PAGE).ctx("funmap")?;
    expect_eq("maps after funmap", my_maps()?, maps)?;
    // Read-only: a write open is refused; dup to the sibling works.
    let me_pid = syscall::getpid().ctx("getpid")?;
    expect_errno(
        "maps opened read-write",
        syscall::open(format!("proc:{me_pid}/maps"), O_RDWR),
        EINVAL,
    )?;
    Ok(())
}

fn maps_permission() -> Result<(), String> {
    let parent = syscall::getpid().ctx("getpid")?;
    // A non-root child may not read its parent's maps (not an ancestor,
    // other ids).
    in_child(|| {
        syscall::setreuid(1000, 1000).ctx("setreuid")?;
        expect_errno(
            "a child opening its parent's maps",
            maps_of(parent),
            syscall::error::EPERM,
        )
    })?;
    // The parent reads a child's.
    let (r, w) = rt::io::pipe(0).ctx("pipe")?;
    let (r2, w2) = rt::io::pipe(0).ctx("pipe")?;
    let pid = fork().ctx("fork")?;
    if pid == 0 {
        let a = fmap(ANON, FIXED, PAGE, R | PRIVATE | MapFlags::MAP_FIXED, 0);
        let _ = rt::io::write_all(w, b"m");
        let _ = wait_byte(r2);
        rt::process::exit(if a.is_ok() { 0 } else { 1 });
    }
    let result = (|| {
        ensure!(wait_byte(r)? == b'm', "handshake");
        let maps = maps_of(pid).ctx("parent reading the child's maps")?;
        expect_line(&maps, FIXED, FIXED + PAGE, "r--", "[anon]")?;
        // A sibling by dup, from another proc: file of the child.
        let status = syscall::open(format!("proc:{pid}/status"), O_RDONLY).ctx("open status")?;
        let dup = syscall::dup(status, b"maps");
        let _ = syscall::close(status);
        let dup = dup.ctx("dup(status, \"maps\")")?;
        let text = rt::io::read_to_end(dup);
        let _ = syscall::close(dup);
        expect_eq(
            "maps by dup",
            String::from_utf8_lossy(&text.ctx("read")?).into_owned(),
            maps,
        )?;
        rt::io::write_all(w2, b"1").ctx("write")?;
        Ok(())
    })();
    if result.is_err() {
        let _ = rt::io::write_all(w2, b"1");
    }
    let status = wait(pid).ctx("waitpid")?;
    for fd in [r, w, r2, w2] {
        let _ = syscall::close(fd);
    }
    result?;
    expect_exit("child", status, 0)?;
    // A non-root caller may not read a root process's maps.
    in_child(|| {
        syscall::setreuid(1000, 1000).ctx("setreuid")?;
        let (r, w) = rt::io::pipe(0).ctx("pipe")?;
        let pid = fork().ctx("fork")?;
        if pid == 0 {
            // Alive until the parent has looked: an exited child counts
            // as gone (ESRCH) even before it is reaped.
            let _ = wait_byte(r);
            rt::process::exit(0);
        }
        // Our own child, same ids: allowed.
        let own = maps_of(pid);
        let _ = rt::io::write_all(w, b"1");
        let _ = wait(pid);
        let _ = syscall::close(r);
        let _ = syscall::close(w);
        ensure!(
            own.is_ok(),
            "non-root parent reading its child's maps: {own:?}"
        );
        expect_errno("non-root reading pid 1's maps", maps_of(1), EPERM)
    })?;
    // A process that is gone.
    let pid = fork().ctx("fork")?;
    if pid == 0 {
        rt::process::exit(0);
    }
    wait(pid).ctx("waitpid")?;
    expect_errno(
        "maps of a reaped child",
        maps_of(pid),
        syscall::error::ESRCH,
    )
}

fn mem_hole() -> Result<(), String> {
    let (r, w) = rt::io::pipe(0).ctx("pipe")?;
    let (r2, w2) = rt::io::pipe(0).ctx("pipe")?;
    let pid = fork().ctx("fork")?;
    if pid == 0 {
        let ok = fmap(ANON, FIXED, 3 * PAGE, RW | PRIVATE | MapFlags::MAP_FIXED, 0).is_ok();
        for i in 0..3 * PAGE {
            poke(FIXED + i, (i % 251) as u8);
        }
        let ok = ok && funmap(FIXED + PAGE, PAGE).is_ok();
        let _ = rt::io::write_all(w, b"h");
        let _ = wait_byte(r2);
        rt::process::exit(if ok { 0 } else { 1 });
    }
    let result = (|| {
        wait_byte(r)?;
        let fd = syscall::open(format!("proc:{pid}/mem"), O_RDWR).ctx("open mem")?;
        let r = (|| {
            let mut buf = [0u8; 64];
            syscall::lseek(fd, (FIXED + PAGE - 16) as isize, SEEK_SET).ctx("lseek")?;
            let n = syscall::read(fd, &mut buf).ctx("read up to the hole")?;
            expect_eq("bytes read up to the hole", n, 16)?;
            for (i, &b) in buf[..16].iter().enumerate() {
                ensure!(b == ((PAGE - 16 + i) % 251) as u8, "byte {i} differs");
            }
            syscall::lseek(fd, (FIXED + PAGE) as isize, SEEK_SET).ctx("lseek")?;
            expect_errno("read in the hole", syscall::read(fd, &mut buf), EFAULT)?;
            syscall::lseek(fd, (FIXED + 2 * PAGE) as isize, SEEK_SET).ctx("lseek")?;
            let n = syscall::read(fd, &mut buf).ctx("read after the hole")?;
            expect_eq("bytes after the hole", n, 64)?;
            ensure!(buf[0] == ((2 * PAGE) % 251) as u8, "byte after the hole");
            syscall::lseek(fd, (FIXED + PAGE - 8) as isize, SEEK_SET).ctx("lseek")?;
            let n = syscall::write(fd, &[1u8; 32]).ctx("write into the hole")?;
            expect_eq("bytes written up to the hole", n, 8)?;
            let maps = maps_of(pid).ctx("maps of the child")?;
            expect_line(&maps, FIXED, FIXED + PAGE, "rw-", "[anon]")?;
            expect_line(&maps, FIXED + 2 * PAGE, FIXED + 3 * PAGE, "rw-", "[anon]")
        })();
        let _ = syscall::close(fd);
        r
    })();
    let _ = rt::io::write_all(w2, b"x");
    let status = wait(pid).ctx("waitpid")?;
    for fd in [r, w, r2, w2] {
        let _ = syscall::close(fd);
    }
    result?;
    expect_exit("the child", status, 0)
}

fn baseline() -> Result<(), String> {
    let before = memory()?;
    // Map, touch, split both ways, unmap piece by piece.
    let a = anon(64 * PAGE, RW | PRIVATE).ctx("fmap")?;
    let far = fmap(ANON, 0x0000_3000_0000_0000, 3 * PAGE, RW | SHARED, 0).ctx("fmap far")?;
    for i in 0..64 {
        poke(a + i * PAGE, i as u8);
    }
    mprotect(a + 8 * PAGE, 8 * PAGE, R).ctx("mprotect")?;
    funmap(a + 30 * PAGE, 4 * PAGE).ctx("funmap a middle")?;
    funmap(a, 30 * PAGE).ctx("funmap the start")?;
    funmap(a + 34 * PAGE, 30 * PAGE).ctx("funmap the rest")?;
    funmap(far, 3 * PAGE).ctx("funmap far")?;
    expect_eq("sys:memory after unmapping", memory()?, before)?;
    // A child that maps a lot and exits without unmapping.
    let pid = fork().ctx("fork")?;
    if pid == 0 {
        let ok = anon(256 * PAGE, RW | PRIVATE).is_ok()
            && anon(16 * PAGE, RW | SHARED).is_ok()
            && fmap(ANON, 0x0000_3000_0000_0000, PAGE, RW | PRIVATE, 0).is_ok();
        rt::process::exit(if ok { 0 } else { 1 });
    }
    let status = wait(pid).ctx("waitpid")?;
    expect_exit("the child", status, 0)?;
    expect_eq("sys:memory after the child exited", memory()?, before)
}

fn heap_grows() -> Result<(), String> {
    let mapped = rt::heap::mapped();
    // Larger than the old fixed 1 MiB heap.
    let mut v: Vec<u8> = Vec::new();
    v.try_reserve_exact(4 << 20)
        .map_err(|_| String::from("4 MiB from the heap"))?;
    v.resize(4 << 20, 0x5A);
    ensure!(v[(4 << 20) - 1] == 0x5A, "heap memory");
    ensure!(
        rt::heap::mapped() >= mapped + (4 << 20),
        "the heap did not grow"
    );
    drop(v);
    Ok(())
}
