//! File descriptor I/O helpers and the buffered writer behind `print!`/`println!`.

use alloc::vec::Vec;
use core::fmt;

use syscall::error::{Error, Result, EINTR};

/// Creates a pipe; returns `(read end, write end)`.
///
/// `syscall::pipe2` of redox_syscall 0.2.16 hands the kernel a pointer made
/// from a shared borrow (`fds.as_ptr()`), so the compiler may keep using the
/// array's old contents after the kernel wrote it. This passes a pointer
/// derived from a mutable borrow instead.
pub fn pipe(flags: usize) -> Result<(usize, usize)> {
    let mut fds = [0usize; 2];
    // SAFETY: the kernel writes two usizes to `fds`, a live, writable,
    // properly aligned local array whose pointer comes from a mutable borrow.
    unsafe { syscall::syscall2(syscall::number::SYS_PIPE2, fds.as_mut_ptr() as usize, flags)? };
    Ok((fds[0], fds[1]))
}

/// Writes all of `buf` to `fd`, retrying short writes and `EINTR`.
pub fn write_all(fd: usize, mut buf: &[u8]) -> Result<()> {
    while !buf.is_empty() {
        match syscall::write(fd, buf) {
            Ok(0) => return Err(Error::new(syscall::error::EIO)),
            Ok(n) => buf = &buf[n.min(buf.len())..],
            Err(e) if e.errno == EINTR => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads once into `buf`, retrying `EINTR`.
pub fn read(fd: usize, buf: &mut [u8]) -> Result<usize> {
    loop {
        match syscall::read(fd, buf) {
            Err(e) if e.errno == EINTR => {}
            other => return other,
        }
    }
}

/// Reads from `fd` until end of file.
pub fn read_to_end(fd: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let n = read(fd, &mut chunk)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&chunk[..n.min(chunk.len())]);
    }
}

/// Reads until `buf` is full or end of file; returns the number of bytes read.
pub fn read_full(fd: usize, buf: &mut [u8]) -> Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let n = read(fd, &mut buf[done..])?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

const BUF: usize = 256;

/// A `fmt::Write` sink that buffers on the stack and writes to a file
/// descriptor when full or flushed. Needs no heap, so the panic handler can
/// use it.
pub struct FdWriter {
    fd: usize,
    len: usize,
    buf: [u8; BUF],
}

impl FdWriter {
    /// A writer for `fd` with an empty buffer.
    pub const fn new(fd: usize) -> Self {
        FdWriter {
            fd,
            len: 0,
            buf: [0; BUF],
        }
    }

    /// Writes out the buffered bytes (errors are dropped: there is nowhere to
    /// report them).
    pub fn flush(&mut self) {
        let _ = write_all(self.fd, &self.buf[..self.len]);
        self.len = 0;
    }
}

impl fmt::Write for FdWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut bytes = s.as_bytes();
        while !bytes.is_empty() {
            if self.len == BUF {
                self.flush();
            }
            let n = (BUF - self.len).min(bytes.len());
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
        }
        Ok(())
    }
}

/// Formats `args` (and a newline if `newline`) to `fd`. Used by the print macros.
pub fn print_to(fd: usize, args: fmt::Arguments, newline: bool) {
    use fmt::Write;
    let mut w = FdWriter::new(fd);
    let _ = w.write_fmt(args);
    if newline {
        let _ = w.write_str("\n");
    }
    w.flush();
}
