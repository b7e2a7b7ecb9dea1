//! File-system helpers: `link` (redox_syscall 0.2.16's wrapper passes two
//! bare pointers and no lengths, so the kernel cannot know where the paths
//! end), `mkdir` (an `open` with `O_CREAT | O_DIRECTORY`, as on Redox),
//! the whole working directory, and directory listings.

use alloc::string::String;
use alloc::vec::Vec;

use syscall::error::{Error, Result, ERANGE};
use syscall::flag::{O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_RDONLY};

/// `link(old, new)`: a new name `new` for the file `old`. The kernel takes
/// each path as a pointer and a length (`rdi`, `rsi`; `rdx`, `r10`).
pub fn link(old: &str, new: &str) -> Result<usize> {
    // SAFETY: the kernel only reads `old.len()` bytes at `old` and
    // `new.len()` bytes at `new`, both live borrowed strings.
    unsafe {
        syscall::syscall4(
            syscall::number::SYS_LINK,
            old.as_ptr() as usize,
            old.len(),
            new.as_ptr() as usize,
            new.len(),
        )
    }
}

/// Creates the directory `path` with permission bits `mode` (less the
/// process's umask); `EEXIST` if something has that name.
pub fn mkdir(path: &str, mode: u16) -> Result<()> {
    let fd = syscall::open(
        path,
        O_CREAT | O_EXCL | O_DIRECTORY | O_CLOEXEC | (mode as usize & 0o7777),
    )?;
    let _ = syscall::close(fd);
    Ok(())
}

/// The whole working directory (`getcwd` copies only what fits, so this
/// retries with a larger buffer while the answer fills it).
pub fn getcwd() -> Result<String> {
    let mut size = 64;
    while size <= 8192 {
        let mut buf = alloc::vec![0u8; size];
        let n = syscall::getcwd(&mut buf)?;
        if n < size {
            buf.truncate(n);
            return String::from_utf8(buf).map_err(|_| Error::new(ERANGE));
        }
        size *= 2;
    }
    Err(Error::new(ERANGE))
}

/// The names in directory `path` (its listing: names separated by `\n`).
pub fn read_dir(path: &str) -> Result<Vec<String>> {
    let fd = syscall::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)?;
    let data = crate::io::read_to_end(fd);
    let _ = syscall::close(fd);
    let data = data?;
    let text = String::from_utf8_lossy(&data);
    Ok(text
        .split('\n')
        .filter(|n| !n.is_empty())
        .map(String::from)
        .collect())
}
