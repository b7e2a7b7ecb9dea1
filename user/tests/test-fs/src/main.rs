//! Tests for descriptors and schemes: pipes, event:, dup/dup2, fcntl, lseek, fpath, fstat,
//! EBADF/EFAULT/ENOENT errors, null:, zero:, and proc:<pid>/status.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::mem::size_of;

use rt::io::{read_full, read_to_end, write_all};
use rt::process::{fork_with, now_ms, sleep_ms, wait};
use rt::test::{expect_eq, expect_errno, expect_exit, Ctx};
use rt::{ensure, Tests};
use syscall::data::{Event, Stat};
use syscall::error::{EAGAIN, EBADF, EFAULT, ENOENT};
use syscall::flag::*;
use syscall::number::{SYS_FSTAT, SYS_OPEN, SYS_PIPE2, SYS_READ, SYS_WRITE};

rt::entry!(main);

const SH: &str = "/bin/sh";
const BAD_FD: usize = 9999;
const KERNEL_ADDR: usize = 0xffff_8000_0000_0000;

fn main(_args: &[&str]) -> i32 {
    let mut t = Tests::new();
    testkit::run(&mut t, "pipe_echo_between_processes", pipe_echo);
    testkit::run(&mut t, "pipe_eof_when_writer_closes", pipe_eof);
    testkit::run(&mut t, "pipe_eof_when_writer_child_exits", pipe_eof_child);
    testkit::run(&mut t, "event_wakes_on_pipe_readiness", event_pipe);
    testkit::run(&mut t, "dup_shares_pipe", dup_shares);
    testkit::run(&mut t, "dup2_to_chosen_fd", dup2_chosen);
    testkit::run(&mut t, "dup2_replaces_open_fd", dup2_replaces);
    testkit::run(&mut t, "fcntl_nonblock_read_eagain", fcntl_nonblock);
    testkit::run(&mut t, "file_read_and_lseek", file_lseek);
    testkit::run(&mut t, "open_with_file_scheme", open_file_scheme);
    testkit::run(&mut t, "fpath_pipe_and_file", fpath);
    testkit::run(&mut t, "fstat_file_and_pipe", fstat);
    testkit::run(&mut t, "bad_fd_ebadf", bad_fd);
    testkit::run(&mut t, "closed_fd_ebadf", closed_fd);
    testkit::run(&mut t, "bad_pointer_efault", bad_pointers);
    testkit::run(&mut t, "open_missing_enoent", open_missing);
    testkit::run(&mut t, "null_scheme", null_scheme);
    testkit::run(&mut t, "zero_scheme", zero_scheme);
    testkit::run(&mut t, "proc_status_self", proc_status);
    // Last: a kernel that writes through user pointers without checking
    // page permissions may fault on this one.
    testkit::run(&mut t, "read_into_readonly_memory_efault", read_into_rodata);
    t.finish()
}

fn pipe() -> Result<(usize, usize), String> {
    let (r, w) = rt::io::pipe(0).ctx("pipe2")?;
    ensure!(r != w, "pipe2 returned the same fd twice: {}", r);
    Ok((r, w))
}

fn close_all(fds: &[usize]) {
    for &fd in fds {
        let _ = syscall::close(fd);
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn pipe_echo() -> Result<(), String> {
    const LEN: usize = 20_000;
    let (to_child_r, to_child_w) = pipe()?;
    let (from_child_r, from_child_w) = match pipe() {
        Ok(p) => p,
        Err(e) => {
            close_all(&[to_child_r, to_child_w]);
            return Err(e);
        }
    };
    // The child reads everything until EOF, then echoes it all back, so
    // neither side can block the other with a full pipe.
    let pid = fork_with(|| {
        close_all(&[to_child_w, from_child_r]);
        let data = match read_to_end(to_child_r) {
            Ok(d) => d,
            Err(_) => return 2,
        };
        if write_all(from_child_w, &data).is_err() {
            return 3;
        }
        0
    });
    close_all(&[to_child_r, from_child_w]);
    let pid = match pid {
        Ok(pid) => pid,
        Err(e) => {
            close_all(&[to_child_w, from_child_r]);
            return Err(format!("clone: {}", rt::errno::describe(&e)));
        }
    };
    let data = pattern(LEN);
    let sent = write_all(to_child_w, &data).ctx("write to child");
    let _ = syscall::close(to_child_w);
    let back = read_to_end(from_child_r).ctx("read echo");
    let _ = syscall::close(from_child_r);
    let status = wait(pid).ctx("waitpid")?;
    sent?;
    let back = back?;
    expect_exit("echo child (2 = read failed, 3 = write failed)", status, 0)?;
    expect_eq("echoed length", back.len(), LEN)?;
    if let Some(i) = (0..LEN).find(|&i| back[i] != data[i]) {
        return Err(format!(
            "echoed byte {} differs: expected {:#x}, got {:#x}",
            i, data[i], back[i]
        ));
    }
    Ok(())
}

fn pipe_eof() -> Result<(), String> {
    let (r, w) = pipe()?;
    let res = (|| {
        expect_eq("write", syscall::write(w, b"abc").ctx("write")?, 3)?;
        syscall::close(w).ctx("close writer")?;
        let mut buf = [0u8; 8];
        let n = syscall::read(r, &mut buf).ctx("first read")?;
        expect_eq("first read", &buf[..n], &b"abc"[..])?;
        expect_eq(
            "read after the writer closed",
            syscall::read(r, &mut buf).ctx("second read")?,
            0,
        )
    })();
    close_all(&[r, w]);
    res
}

fn pipe_eof_child() -> Result<(), String> {
    let (r, w) = pipe()?;
    let pid = fork_with(|| {
        let _ = syscall::close(r);
        if write_all(w, b"from child").is_err() {
            return 2;
        }
        0
    });
    let _ = syscall::close(w);
    let pid = match pid {
        Ok(pid) => pid,
        Err(e) => {
            let _ = syscall::close(r);
            return Err(format!("clone: {}", rt::errno::describe(&e)));
        }
    };
    let data = read_to_end(r).ctx("read until EOF");
    let _ = syscall::close(r);
    let status = wait(pid).ctx("waitpid")?;
    expect_exit("writer child", status, 0)?;
    expect_eq("data before EOF", data?, Vec::from(&b"from child"[..]))
}

fn event_pipe() -> Result<(), String> {
    let efd = syscall::open("event:", O_RDWR).ctx("open event:")?;
    let (r, w) = match pipe() {
        Ok(p) => p,
        Err(e) => {
            let _ = syscall::close(efd);
            return Err(e);
        }
    };
    let res = (|| {
        let reg = Event {
            id: r,
            flags: EVENT_READ,
            data: 0x77,
        };
        syscall::write(efd, &reg).ctx("register pipe with event:")?;
        let t0 = now_ms();
        let pid = fork_with(|| {
            let _ = sleep_ms(60);
            if syscall::write(w, b"e").is_err() {
                return 2;
            }
            0
        })
        .ctx("clone")?;
        let mut ev = Event::default();
        // A child's exit (SIGCHLD) may interrupt the wait: retry EINTR.
        let got = rt::io::read(efd, &mut ev);
        let elapsed = now_ms().saturating_sub(t0);
        let status = wait(pid).ctx("waitpid")?;
        expect_exit("writer child", status, 0)?;
        expect_eq(
            "bytes read from event:",
            got.ctx("read event:")?,
            size_of::<Event>(),
        )?;
        ensure!(
            elapsed >= 50,
            "event arrived after {} ms, before the writer wrote (60 ms)",
            elapsed
        );
        expect_eq("event id", ev.id, r)?;
        expect_eq("event data", ev.data, 0x77)?;
        ensure!(
            ev.flags.contains(EVENT_READ),
            "event flags {:?} lack EVENT_READ",
            ev.flags
        );
        let mut b = [0u8; 1];
        expect_eq(
            "pipe read after event",
            syscall::read(r, &mut b).ctx("read")?,
            1,
        )?;
        expect_eq("byte", b[0], b'e')
    })();
    close_all(&[efd, r, w]);
    res
}

fn dup_shares() -> Result<(), String> {
    let (r, w) = pipe()?;
    let mut extra = Vec::new();
    let res = (|| {
        let d = syscall::dup(w, b"").ctx("dup")?;
        extra.push(d);
        ensure!(d != w && d != r, "dup returned an fd already in use: {}", d);
        syscall::write(d, b"via dup").ctx("write via dup")?;
        syscall::close(d).ctx("close dup")?;
        extra.clear();
        syscall::write(w, b"!").ctx("write via original after closing the dup")?;
        let mut buf = [0u8; 16];
        let n = syscall::read(r, &mut buf).ctx("read")?;
        expect_eq("data", &buf[..n], &b"via dup!"[..])?;
        expect_errno("dup of a bad fd", syscall::dup(BAD_FD, b""), EBADF)
    })();
    close_all(&extra);
    close_all(&[r, w]);
    res
}

fn dup2_chosen() -> Result<(), String> {
    const TARGET: usize = 20;
    let (r, w) = pipe()?;
    let res = (|| {
        expect_eq(
            "dup2(w, 20)",
            syscall::dup2(w, TARGET, b"").ctx("dup2")?,
            TARGET,
        )?;
        syscall::write(TARGET, b"twenty").ctx("write to fd 20")?;
        let mut buf = [0u8; 16];
        let n = syscall::read(r, &mut buf).ctx("read")?;
        expect_eq("data", &buf[..n], &b"twenty"[..])
    })();
    close_all(&[TARGET, r, w]);
    res
}

fn dup2_replaces() -> Result<(), String> {
    let (r1, w1) = pipe()?;
    let (r2, w2) = match pipe() {
        Ok(p) => p,
        Err(e) => {
            close_all(&[r1, w1]);
            return Err(e);
        }
    };
    let res = (|| {
        // Make w2 a second writer of pipe 1; its old pipe-2 writer is closed.
        expect_eq("dup2(w1, w2)", syscall::dup2(w1, w2, b"").ctx("dup2")?, w2)?;
        syscall::write(w2, b"one").ctx("write via replaced fd")?;
        let mut buf = [0u8; 8];
        let n = syscall::read(r1, &mut buf).ctx("read pipe 1")?;
        expect_eq("pipe 1 data", &buf[..n], &b"one"[..])?;
        expect_eq(
            "pipe 2 read (its only writer was replaced, so EOF)",
            syscall::read(r2, &mut buf).ctx("read pipe 2")?,
            0,
        )
    })();
    close_all(&[r1, w1, r2, w2]);
    res
}

fn fcntl_nonblock() -> Result<(), String> {
    let (r, w) = pipe()?;
    let res = (|| {
        let fl = syscall::fcntl(r, F_GETFL, 0).ctx("F_GETFL")?;
        ensure!(
            fl & O_NONBLOCK == 0,
            "new pipe already has O_NONBLOCK: {:#x}",
            fl
        );
        syscall::fcntl(r, F_SETFL, fl | O_NONBLOCK).ctx("F_SETFL")?;
        let fl2 = syscall::fcntl(r, F_GETFL, 0).ctx("F_GETFL")?;
        ensure!(
            fl2 & O_NONBLOCK != 0,
            "F_GETFL after F_SETFL lacks O_NONBLOCK: {:#x}",
            fl2
        );
        let mut buf = [0u8; 4];
        expect_errno(
            "read of an empty non-blocking pipe",
            syscall::read(r, &mut buf),
            EAGAIN,
        )?;
        syscall::write(w, b"z").ctx("write")?;
        expect_eq(
            "read with data present",
            syscall::read(r, &mut buf).ctx("read")?,
            1,
        )?;
        syscall::fcntl(r, F_SETFL, fl2 & !O_NONBLOCK).ctx("F_SETFL clear")?;
        let fl3 = syscall::fcntl(r, F_GETFL, 0).ctx("F_GETFL")?;
        ensure!(
            fl3 & O_NONBLOCK == 0,
            "O_NONBLOCK still set after clearing: {:#x}",
            fl3
        );
        Ok(())
    })();
    close_all(&[r, w]);
    res
}

fn file_lseek() -> Result<(), String> {
    let fd = syscall::open(SH, O_RDONLY).ctx("open /bin/sh")?;
    let res = (|| {
        let mut st = Stat::default();
        syscall::fstat(fd, &mut st).ctx("fstat")?;
        let size = st.st_size as usize;
        ensure!(
            size > 64,
            "/bin/sh st_size {} is too small for an ELF",
            size
        );
        let mut magic = [0u8; 4];
        expect_eq("read 4", read_full(fd, &mut magic).ctx("read")?, 4)?;
        expect_eq("ELF magic", &magic, b"\x7fELF")?;
        expect_eq(
            "SEEK_CUR 0",
            syscall::lseek(fd, 0, SEEK_CUR).ctx("lseek")?,
            4,
        )?;
        expect_eq(
            "SEEK_SET 1",
            syscall::lseek(fd, 1, SEEK_SET).ctx("lseek")?,
            1,
        )?;
        let mut three = [0u8; 3];
        expect_eq("read 3", read_full(fd, &mut three).ctx("read")?, 3)?;
        expect_eq("bytes 1..4", &three, b"ELF")?;
        expect_eq(
            "SEEK_END 0",
            syscall::lseek(fd, 0, SEEK_END).ctx("lseek")?,
            size,
        )?;
        expect_eq("read at EOF", syscall::read(fd, &mut magic).ctx("read")?, 0)?;
        expect_eq(
            "SEEK_END -4",
            syscall::lseek(fd, -4, SEEK_END).ctx("lseek")?,
            size - 4,
        )?;
        expect_eq("read last 4", read_full(fd, &mut magic).ctx("read")?, 4)?;
        expect_eq(
            "SEEK_CUR -2",
            syscall::lseek(fd, -2, SEEK_CUR).ctx("lseek")?,
            size - 2,
        )
    })();
    let _ = syscall::close(fd);
    res
}

fn open_file_scheme() -> Result<(), String> {
    let fd = syscall::open("file:/bin/sh", O_RDONLY).ctx("open file:/bin/sh")?;
    let mut magic = [0u8; 4];
    let n = read_full(fd, &mut magic);
    let _ = syscall::close(fd);
    expect_eq("read", n.ctx("read")?, 4)?;
    expect_eq("ELF magic", &magic, b"\x7fELF")
}

fn path_of(fd: usize) -> Result<String, String> {
    let mut buf = [0u8; 256];
    let n = syscall::fpath(fd, &mut buf).ctx("fpath")?;
    ensure!(
        n <= buf.len(),
        "fpath returned {} for a {}-byte buffer",
        n,
        buf.len()
    );
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn fpath() -> Result<(), String> {
    let (r, w) = pipe()?;
    let pipe_path = path_of(r);
    close_all(&[r, w]);
    let pipe_path = pipe_path?;
    ensure!(
        pipe_path.starts_with("pipe:"),
        "fpath of a pipe: expected \"pipe:...\", got {:?}",
        pipe_path
    );
    let fd = syscall::open(SH, O_RDONLY).ctx("open /bin/sh")?;
    let file_path = path_of(fd);
    let _ = syscall::close(fd);
    let file_path = file_path?;
    ensure!(
        file_path == "file:/bin/sh" || file_path == "/bin/sh",
        "fpath of /bin/sh: expected \"file:/bin/sh\", got {:?}",
        file_path
    );
    Ok(())
}

fn fstat() -> Result<(), String> {
    let fd = syscall::open(SH, O_RDONLY).ctx("open /bin/sh")?;
    let mut st = Stat::default();
    let r = syscall::fstat(fd, &mut st);
    let _ = syscall::close(fd);
    r.ctx("fstat /bin/sh")?;
    expect_eq("/bin/sh file type", st.st_mode & MODE_TYPE, MODE_FILE)?;
    ensure!(st.st_size > 64, "/bin/sh st_size {}", st.st_size);
    let (pr, pw) = pipe()?;
    let mut pst = Stat::default();
    let r = syscall::fstat(pr, &mut pst);
    close_all(&[pr, pw]);
    r.ctx("fstat pipe")?;
    expect_eq("pipe file type", pst.st_mode & MODE_TYPE, MODE_FIFO)
}

fn bad_fd() -> Result<(), String> {
    let mut buf = [0u8; 4];
    let mut st = Stat::default();
    expect_errno("read", syscall::read(BAD_FD, &mut buf), EBADF)?;
    expect_errno("write", syscall::write(BAD_FD, b"x"), EBADF)?;
    expect_errno("close", syscall::close(BAD_FD), EBADF)?;
    expect_errno("fstat", syscall::fstat(BAD_FD, &mut st), EBADF)?;
    expect_errno("lseek", syscall::lseek(BAD_FD, 0, SEEK_SET), EBADF)?;
    expect_errno("fcntl", syscall::fcntl(BAD_FD, F_GETFL, 0), EBADF)?;
    expect_errno("fpath", syscall::fpath(BAD_FD, &mut buf), EBADF)?;
    expect_errno("dup2", syscall::dup2(BAD_FD, 30, b""), EBADF)
}

fn closed_fd() -> Result<(), String> {
    let fd = syscall::open("null:", O_RDWR).ctx("open null:")?;
    syscall::close(fd).ctx("close")?;
    expect_errno("write after close", syscall::write(fd, b"x"), EBADF)?;
    expect_errno("second close", syscall::close(fd), EBADF)
}

/// A raw three-argument syscall whose buffer argument is meant to be invalid.
fn raw(nr: usize, a: usize, b: usize, c: usize) -> Result<usize, syscall::Error> {
    // SAFETY: used only with pointers the kernel must reject (EFAULT) or with
    // live buffers of ours; the kernel is expected to validate them before any
    // access, and no Rust reference aliases the memory involved.
    unsafe { syscall::syscall3(nr, a, b, c) }
}

fn bad_pointers() -> Result<(), String> {
    let zero = syscall::open("zero:", O_RDONLY).ctx("open zero:")?;
    let (r, w) = match pipe() {
        Ok(p) => p,
        Err(e) => {
            let _ = syscall::close(zero);
            return Err(e);
        }
    };
    let res = (|| {
        let mut good = [0u8; 16];
        let good_ptr = good.as_mut_ptr() as usize;
        let cases: [(&str, Result<usize, syscall::Error>); 9] = [
            ("read(zero:, 0x1, 16)", raw(SYS_READ, zero, 1, 16)),
            (
                "read(zero:, kernel address, 16)",
                raw(SYS_READ, zero, KERNEL_ADDR, 16),
            ),
            (
                "read(zero:, buf, usize::MAX) (range wraps)",
                raw(SYS_READ, zero, good_ptr, usize::MAX),
            ),
            ("write(pipe, 0x1, 16)", raw(SYS_WRITE, w, 1, 16)),
            (
                "write(pipe, kernel address, 16)",
                raw(SYS_WRITE, w, KERNEL_ADDR, 16),
            ),
            ("open(path at 0x1)", raw(SYS_OPEN, 1, 7, O_RDONLY)),
            (
                "open(path at kernel address)",
                raw(SYS_OPEN, KERNEL_ADDR, 7, O_RDONLY),
            ),
            (
                "fstat(stat at 0x1)",
                raw(SYS_FSTAT, zero, 1, size_of::<Stat>()),
            ),
            (
                "pipe2(fds at kernel address)",
                raw(SYS_PIPE2, KERNEL_ADDR, 0, 0),
            ),
        ];
        let mut wrong = String::new();
        for (what, got) in cases {
            if let Err(e) = expect_errno(what, got, EFAULT) {
                wrong += &e;
                wrong += "; ";
            }
        }
        ensure!(wrong.is_empty(), "{}", wrong);
        // The pipe must still work and hold nothing from the failed writes.
        syscall::write(w, b"ok").ctx("write after EFAULTs")?;
        let n = syscall::read(r, &mut good).ctx("read after EFAULTs")?;
        expect_eq("pipe contents", &good[..n], &b"ok"[..])
    })();
    close_all(&[zero, r, w]);
    res
}

fn open_missing() -> Result<(), String> {
    expect_errno(
        "open /bin/does-not-exist",
        syscall::open("/bin/does-not-exist", O_RDONLY),
        ENOENT,
    )
}

fn null_scheme() -> Result<(), String> {
    let fd = syscall::open("null:", O_RDWR).ctx("open null:")?;
    let mut buf = [0xaau8; 8];
    let read = syscall::read(fd, &mut buf);
    let written = syscall::write(fd, b"discarded!");
    let _ = syscall::close(fd);
    expect_eq("read from null:", read.ctx("read")?, 0)?;
    expect_eq("write to null:", written.ctx("write")?, 10)
}

fn zero_scheme() -> Result<(), String> {
    let fd = syscall::open("zero:", O_RDWR).ctx("open zero:")?;
    let mut buf = [0xaau8; 32];
    let read = syscall::read(fd, &mut buf);
    let written = syscall::write(fd, b"discarded!");
    let _ = syscall::close(fd);
    expect_eq("read from zero:", read.ctx("read")?, 32)?;
    expect_eq("bytes read from zero:", buf, [0u8; 32])?;
    expect_eq("write to zero:", written.ctx("write")?, 10)
}

fn proc_status() -> Result<(), String> {
    let pid = syscall::getpid().ctx("getpid")?;
    let ppid = syscall::getppid().ctx("getppid")?;
    let path = format!("proc:{}/status", pid);
    let fd = syscall::open(&path, O_RDONLY).ctx(&path)?;
    let text = read_to_end(fd);
    let _ = syscall::close(fd);
    let text =
        String::from_utf8(text.ctx("read")?).map_err(|_| String::from("status is not UTF-8"))?;
    ensure!(
        text.ends_with('\n') && text.matches('\n').count() == 1,
        "expected one line ending in a newline, got {:?}",
        text
    );
    let field = |key: &str| -> Option<&str> {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    };
    let name = rt::args().first().copied().unwrap_or("");
    let expected: [(&str, String); 9] = [
        ("pid", format!("{}", pid)),
        ("ppid", format!("{}", ppid)),
        ("uid", String::from("0")),
        ("euid", String::from("0")),
        ("gid", String::from("0")),
        ("egid", String::from("0")),
        ("state", String::from("running")),
        ("tracer", String::from("0")),
        ("name", String::from(name)),
    ];
    let mut wrong = String::new();
    for (key, want) in expected.iter() {
        match field(key) {
            Some(v) if v == want => {}
            Some(v) => wrong += &format!(" {}: expected {:?}, got {:?};", key, want, v),
            None => wrong += &format!(" {}: missing;", key),
        }
    }
    ensure!(wrong.is_empty(), "in {:?}:{}", text.trim_end(), wrong);
    Ok(())
}

static READ_ONLY: [u8; 16] = *b"read-only bytes!";

fn read_into_rodata() -> Result<(), String> {
    let zero = syscall::open("zero:", O_RDONLY).ctx("open zero:")?;
    let ptr = READ_ONLY.as_ptr() as usize;
    // SAFETY: the kernel must refuse to write into a read-only page; if it
    // did write, only a static no one relies on would change.
    let r = unsafe { syscall::syscall3(SYS_READ, zero, ptr, READ_ONLY.len()) };
    let _ = syscall::close(zero);
    expect_errno("read(zero:, read-only static, 16)", r, EFAULT)
}
